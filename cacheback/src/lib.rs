#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod clock;
mod engine;
mod error;
mod handle;
mod item;
pub mod job;
pub mod key;
#[cfg(feature = "loco")]
pub mod loco;
pub mod queue;
mod registry;
pub mod settings;
mod singleflight;
pub mod store;

pub use self::clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use self::engine::{Builder, Cacheback, DEFAULT_CACHE_ALIAS, WeakCacheback};
pub use self::error::{Error, FetchError, QueueError, Result, SharedError, StoreError};
pub use self::handle::{Dispatch, JobHandle, Lookup};
pub use self::item::CachedItem;
pub use self::job::{CacheStatus, Call, Job, Retry, TaskOptions};
pub use self::registry::RefreshOutcome;
