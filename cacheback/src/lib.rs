#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Where things live (docs/contributing.md has the map). Each item has one
// public path: the everyday types are re-exported at the root from private
// modules; each subsystem is a public module whose items are not also at the
// root (`cacheback::store::RedisStore`, `cacheback::policy::Options`).
mod clock;
mod connection;
#[cfg(doctest)]
mod doc_snippets;
mod engine;
mod error;
mod expiring;
pub mod function;
mod handle;
mod id;
mod item;
mod job;
pub mod key;
mod local;
#[cfg(feature = "loco")]
#[cfg_attr(docsrs, doc(cfg(feature = "loco")))]
pub mod loco;
#[cfg(feature = "sea-orm")]
#[cfg_attr(docsrs, doc(cfg(feature = "sea-orm")))]
pub mod orm;
mod payload;
pub mod policy;
pub mod queue;
mod register;
pub mod settings;
mod singleflight;
pub mod store;
mod tags;
mod task;
pub mod telemetry;
mod trace_context;
mod tracking;

pub use self::clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use self::connection::SentinelGroup;
pub use self::engine::{Builder, Cacheback, DEFAULT_CACHE_ALIAS, NamedItem};
pub use self::error::{Error, FetchError, QueueError, Result, SharedError, StoreError};
pub use self::handle::{JobHandle, Lookup};
pub use self::item::CachedItem;
pub use self::job::{CacheStatus, Call, Dispatch, Job, Refetched};
pub use self::local::{DEFAULT_LOCAL_CAPACITY, FALLBACK_WINDOW, LocalCache, LocalCacheBuilder};
pub use self::task::{Retry, TaskOptions};
/// Caches an `async fn` (the `@cacheback` decorator of the original, django-cacheback).
///
/// The function keeps its signature: callers call it as before and get its
/// value, from the cache when possible. Options, as the original decorator's:
///
/// | option | meaning |
/// |---|---|
/// | `name = "app::jobs::names"` | the job's name, instead of the function's path: the prefix of its keys, the name its refreshes are queued and registered under and its [`task_options`](crate::settings) key; pin it to keep them across a move or rename. Not empty |
/// | `lifetime = 600` (or a bare `5` first) | seconds an item is fresh |
/// | `fetch_on_miss = true` | fetch on a miss; with `false` a miss returns the output's `Default` and refreshes in the background |
/// | `cache_alias = "name"` | the store |
/// | `job = Type` | a custom [`policy::Policy`] (the original's `job_class`); its `fetch_on_miss` false needs the attribute's too, for the `Default` to return |
/// | `queue = "name"`, `retry = 3` | task options of its refreshes |
/// | `set_data_kwarg = "name"` | the data field of [`JobHandle::set_call`] |
/// | `extra(key = value, ..)` | extra options for the custom policy (the original's `job_class_kwargs`) |
/// | `refresh_timeout`, `fetch_on_stale_threshold`, `stale_if_error`, `max_stale_age`, `cache_ttl` | seconds, as the [`Job`] policies |
///
/// Arguments are the cache key and the refresh payload, so they are owned
/// serde values. A leading `&Context` argument is neither: the caller passes
/// it, and a worker passes the engine's [extension](Builder::extension) of
/// that type (the loco initializer adds loco's `AppContext`).
///
/// Next to the function, a module of the same name holds `job(..)` (the
/// [`JobHandle`] on the [global](Cacheback::install_global) engine: `set`,
/// `delete`, `invalidate`, `raw_get`, ...) and `uncached(..)` (the function
/// itself, the original's `fn.fn`). Every decorated function is registered for
/// the worker under its name: `module::path::function`, or its `name = "..."`. Without an installed engine, or
/// when the cache fails, calls go straight to the function; a function
/// returning `Result` gets its own error back when its fetch fails.
///
/// ```
/// use cacheback::{Cacheback, cacheback};
///
/// #[derive(Clone)]
/// pub struct Db { prefix: String }
///
/// #[cacheback(lifetime = 30)]
/// async fn names(db: &Db, q: String) -> Result<Vec<String>, std::io::Error> {
///     Ok(vec![format!("{}{q}", db.prefix)]) // the slow read
/// }
///
/// # fn main() { tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = Cacheback::builder().extension(Db { prefix: "worker:".into() }).build().unwrap();
/// cache.install_global();
/// let db = Db { prefix: "web:".into() };
/// assert_eq!(names(&db, "a".into()).await.unwrap(), ["web:a"]);
/// names::job(&db).unwrap().set(&("a".into(),), vec!["set".into()]).await.unwrap();
/// assert_eq!(names(&db, "a".into()).await.unwrap(), ["set"]);
/// assert_eq!(names::uncached(&db, "a".into()).await.unwrap(), ["web:a"]);
/// # }) }
/// ```
///
/// Decorated functions live at module level (not inside another function's
/// body): their module imports the items of the module around them.
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
    pub use crate::engine::registry::Submitted;
    pub use futures::future::BoxFuture;
    pub use inventory;
}
