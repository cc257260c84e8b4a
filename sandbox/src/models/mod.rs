//! The sandbox's models.

pub mod _entities;
pub mod dummy_models;
