//! The sandbox's own loco initializers (cacheback's is
//! `cacheback::loco::CachebackInitializer`).

pub mod metrics;
