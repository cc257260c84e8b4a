//! sea-orm entities.

pub mod dummy_models;
