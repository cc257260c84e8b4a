//! cacheback's sandbox: the django-cacheback sandbox app, as a loco app.
//!
//! One page, `/`, reads `DummyModel` rows through every kind of cacheback job
//! and tells how each read was served (see [`controllers::home`]);
//! `/_cacheback` shows what the cache and its queue did
//! ([`controllers::dashboard`]), from the metrics served at `/metrics`
//! ([`controllers::metrics`], with `settings.metrics` on).

pub mod app;
pub mod cached;
pub mod config;
pub mod controllers;
pub mod dashboard;
pub mod initializers;
pub mod models;
pub mod views;
