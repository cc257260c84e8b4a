//! The [`Cacheback`] handle: stores, queue, registry and clock, built once and
//! shared (it is an `Arc` inside, cheap to clone).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Instant;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tracing::Instrument;
use tracing::field::Empty;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::Error;
use crate::local::LocalCache;
use crate::payload::{RefreshOutcome, RefreshPayload};
use crate::queue::{InProcessQueue, Performer, RefreshQueue};
use crate::singleflight::SingleFlight;
use crate::store::{CacheStore, MemoryStore};
use crate::telemetry;

/// The alias of the store used when none is configured.
pub const DEFAULT_CACHE_ALIAS: &str = "default";

/// The cacheback engine: named cache stores, a refresh queue, the registry of
/// jobs a worker may run, and a clock.
///
/// ```
/// use cacheback::{Cacheback, FetchError, Job};
/// use cacheback::store::{MemoryStore, NullStore};
///
/// #[derive(Default)]
/// struct Answer;
/// impl Job for Answer {
///     type Args = ();
///     type Output = u32;
///     async fn fetch(&self, _: &()) -> Result<u32, FetchError> { Ok(42) }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = Cacheback::builder()
///     .store("default", MemoryStore::new())
///     .store("dummy", NullStore)
///     .register_default::<Answer>()
///     .build()
///     .unwrap();
/// assert_eq!(*cache.job(Answer).get(&()).await.unwrap().unwrap(), 42);
/// # });
/// ```
#[derive(Clone)]
pub struct Cacheback {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    stores: HashMap<String, Arc<dyn CacheStore>>,
    locals: HashMap<String, LocalCache>,
    default_alias: String,
    verify_write: bool,
    queue: Arc<dyn RefreshQueue>,
    registry: Registry,
    clock: Arc<dyn Clock>,
    extensions: Extensions,
    pub(crate) flights: SingleFlight,
    telemetry: telemetry::Registered,
}

type Extensions = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

/// The handle decorated functions use (see [`Cacheback::install_global`]).
static GLOBAL: RwLock<Option<Cacheback>> = RwLock::new(None);

impl std::fmt::Debug for Cacheback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut aliases: Vec<_> = self.inner.stores.keys().collect();
        aliases.sort();
        f.debug_struct("Cacheback")
            .field("stores", &aliases)
            .field("default_alias", &self.inner.default_alias)
            .field("queue", &self.inner.queue)
            .finish_non_exhaustive()
    }
}

/// A weak reference to a [`Cacheback`], held by queues that run refreshes in
/// this process so the handle and its queue do not keep each other alive.
///
/// ```
/// let cache = cacheback::Cacheback::builder().build().unwrap();
/// let weak = cache.downgrade();
/// assert!(weak.upgrade().is_some());
/// drop(cache);
/// assert!(weak.upgrade().is_none());
/// ```
#[derive(Clone, Debug)]
pub struct WeakCacheback(Weak<Inner>);

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cacheback")
    }
}

impl WeakCacheback {
    /// The handle, if it is still alive.
    pub fn upgrade(&self) -> Option<Cacheback> {
        self.0.upgrade().map(|inner| Cacheback { inner })
    }
}

impl Cacheback {
    /// Starts configuring an engine.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().build().unwrap();
    /// assert_eq!(cache.default_alias(), "default");
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The store under `alias`.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().build().unwrap();
    /// assert!(cache.store("default").is_ok());
    /// assert!(cache.store("nope").is_err());
    /// ```
    pub fn store(&self, alias: &str) -> Result<&Arc<dyn CacheStore>, Error> {
        self.inner.stores.get(alias).ok_or_else(|| Error::UnknownCacheAlias {
            alias: alias.to_owned(),
            known: known_aliases(&self.inner.stores),
        })
    }

    /// The aliases of the configured stores, sorted.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().build().unwrap();
    /// assert_eq!(cache.aliases(), ["default"]);
    /// ```
    pub fn aliases(&self) -> Vec<String> {
        let mut aliases: Vec<_> = self.inner.stores.keys().cloned().collect();
        aliases.sort_unstable();
        aliases
    }

    /// The [`LocalCache`] in front of the store under `alias`, if it has one.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = cacheback::Cacheback::builder()
    ///     .local_cache("default", cacheback::LocalCache::new(Duration::from_secs(1)))
    ///     .build()
    ///     .unwrap();
    /// assert!(cache.local_cache("default").is_some());
    /// ```
    pub fn local_cache(&self, alias: &str) -> Option<&LocalCache> {
        self.inner.locals.get(alias)
    }

    /// The alias used by jobs that name none.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().build().unwrap();
    /// assert_eq!(cache.default_alias(), "default");
    /// ```
    pub fn default_alias(&self) -> &str {
        &self.inner.default_alias
    }

    /// Whether stored values are read back to check the write
    /// (`verify_cache_write`).
    ///
    /// ```
    /// assert!(cacheback::Cacheback::builder().build().unwrap().verifies_writes());
    /// ```
    pub fn verifies_writes(&self) -> bool {
        self.inner.verify_write
    }

    /// The refresh queue.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().build().unwrap();
    /// let _queue = cache.queue();
    /// ```
    pub fn queue(&self) -> &Arc<dyn RefreshQueue> {
        &self.inner.queue
    }

    /// The current time on the engine's clock.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().clock(cacheback::ManualClock::at(5.0)).build().unwrap();
    /// assert_eq!(cache.now(), 5.0);
    /// ```
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Whether a job of this name can be run from a payload.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().build().unwrap();
    /// assert!(!cache.is_registered("app::Unknown"));
    /// ```
    pub fn is_registered(&self, job: &str) -> bool {
        self.inner.registry.get(job).is_some()
    }

    /// The names of the registered jobs, sorted.
    ///
    /// ```
    /// # use cacheback::{Cacheback, FetchError, Job};
    /// #[derive(Default)]
    /// struct Answer;
    /// # impl Job for Answer {
    /// #     type Args = ();
    /// #     type Output = u32;
    /// #     async fn fetch(&self, _: &()) -> Result<u32, FetchError> { Ok(42) }
    /// # }
    /// let cache = Cacheback::builder().register_default::<Answer>().build().unwrap();
    /// assert!(cache.registered_jobs().contains(&Answer::name().into_owned()));
    /// ```
    pub fn registered_jobs(&self) -> Vec<String> {
        let mut names: Vec<_> = self.inner.registry.names().map(str::to_owned).collect();
        names.sort_unstable();
        names
    }

    /// A weak reference to this handle.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().build().unwrap();
    /// assert!(cache.downgrade().upgrade().is_some());
    /// ```
    pub fn downgrade(&self) -> WeakCacheback {
        WeakCacheback(Arc::downgrade(&self.inner))
    }

    /// Checks that every store and the queue answer; returns the first failure.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// cacheback::Cacheback::builder().build().unwrap().ping().await.unwrap();
    /// # });
    /// ```
    pub async fn ping(&self) -> Result<(), Error> {
        let mut aliases: Vec<_> = self.inner.stores.iter().collect();
        aliases.sort_by_key(|(alias, _)| alias.as_str());
        for (alias, store) in aliases {
            store.ping().await.map_err(|source| Error::Store {
                alias: alias.clone(),
                op: "ping",
                key: String::new(),
                source,
            })?;
        }
        self.inner.queue.ping().await.map_err(|source| Error::Queue { job: "(ping)".to_owned(), source })
    }

    /// Runs one queued refresh: the worker's entry point (the original's
    /// `perform_async_refresh`). Only registered jobs run; an unknown name or
    /// undecodable arguments are logged and returned as errors, never a panic.
    ///
    /// ```
    /// use cacheback::{Cacheback, Error};
    /// use cacheback::queue::RefreshPayload;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = Cacheback::builder().build().unwrap();
    /// let payload = RefreshPayload::new("foomodule::BarJob", serde_json::json!([]), "foomodule::BarJob");
    /// let err = cache.perform(&payload).await.unwrap_err();
    /// assert!(matches!(err, Error::UnknownJob { .. }));
    /// # });
    /// ```
    pub async fn perform(&self, payload: &RefreshPayload) -> Result<RefreshOutcome, Error> {
        let Some(refresher) = self.inner.registry.get(&payload.job).cloned() else {
            tracing::error!(
                target: "cacheback",
                job = %payload.job,
                state = %payload.state,
                "Unable to construct {} with state {}: no such job is registered",
                payload.job,
                payload.state,
            );
            return Err(Error::UnknownJob { job: payload.job.clone() });
        };
        let span = tracing::info_span!(
            target: "cacheback",
            "cacheback.refresh",
            job = %payload.job,
            key = %payload.key,
            mode = "queued",
            outcome = Empty,
        );
        crate::trace_context::adopt(&span, payload.trace.as_ref());
        span.in_scope(|| {
            tracing::info!(target: "cacheback", "Using {} with state {}", payload.job, payload.state);
            tracing::info!(target: "cacheback", "Calling refresh with args {}", payload.args);
        });
        let start = Instant::now();
        let outcome = refresher.refresh(self, payload).instrument(span.clone()).await;
        span.in_scope(|| match &outcome {
            Ok(RefreshOutcome::Refreshed) => {
                span.record("outcome", "ok");
                tracing::info!(target: "cacheback", "Refreshed cache in {:.6} seconds", start.elapsed().as_secs_f64());
            }
            Ok(RefreshOutcome::SkippedFresh) => {
                span.record("outcome", "skipped_fresh");
                tracing::info!(target: "cacheback", key = %payload.key, "Skipped refresh: the item is already fresh");
            }
            Err(err) => {
                span.record("outcome", "error");
                tracing::error!(target: "cacheback", error = %err, "Error running job: '{err}'");
            }
        });
        outcome
    }

    /// [`JobHandle::invalidate`](crate::JobHandle::invalidate) for a job known
    /// only by its registered name, with its arguments as JSON (as they travel
    /// in a refresh payload): marks the item stale, re-stored for the job's
    /// refresh timeout, and queues a refresh; does nothing if nothing is
    /// cached. The job is rebuilt by its factory from `state` (its
    /// [`init_state`](crate::Job::init_state); `Value::Null` for jobs whose
    /// factory ignores it). Returns the item's key. What operators run as
    /// `cargo loco task cacheback command:invalidate`.
    ///
    /// ```
    /// use cacheback::{Cacheback, Error, FetchError, Job};
    /// use serde_json::{Value, json};
    /// #[derive(Default)]
    /// struct Double;
    /// impl Job for Double {
    ///     type Args = (u32,);
    ///     type Output = u32;
    ///     async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> { Ok(n * 2) }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// // A manual queue holds the refresh, so the re-stored item can be looked at.
    /// let queue = cacheback::queue::InProcessQueue::builder().manual().build();
    /// let cache = Cacheback::builder().queue(queue.clone()).register_default::<Double>().build().unwrap();
    /// cache.job(Double).set(&(21,), 42).await.unwrap();
    /// let key = cache.invalidate_by_name(&Double::name(), &Value::Null, &json!([21])).await.unwrap();
    /// assert_eq!(key, cache.job(Double).key(&(21,)).unwrap());
    /// let item = cache.job(Double).raw_get(&(21,)).await.unwrap().unwrap();
    /// assert!(item.expiry <= cache.now() + 60.0, "stale, for the refresh timeout");
    /// assert_eq!(queue.pending(), 1, "and a refresh is queued");
    ///
    /// let err = cache.invalidate_by_name("app::Nope", &Value::Null, &json!([])).await.unwrap_err();
    /// assert!(matches!(err, Error::UnknownJob { .. }));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnknownJob`] for a name no job is registered under;
    /// [`Error::Call`] for `args` that do not decode as the job's; the
    /// errors of the factory, the key, the store.
    pub async fn invalidate_by_name(
        &self,
        job: &str,
        state: &serde_json::Value,
        args: &serde_json::Value,
    ) -> Result<String, Error> {
        self.refresher(job)?.by_name(self, ByName::Invalidate, state, args).await
    }

    /// [`JobHandle::delete`](crate::JobHandle::delete) for a job known only by
    /// its registered name, with its arguments as JSON: removes the item from
    /// the job's store (and this process's local cache). As
    /// [`invalidate_by_name`](Self::invalidate_by_name) otherwise.
    ///
    /// ```
    /// use cacheback::{Cacheback, FetchError, Job};
    /// use serde_json::{Value, json};
    /// #[derive(Default)]
    /// struct Double;
    /// impl Job for Double {
    ///     type Args = (u32,);
    ///     type Output = u32;
    ///     async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> { Ok(n * 2) }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = Cacheback::builder().register_default::<Double>().build().unwrap();
    /// cache.job(Double).set(&(21,), 42).await.unwrap();
    /// cache.delete_by_name(&Double::name(), &Value::Null, &json!([21])).await.unwrap();
    /// assert!(cache.job(Double).raw_get(&(21,)).await.unwrap().is_none());
    /// assert!(cache.delete_by_name(&Double::name(), &Value::Null, &json!(["x"])).await.is_err());
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`invalidate_by_name`](Self::invalidate_by_name).
    pub async fn delete_by_name(
        &self,
        job: &str,
        state: &serde_json::Value,
        args: &serde_json::Value,
    ) -> Result<String, Error> {
        self.refresher(job)?.by_name(self, ByName::Delete, state, args).await
    }

    fn refresher(&self, job: &str) -> Result<Arc<dyn Refresher>, Error> {
        self.inner.registry.get(job).cloned().ok_or_else(|| Error::UnknownJob { job: job.to_owned() })
    }

    /// The value of type `T` given to [`Builder::extension`]: what jobs rebuilt
    /// in a worker need from their process (a database connection, loco's
    /// `AppContext`). `()` is always there.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().extension(7u32).build().unwrap();
    /// assert_eq!(*cache.extension::<u32>().unwrap(), 7);
    /// assert!(cache.extension::<String>().is_none());
    /// ```
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let any = Arc::clone(self.inner.extensions.get(&TypeId::of::<T>())?);
        any.downcast::<T>().ok()
    }

    /// Makes this handle the one [`global`](Self::global) returns: the engine
    /// behind `#[cacheback]` functions. The loco initializer installs its
    /// handle. Installing again replaces it.
    ///
    /// ```
    /// let cache = cacheback::Cacheback::builder().build().unwrap();
    /// cache.install_global();
    /// assert!(cacheback::Cacheback::global().is_some());
    /// ```
    pub fn install_global(&self) {
        *GLOBAL.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(self.clone());
    }

    /// Removes the global handle: `#[cacheback]` functions are plain calls again.
    ///
    /// ```
    /// cacheback::Cacheback::uninstall_global();
    /// assert!(cacheback::Cacheback::global().is_none());
    /// ```
    pub fn uninstall_global() {
        *GLOBAL.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The handle installed with [`install_global`](Self::install_global), if any.
    ///
    /// ```
    /// let _maybe = cacheback::Cacheback::global();
    /// ```
    pub fn global() -> Option<Cacheback> {
        GLOBAL.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn flights(&self) -> &SingleFlight {
        &self.inner.flights
    }

    pub(crate) fn telemetry(&self) -> &telemetry::Registered {
        &self.inner.telemetry
    }
}

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
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            stores: HashMap::new(),
            locals: HashMap::new(),
            default_alias: DEFAULT_CACHE_ALIAS.to_owned(),
            verify_write: true,
            queue: None,
            registry: Registry::default(),
            clock: Arc::new(SystemClock),
            extensions: HashMap::from([(TypeId::of::<()>(), Arc::new(()) as Arc<dyn Any + Send + Sync>)]),
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
                telemetry: telemetry::Registered::default(),
            }),
        };
        let inner: Weak<Inner> = Arc::downgrade(&cache.inner);
        let performer: Weak<dyn Performer> = inner;
        cache.inner.queue.attach(performer);
        Ok(cache)
    }
}

/// The configured aliases, sorted, for error messages.
fn known_aliases(stores: &HashMap<String, Arc<dyn CacheStore>>) -> String {
    let mut known: Vec<_> = stores.keys().map(String::as_str).collect();
    known.sort_unstable();
    known.join(", ")
}

/// Runs the refresh payloads of one job name: implemented for registered job
/// types, and by `#[cacheback]` for decorated functions.
#[doc(hidden)]
pub trait Refresher: Send + Sync {
    fn refresh<'a>(
        &'a self,
        cache: &'a Cacheback,
        payload: &'a RefreshPayload,
    ) -> BoxFuture<'a, Result<RefreshOutcome, Error>>;

    /// Rebuilds the job from `state`, decodes `args` as its arguments and
    /// does `op` on their item; returns the item's key.
    fn by_name<'a>(
        &'a self,
        cache: &'a Cacheback,
        op: ByName,
        state: &'a serde_json::Value,
        args: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<String, Error>>;
}

/// What [`Cacheback::invalidate_by_name`] and [`Cacheback::delete_by_name`]
/// do to an item, through its job's [`Refresher`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByName {
    /// [`JobHandle::invalidate`](crate::JobHandle::invalidate).
    Invalidate,
    /// [`JobHandle::delete`](crate::JobHandle::delete).
    Delete,
}

/// A refresher submitted from anywhere in the program (by `#[cacheback]`),
/// registered by every [`Builder::build`].
#[doc(hidden)]
pub struct Submitted {
    pub name: fn() -> String,
    pub refresher: fn() -> Arc<dyn Refresher>,
}

inventory::collect!(Submitted);

/// The refreshers of an engine, by job name.
#[derive(Default)]
struct Registry {
    refreshers: HashMap<String, Arc<dyn Refresher>>,
}

impl Registry {
    fn insert(&mut self, name: String, refresher: Arc<dyn Refresher>) {
        self.refreshers.insert(name, refresher);
    }

    /// Adds the submitted refreshers whose names are not registered yet.
    fn add_submitted(&mut self) {
        for submitted in inventory::iter::<Submitted> {
            self.refreshers.entry((submitted.name)()).or_insert_with(|| (submitted.refresher)());
        }
    }

    fn get(&self, name: &str) -> Option<&Arc<dyn Refresher>> {
        self.refreshers.get(name)
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.refreshers.keys().map(String::as_str)
    }
}

/// What a queue runs refreshes with: the engine it was attached to.
#[async_trait]
impl Performer for Inner {
    async fn perform(self: Arc<Self>, payload: &RefreshPayload) -> Result<RefreshOutcome, Error> {
        Cacheback { inner: self }.perform(payload).await
    }
}

/// A worker runs refreshes with the engine it was built with.
#[async_trait]
impl Performer for Cacheback {
    async fn perform(self: Arc<Self>, payload: &RefreshPayload) -> Result<RefreshOutcome, Error> {
        Cacheback::perform(&self, payload).await
    }
}
