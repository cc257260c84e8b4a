//! The sandbox's controllers.

pub mod dashboard;
pub mod home;
pub mod metrics;
