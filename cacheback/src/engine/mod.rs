//! The [`Cacheback`] handle: stores, queue, registry and clock, built once and
//! shared (it is an `Arc` inside, cheap to clone).
//!
//! Here, the handle and its accessors; in `builder` its [`Builder`]; in
//! `global` the handle `#[cacheback]` functions use; in `perform` what a
//! worker and an operator run by job name; in `registry` the registered
//! jobs' refreshers.

mod builder;
mod global;
mod perform;
pub(crate) mod registry;

pub use self::builder::Builder;
pub use self::perform::NamedItem;
pub(crate) use self::registry::{ByName, Detached, Refresher, Registry};

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::error::Error;
use crate::local::LocalCache;
use crate::queue::RefreshQueue;
use crate::singleflight::SingleFlight;
use crate::store::CacheStore;
use crate::telemetry;

/// The alias of the store used when none is configured.
pub const DEFAULT_CACHE_ALIAS: &str = "default";

/// Whether stored values are read back by default (`verify_cache_write`, on
/// as in the original): read by [`Builder`] and the settings.
pub(crate) const DEFAULT_VERIFY_CACHE_WRITE: bool = true;

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
    /// Store reads of keys whose local copy has lapsed, shared by the
    /// readers of one key in this process.
    pub(crate) reads: SingleFlight,
    telemetry: telemetry::Registered,
    /// Whether refreshes of unregistered jobs run in the caller.
    registered_only: bool,
    /// What was logged once already (see `Cacheback::first_time`).
    logged_once: std::sync::Mutex<std::collections::HashSet<String>>,
}

type Extensions = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

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

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cacheback")
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
            store.ping().await.map_err(|source| Error::StoreAdmin {
                alias: alias.clone(),
                op: "ping",
                source,
            })?;
        }
        self.inner.queue.ping().await.map_err(|source| Error::QueueUnavailable { source })
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

    /// The refresher registered under `job`, if any.
    pub(crate) fn refresher_of(&self, job: &str) -> Option<Arc<dyn Refresher>> {
        self.inner.registry.get(job).cloned()
    }

    /// [`extension`](Self::extension), or why a job rebuilt in a worker
    /// cannot have it.
    pub(crate) fn required_extension<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, String> {
        self.extension::<T>().ok_or_else(|| {
            format!(
                "no context of type `{}` among the engine's extensions (Builder::extension)",
                std::any::type_name::<T>()
            )
        })
    }

    /// Whether a refresh of `job` may be queued: it is registered, or this
    /// engine queues every job (see [`Builder::queue_registered_only`]).
    /// Logs, once per job name and engine, a job whose refreshes run in the
    /// caller instead.
    pub(crate) fn may_queue(&self, job: &str) -> bool {
        if !self.inner.registered_only || self.is_registered(job) {
            return true;
        }
        if self.first_time(format!("queue {job}")) {
            tracing::error!(
                target: "cacheback",
                %job,
                "Job {job} is not registered with this engine, so no worker could run its queued \
                 refreshes: they run in the caller instead. Register it where the engine is built \
                 (Builder::register / register_default / register_function / register_model, or the \
                 loco initializer's configure closure)"
            );
        }
        false
    }

    /// Whether this engine has not seen `what` before: for what is logged
    /// once per engine.
    pub(crate) fn first_time(&self, what: String) -> bool {
        self.inner.logged_once.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(what)
    }

    pub(crate) fn flights(&self) -> &SingleFlight {
        &self.inner.flights
    }

    pub(crate) fn reads(&self) -> &SingleFlight {
        &self.inner.reads
    }

    pub(crate) fn telemetry(&self) -> &telemetry::Registered {
        &self.inner.telemetry
    }
}

/// The configured aliases, sorted, for error messages.
pub(crate) fn known_aliases(stores: &HashMap<String, Arc<dyn CacheStore>>) -> String {
    let mut known: Vec<_> = stores.keys().map(String::as_str).collect();
    known.sort_unstable();
    known.join(", ")
}
