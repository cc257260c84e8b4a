//! The sandbox's controllers.

pub mod home;
