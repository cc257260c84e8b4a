//! The sandbox's models.

pub mod _entities;
