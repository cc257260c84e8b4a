#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod clock;
mod engine;
mod error;
pub mod function;
mod handle;
mod item;
pub mod job;
pub mod key;
#[cfg(feature = "loco")]
pub mod loco;
#[cfg(feature = "sea-orm")]
pub mod orm;
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
pub use cacheback_macros::cacheback;

/// Used by the code `#[cacheback]` generates; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::function::{Decorated, DecoratedRefresher, call, handle};

    /// What a `#[cacheback]` argument must be.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be an argument of a #[cacheback] function",
        note = "arguments are keyed and sent to workers: they must implement serde's Serialize and \
                DeserializeOwned, Clone, Send, Sync, and be 'static"
    )]
    pub trait Argument {}
    impl<T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static> Argument for T {}

    /// What a `#[cacheback]` function must return (in `Ok`, if it returns a `Result`).
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be cached by #[cacheback]",
        note = "cached values are stored and read back: they must implement serde's Serialize and \
                DeserializeOwned, Clone, Send, Sync, and be 'static"
    )]
    pub trait Output {}
    impl<T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static> Output for T {}

    pub fn assert_argument<T: Argument>() {}
    pub fn assert_output<T: Output>() {}
    pub use crate::registry::Submitted;
    pub use futures::future::BoxFuture;
    pub use inventory;
}
