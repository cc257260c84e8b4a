pub mod app;
pub mod controllers;
pub mod workers;
