//! [`Builder`]: what a [`Cacheback`] is built from.
//!
//! Here, what every engine has (stores, queue, clock, extensions) and the
//! one registration primitive, `register_refresher`. The `register*` methods
//! live with what they register: job types in `register.rs`, functions in
//! `function/job.rs`, ORM entities in `orm/jobs.rs` (feature `sea-orm`).
//! Each needs its own module's private types, and those modules depend on
//! the engine: written here, they would make an import cycle
//! (`tests/layering.rs`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Weak};

use super::{
    Cacheback, DEFAULT_CACHE_ALIAS, DEFAULT_VERIFY_CACHE_WRITE, Extensions, Inner, Refresher, Registry,
    known_aliases,
};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::local::LocalCache;
use crate::queue::{InProcessQueue, Performer, RefreshQueue};
use crate::singleflight::SingleFlight;
use crate::store::{CacheStore, MemoryStore};
use crate::telemetry;

/// Configures a [`Cacheback`].
///
/// Without a store, a [`MemoryStore`] is used under `"default"`; without a
/// queue, an [`InProcessQueue`]. Functions marked `#[cacheback]` anywhere in
/// the program are registered by [`build`](Self::build).
///
/// ```
/// use cacheback::Cacheback;
/// use cacheback::queue::InProcessQueue;
/// use cacheback::store::MemoryStore;
/// let cache = Cacheback::builder()
///     .store("default", MemoryStore::new())
///     .store("secondary", MemoryStore::new())
///     .default_alias("default")
///     .verify_cache_write(true)
///     .queue(InProcessQueue::new())
///     .build()
///     .unwrap();
/// assert!(cache.store("secondary").is_ok());
/// ```
pub struct Builder {
    stores: HashMap<String, Arc<dyn CacheStore>>,
    locals: HashMap<String, LocalCache>,
    default_alias: String,
    verify_write: bool,
    queue: Option<Arc<dyn RefreshQueue>>,
    registry: Registry,
    clock: Arc<dyn Clock>,
    extensions: Extensions,
    registered_only: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            stores: HashMap::new(),
            locals: HashMap::new(),
            default_alias: DEFAULT_CACHE_ALIAS.to_owned(),
            verify_write: DEFAULT_VERIFY_CACHE_WRITE,
            queue: None,
            registry: Registry::default(),
            clock: Arc::new(SystemClock),
            extensions: HashMap::from([(TypeId::of::<()>(), Arc::new(()) as Arc<dyn Any + Send + Sync>)]),
            registered_only: false,
        }
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("default_alias", &self.default_alias).finish_non_exhaustive()
    }
}

impl Builder {
    /// Adds a store under `alias` (replacing any store of that alias).
    #[must_use]
    pub fn store(self, alias: impl Into<String>, store: impl CacheStore) -> Self {
        self.store_arc(alias, Arc::new(store))
    }

    /// Adds a shared store under `alias`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cacheback::store::{CacheStore, MemoryStore};
    /// let shared: Arc<dyn CacheStore> = Arc::new(MemoryStore::new());
    /// let cache = cacheback::Cacheback::builder().store_arc("default", shared).build().unwrap();
    /// # let _ = cache;
    /// ```
    #[must_use]
    pub fn store_arc(mut self, alias: impl Into<String>, store: Arc<dyn CacheStore>) -> Self {
        self.stores.insert(alias.into(), store);
        self
    }

    /// Puts a [`LocalCache`] (this process's copy of fresh items) in front of
    /// the store under `alias`: for stores outside the process, whose every
    /// read is a round trip. [`build`](Self::build) fails if `alias` has no store.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheback::{Cacheback, LocalCache};
    /// let cache = Cacheback::builder()
    ///     // .store("default", RedisStore::builder("redis://127.0.0.1:6379").connect().await?)
    ///     .local_cache("default", LocalCache::new(Duration::from_millis(500)))
    ///     .build()
    ///     .unwrap();
    /// # let _ = cache;
    /// ```
    #[must_use]
    pub fn local_cache(mut self, alias: impl Into<String>, local: LocalCache) -> Self {
        self.locals.insert(alias.into(), local);
        self
    }

    /// The alias used by jobs that name none (default `"default"`).
    #[must_use]
    pub fn default_alias(mut self, alias: impl Into<String>) -> Self {
        self.default_alias = alias.into();
        self
    }

    /// Read every non-empty stored value back and fail if it is missing (default on).
    #[must_use]
    pub fn verify_cache_write(mut self, verify: bool) -> Self {
        self.verify_write = verify;
        self
    }

    /// The refresh queue (default: an [`InProcessQueue`]).
    #[must_use]
    pub fn queue(self, queue: impl RefreshQueue) -> Self {
        self.queue_arc(Arc::new(queue))
    }

    /// A shared refresh queue.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cacheback::queue::InProcessQueue;
    /// let cache = cacheback::Cacheback::builder().queue_arc(Arc::new(InProcessQueue::new())).build().unwrap();
    /// # let _ = cache;
    /// ```
    #[must_use]
    pub fn queue_arc(mut self, queue: Arc<dyn RefreshQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The clock (default: the system clock). Tests inject a
    /// [`ManualClock`](crate::ManualClock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Adds a value jobs can read with [`Cacheback::extension`], one per type.
    #[must_use]
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// Queue refreshes only of the jobs this engine has registered; refresh
    /// the others in the caller, with an error logged once per job naming the
    /// fix (default off). Right where the workers are built the same way as
    /// this engine, so that a job missing here is missing there too: the
    /// engines of [`Settings::builder`](crate::settings::Settings::builder)
    /// and of the loco initializer have it on. Off, an unregistered job's
    /// refreshes are queued, and fail in a worker that does not know it
    /// either.
    ///
    /// ```
    /// # use cacheback::{Cacheback, FetchError, Job};
    /// # struct Answer;
    /// # impl Job for Answer {
    /// #     type Args = ();
    /// #     type Output = u32;
    /// #     async fn fetch(&self, _: &()) -> Result<u32, FetchError> { Ok(42) }
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let queue = cacheback::queue::InProcessQueue::builder().manual().build();
    /// let cache = Cacheback::builder().queue(queue.clone()).queue_registered_only(true).build().unwrap();
    /// let dispatch = cache.job(Answer).async_refresh(&()).await.unwrap();
    /// assert_eq!((dispatch, queue.pending()), (cacheback::Dispatch::RefreshedInline, 0));
    /// # });
    /// ```
    #[must_use]
    pub fn queue_registered_only(mut self, registered_only: bool) -> Self {
        self.registered_only = registered_only;
        self
    }

    /// Registers `refresher` to run the payloads of job `name` (what the
    /// `register*` methods and `#[cacheback]` build on).
    pub(crate) fn register_refresher(mut self, name: String, refresher: Arc<dyn Refresher>) -> Self {
        self.registry.insert(name, refresher);
        self
    }

    /// Builds the engine. Fails if the default alias names no store.
    pub fn build(mut self) -> Result<Cacheback, Error> {
        if self.stores.is_empty() {
            self.stores.insert(DEFAULT_CACHE_ALIAS.to_owned(), Arc::new(MemoryStore::new()));
        }
        if !self.stores.contains_key(&self.default_alias) {
            return Err(Error::Config {
                key: "cache_alias".to_owned(),
                message: format!(
                    "the default cache alias `{}` is not a configured store (configured: {})",
                    self.default_alias,
                    known_aliases(&self.stores)
                ),
            });
        }
        if let Some(alias) = self.locals.keys().find(|alias| !self.stores.contains_key(*alias)) {
            return Err(Error::UnknownCacheAlias {
                alias: alias.clone(),
                known: known_aliases(&self.stores),
            });
        }
        let queue = self.queue.unwrap_or_else(|| Arc::new(InProcessQueue::new()));
        self.registry.add_submitted();
        let cache = Cacheback {
            inner: Arc::new(Inner {
                stores: self.stores,
                locals: self.locals,
                default_alias: self.default_alias,
                verify_write: self.verify_write,
                queue,
                registry: self.registry,
                clock: self.clock,
                extensions: self.extensions,
                flights: SingleFlight::default(),
                reads: SingleFlight::default(),
                telemetry: telemetry::Registered::default(),
                registered_only: self.registered_only,
                logged_once: std::sync::Mutex::default(),
            }),
        };
        let inner: Weak<Inner> = Arc::downgrade(&cache.inner);
        let performer: Weak<dyn Performer> = inner;
        cache.inner.queue.attach(performer);
        Ok(cache)
    }
}
