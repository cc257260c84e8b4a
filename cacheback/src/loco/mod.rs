//! loco-rs glue (feature `loco`): reads `initializers.cacheback` from the app's
//! `config/*.yaml`, builds the engine and puts it in `ctx.shared_store`.
//!
//! Everything loco-specific lives in this module; the engine itself is usable
//! without loco through [`Cacheback::builder`](crate::Cacheback::builder).
//!
//! ```no_run
//! use cacheback::loco::CachebackInitializer;
//! # struct VanillaJob;
//! # impl cacheback::Job for VanillaJob {
//! #     type Args = ();
//! #     type Output = Vec<String>;
//! #     async fn fetch(&self, _: &()) -> Result<Vec<String>, cacheback::FetchError> { Ok(vec![]) }
//! # }
//! // In `Hooks::initializers`:
//! let initializer = CachebackInitializer::new(|builder, _ctx| {
//!     // Register the jobs a worker may refresh; the factory may capture `ctx.db`.
//!     builder.register(|_state| Ok(VanillaJob))
//! });
//! # let _: Box<dyn loco_rs::app::Initializer> = Box::new(initializer);
//! ```
//!
//! The initializer ([`CachebackInitializer`]), the operator's task
//! ([`CachebackTask`]), and the conversion of cacheback's errors into loco's
//! (`?` in handlers).

mod context;
mod error;
mod initializer;
mod overview;
mod queue;
mod task;

pub use self::context::from_context;
pub use self::initializer::{CachebackInitializer, settings, start_worker, stop_worker};
pub use self::overview::{QueueOverview, overview_queue_names, queue_overview};
pub use self::queue::{LocoQueue, LocoQueueStats, REFRESH_JOB_CLASS, RefreshWorker};
#[cfg(feature = "sea-orm")]
pub use self::queue::{loco_queue_stats, retry_failed_refreshes};
pub use self::task::CachebackTask;
