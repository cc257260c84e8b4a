//! cacheback's sandbox: the django-cacheback sandbox app, as a loco app.
//!
//! One page, `/`, reads `DummyModel` rows through every kind of cacheback job
//! (see [`controllers::home`]).

pub mod app;
pub mod config;
pub mod controllers;
pub mod jobs;
pub mod models;
pub mod views;
