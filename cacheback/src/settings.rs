//! Settings: the original's `CACHEBACK_*` settings and `CACHES`, read from
//! `initializers.cacheback` in a loco `config/*.yaml` (or built in code).
//!
//! loco renders `<%= ... %>` before parsing the YAML: quote templated strings.
//!
//! ```yaml
//! initializers:
//!   cacheback:
//!     cache_alias: default          # CACHEBACK_CACHE_ALIAS
//!     verify_cache_write: true      # CACHEBACK_VERIFY_CACHE_WRITE
//!     task_queue: sidekiq           # CACHEBACK_TASK_QUEUE: in_process | sidekiq | loco
//!     task_ignore_result: false     # CACHEBACK_TASK_IGNORE_RESULT
//!     in_process:
//!       concurrency: 4
//!     sidekiq:
//!       url: "<%= get_env(name="REDIS_URL", default="redis://127.0.0.1:6379") %>"
//!       queues: [cacheback]         # the worker's, highest priority first; the first is the default
//!       concurrency: 10
//!       retry: true                 # default retry: true (25), false (straight to dead), or a count
//!       shutdown_timeout_secs: 25
//!       poll_interval_secs: 5       # how often due retries go back onto their queues
//!       timeout_ms: 2000            # connect and response timeout
//!       timestamps: seconds         # new jobs' times: seconds (every Sidekiq) | milliseconds (Sidekiq 8)
//!       task_options:               # per job, over the job's own task_options
//!         "sandbox::jobs::VanillaJob": { queue: slow, retry: 3 }
//!     caches:                       # Django's CACHES
//!       default:
//!         backend: memory
//!         max_capacity: 10000
//!       shared:
//!         backend: redis
//!         url: "<%= get_env(name="REDIS_URL", default="redis://127.0.0.1:6379") %>"
//!         key_prefix: "cacheback:"
//!         local:                    # an in-process copy of fresh items (none by default)
//!           ttl_ms: 500             # how long another process's write may go unseen here
//!           max_capacity: 10000
//!           coherent: true          # unless Redis evicts the copy on each write (default false)
//!       sharded:
//!         backend: redis
//!         cluster: "redis://10.0.0.1:7101,redis://10.0.0.2:7102"   # a Redis Cluster's seed nodes
//!       failover:
//!         backend: redis
//!         sentinel: "mymaster@10.0.0.1:26379,10.0.0.2:26379"       # a Sentinel group (also under sidekiq)
//!       app_db:
//!         backend: database         # feature `sea-orm`: the app's database (ctx.db) unless `url` is given
//!         key_prefix: "cacheback:"
//!         create_tables: false      # the tables come from `cacheback::store::Migration`
//!       dummy:
//!         backend: "null"
//! ```
//!
//! `task_queue: loco` sends refreshes to loco's own queue (`queue:` in the
//! config: Redis, PostgreSQL or SQLite); optional settings under `loco:`
//! (`queue`, the queue name where loco's provider honours one).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{Builder, Cacheback, DEFAULT_CACHE_ALIAS, DEFAULT_VERIFY_CACHE_WRITE};
use crate::error::Error;
use crate::local::LocalCache;
use crate::queue::sidekiq::{SidekiqQueue, SidekiqWorker, Timestamps};
use crate::queue::{InProcessQueue, RefreshQueue};
use crate::store::{MemoryStore, NullStore, RedisStore};
use crate::task::{Retry, TaskOptions};

/// The configuration path of the settings in a loco config file.
pub const CONFIG_PATH: &str = "initializers.cacheback";

/// cacheback's settings.
///
/// Unknown keys are errors, so a typo does not silently fall back to a default.
///
/// ```
/// use cacheback::settings::{CacheConfig, Settings};
/// let settings = Settings::from_json(serde_json::json!({
///     "cache_alias": "shared",
///     "caches": { "shared": { "backend": "memory" } },
/// })).unwrap();
/// assert_eq!(settings.cache_alias, "shared");
/// assert!(settings.verify_cache_write);
/// assert!(matches!(settings.caches["shared"], CacheConfig::Memory { .. }));
///
/// let err = Settings::from_json(serde_json::json!({ "caches": { "x": { "backend": "memcached" } } }))
///     .unwrap_err();
/// assert!(err.to_string().contains("initializers.cacheback.caches.x"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The store alias of jobs that name none (`CACHEBACK_CACHE_ALIAS`).
    pub cache_alias: String,
    /// Read every non-empty stored value back and fail if it is missing
    /// (`CACHEBACK_VERIFY_CACHE_WRITE`).
    pub verify_cache_write: bool,
    /// Which queue runs refreshes (`CACHEBACK_TASK_QUEUE`).
    pub task_queue: TaskQueue,
    /// Accepted for parity with `CACHEBACK_TASK_IGNORE_RESULT`. Refreshes
    /// write their result to the cache and nowhere else: Sidekiq keeps no
    /// results (a finished job leaves only the `stat:processed` count) and the
    /// in-process queue neither, so there is nothing to ignore either way.
    pub task_ignore_result: bool,
    /// The in-process queue's settings.
    pub in_process: InProcessSettings,
    /// The Sidekiq queue's settings; required with `task_queue: sidekiq`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidekiq: Option<SidekiqSettings>,
    /// The settings of loco's queue, with `task_queue: loco`.
    pub loco: LocoQueueSettings,
    /// The named stores (Django's `CACHES`).
    pub caches: BTreeMap<String, CacheConfig>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cache_alias: DEFAULT_CACHE_ALIAS.to_owned(),
            verify_cache_write: DEFAULT_VERIFY_CACHE_WRITE,
            task_queue: TaskQueue::InProcess,
            task_ignore_result: false,
            in_process: InProcessSettings::default(),
            sidekiq: None,
            loco: LocoQueueSettings::default(),
            caches: BTreeMap::from([(
                DEFAULT_CACHE_ALIAS.to_owned(),
                CacheConfig::Memory { max_capacity: None },
            )]),
        }
    }
}

/// Which queue runs refreshes.
///
/// ```
/// use cacheback::settings::TaskQueue;
/// assert_eq!(serde_json::from_str::<TaskQueue>("\"in_process\"").unwrap(), TaskQueue::InProcess);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskQueue {
    /// Tokio tasks in this process.
    #[default]
    InProcess,
    /// Sidekiq jobs in Redis, run by a [`SidekiqWorker`].
    Sidekiq,
    /// Jobs on the loco app's own queue (`ctx.queue_provider`: Redis,
    /// PostgreSQL or SQLite), run by cacheback's loco `BackgroundWorker`
    /// (feature `loco`), or inline in loco's `ForegroundBlocking` and
    /// `BackgroundAsync` worker modes.
    Loco,
}

/// The settings of loco's queue (`loco:`), with `task_queue: loco`.
///
/// ```
/// let s: cacheback::settings::LocoQueueSettings = serde_json::from_value(serde_json::json!({})).unwrap();
/// assert_eq!(s.queue, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocoQueueSettings {
    /// The queue name refreshes go to where a job's task options name none,
    /// on the providers that honour names (loco's Redis queue; its PostgreSQL
    /// and SQLite queues have one table and ignore names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// What an app framework provides that settings cannot name: the app's
/// database (for `backend: database` without a `url`) and its queue (for
/// `task_queue: loco`). The loco initializer passes `ctx.db` and a
/// `LocoQueue`; outside loco there is nothing to provide.
///
/// ```
/// let provided = cacheback::settings::Provided::default();
/// # let _ = provided;
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Provided {
    #[cfg(feature = "sea-orm")]
    database: Option<sea_orm::DatabaseConnection>,
    queue: Option<Arc<dyn RefreshQueue>>,
}

impl std::fmt::Debug for Provided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Provided");
        #[cfg(feature = "sea-orm")]
        out.field("database", &self.database.is_some());
        out.field("queue", &self.queue).finish()
    }
}

impl Provided {
    /// The app's database: the store of `backend: database` caches that give no `url`.
    ///
    /// ```no_run
    /// # let db = sea_orm::DatabaseConnection::default(); // a real app passes ctx.db
    /// let provided = cacheback::settings::Provided::default().database(db);
    /// # let _ = provided;
    /// ```
    #[cfg(feature = "sea-orm")]
    #[must_use]
    pub fn database(mut self, db: sea_orm::DatabaseConnection) -> Self {
        self.database = Some(db);
        self
    }

    /// The app framework's queue: what `task_queue: loco` runs refreshes on.
    ///
    /// ```
    /// let queue = cacheback::queue::InProcessQueue::new();
    /// let provided = cacheback::settings::Provided::default().queue(std::sync::Arc::new(queue));
    /// # let _ = provided;
    /// ```
    #[must_use]
    pub fn queue(mut self, queue: Arc<dyn RefreshQueue>) -> Self {
        self.queue = Some(queue);
        self
    }
}

/// The Sidekiq queue's settings.
///
/// ```
/// use cacheback::settings::SidekiqSettings;
/// let s: SidekiqSettings = serde_json::from_value(serde_json::json!({"url": "redis://127.0.0.1"})).unwrap();
/// assert_eq!(s.queues, ["cacheback"]);
/// assert_eq!(s.concurrency, 10);
/// assert_eq!(s.timestamps, cacheback::queue::sidekiq::Timestamps::Seconds);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidekiqSettings {
    /// The Redis URL of the queues; required unless `sentinel` is given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The Redis Sentinel group whose master holds the queues (none by
    /// default), in place of `url`.
    #[serde(default, skip_serializing_if = "SentinelGroup::is_empty")]
    pub sentinel: SentinelGroup,
    /// The queues a worker runs, highest priority first; the first is where
    /// jobs without a queue go.
    #[serde(default = "default_queues")]
    pub queues: Vec<String>,
    /// How many refreshes a worker runs at once.
    #[serde(default = "default_sidekiq_concurrency")]
    pub concurrency: usize,
    /// The retry of jobs that set none: `true` (25 retries), `false` (none:
    /// straight to the dead set) or a count.
    #[serde(default = "default_retry")]
    pub retry: Retry,
    /// How long a stopping worker waits for in-flight refreshes.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// How often due retries go back onto their queues.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_secs: u64,
    /// Connect and response timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long, in seconds, a worker process is trusted to be alive after
    /// its last heartbeat; then a live worker puts the refreshes it was
    /// running back on their queues (Sidekiq Pro's 60 s by default).
    #[serde(default = "default_heartbeat_lifespan")]
    pub heartbeat_lifespan_secs: u64,
    /// Task options per job name, over the job's own.
    #[serde(default)]
    pub task_options: BTreeMap<String, TaskOptions>,
    /// Refused when given: Sidekiq's queues cannot live on a Redis Cluster
    /// (accepted only to say so, naming the key).
    #[serde(default, skip_serializing_if = "ClusterNodes::is_empty")]
    pub cluster: ClusterNodes,
    /// The form of the times of the jobs the queue pushes: `seconds` (float
    /// epoch seconds, Sidekiq 6.x/7.x's form, which every version reads) or
    /// `milliseconds` (integer epoch milliseconds, Sidekiq 8's). The worker
    /// keeps each job's own form.
    #[serde(default)]
    pub timestamps: Timestamps,
}

fn default_queues() -> Vec<String> {
    vec![crate::queue::sidekiq::DEFAULT_QUEUE.to_owned()]
}
fn default_sidekiq_concurrency() -> usize {
    crate::queue::sidekiq::DEFAULT_CONCURRENCY
}
fn default_retry() -> Retry {
    crate::queue::sidekiq::DEFAULT_RETRY
}
fn default_shutdown_timeout() -> u64 {
    crate::queue::sidekiq::DEFAULT_SHUTDOWN_TIMEOUT.as_secs()
}
fn default_poll_interval() -> u64 {
    crate::queue::sidekiq::DEFAULT_POLL_INTERVAL.as_secs()
}
fn default_heartbeat_lifespan() -> u64 {
    crate::queue::sidekiq::DEFAULT_HEARTBEAT_LIFESPAN.as_secs()
}
fn default_timeout_ms() -> u64 {
    duration_ms(crate::connection::DEFAULT_TIMEOUT)
}
fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The in-process queue's settings.
///
/// ```
/// assert_eq!(cacheback::settings::InProcessSettings::default().concurrency, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InProcessSettings {
    /// How many refreshes run at once (at least 1).
    pub concurrency: usize,
}

impl Default for InProcessSettings {
    fn default() -> Self {
        Self { concurrency: crate::queue::DEFAULT_CONCURRENCY }
    }
}

/// One named store.
///
/// ```
/// use cacheback::settings::CacheConfig;
/// let redis: CacheConfig = serde_json::from_value(serde_json::json!({
///     "backend": "redis", "url": "redis://127.0.0.1:6379"
/// })).unwrap();
/// assert!(matches!(redis, CacheConfig::Redis { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
pub enum CacheConfig {
    /// A [`MemoryStore`].
    Memory {
        /// The most items kept (default 10,000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_capacity: Option<u64>,
    },
    /// A [`RedisStore`]: on one server (`url`), on a Redis Cluster
    /// (`cluster`) or on the master of a Sentinel group (`sentinel`), one of
    /// the three.
    Redis {
        /// The Redis URL, e.g. `redis://127.0.0.1:6379/0`; required unless
        /// `cluster` or `sentinel` is given.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        url: String,
        /// The seed nodes of a Redis Cluster (none by default).
        #[serde(default, skip_serializing_if = "ClusterNodes::is_empty")]
        cluster: ClusterNodes,
        /// A Redis Sentinel group (none by default).
        #[serde(default, skip_serializing_if = "SentinelGroup::is_empty")]
        sentinel: SentinelGroup,
        /// The key prefix (default `cacheback:`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_prefix: Option<String>,
        /// Connect and response timeout in milliseconds (default 2000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// A [`LocalCache`] in front of Redis (none by default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local: Option<LocalSettings>,
    },
    /// A `DatabaseStore` (feature `sea-orm`): items in the app's PostgreSQL
    /// or SQLite.
    Database {
        /// The database URL; absent in a loco app: the app's own database
        /// (`ctx.db`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// The `prefix` column of the store's rows (default `cacheback:`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_prefix: Option<String>,
        /// Each statement's timeout in milliseconds (default 2000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// Whether the store creates its tables when they are missing
        /// (default `false`: they come from `cacheback::store::Migration`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        create_tables: Option<bool>,
        /// A [`LocalCache`] in front of the database (none by default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local: Option<LocalSettings>,
    },
    /// A [`NullStore`].
    Null,
}

/// The seed nodes of a Redis Cluster (`cluster:` under a Redis cache): a
/// list of URLs, or one string of them separated by commas (as an
/// environment variable holds them: `"redis://127.0.0.1:7101,redis://127.0.0.1:7102"`);
/// an empty string is none, so a config can template it from a variable
/// that may be unset.
///
/// ```
/// use cacheback::settings::ClusterNodes;
/// let nodes: ClusterNodes = serde_json::from_value(serde_json::json!("redis://a:1, redis://b:2")).unwrap();
/// assert_eq!(nodes.0, ["redis://a:1", "redis://b:2"]);
/// let none: ClusterNodes = serde_json::from_value(serde_json::json!("")).unwrap();
/// assert!(none.is_empty());
/// let list: ClusterNodes = serde_json::from_value(serde_json::json!(["redis://a:1"])).unwrap();
/// assert_eq!(list.0.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct ClusterNodes(pub Vec<String>);

impl ClusterNodes {
    /// Whether no node is given.
    ///
    /// ```
    /// assert!(cacheback::settings::ClusterNodes::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for ClusterNodes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Text(String),
        }
        let nodes = match Form::deserialize(deserializer)? {
            Form::List(nodes) => nodes,
            Form::Text(text) => text.split(',').map(str::trim).map(str::to_owned).collect(),
        };
        Ok(Self(nodes.into_iter().filter(|node| !node.is_empty()).collect()))
    }
}

/// A Redis Sentinel group (`sentinel:` under a Redis cache or `sidekiq`).
pub use crate::connection::SentinelGroup;

/// A [`LocalCache`]'s settings: `local:` under a Redis cache.
///
/// ```
/// use cacheback::settings::LocalSettings;
/// let local: LocalSettings = serde_json::from_value(serde_json::json!({"ttl_ms": 500})).unwrap();
/// assert_eq!(local.ttl_ms, 500);
/// assert_eq!(local.max_capacity, None);
/// assert!(!local.coherent);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// How long, in milliseconds, a local copy is served before Redis is
    /// asked again: the longest another process's write may go unseen here.
    /// `0` turns the local cache off.
    pub ttl_ms: u64,
    /// The most copies kept (default 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u64>,
    /// Whether Redis tells this process of every write of the store's items
    /// by any process, each evicting the copy (default `false`; see
    /// [`LocalCache::keep_coherent`]): `ttl_ms` is then only an upper bound.
    /// Redis stores only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub coherent: bool,
}

impl LocalSettings {
    /// A local copy served for longer than an hour defeats its purpose.
    const MAX_TTL_MS: u64 = 3_600_000;

    fn check(&self, key: &str) -> Result<(), Error> {
        if self.ttl_ms > Self::MAX_TTL_MS {
            return Err(Error::Config {
                key: key.to_owned(),
                message: format!(
                    "{} ms is longer than the longest local copy lifetime, {} ms (one hour): \
                     another process's writes would go unseen that long",
                    self.ttl_ms,
                    Self::MAX_TTL_MS
                ),
            });
        }
        Ok(())
    }

    fn build(&self) -> LocalCache {
        let mut local = LocalCache::builder().time_to_live(Duration::from_millis(self.ttl_ms));
        if let Some(items) = self.max_capacity {
            local = local.max_capacity(items);
        }
        local.build()
    }
}

impl Settings {
    /// Reads settings from the JSON value of `initializers.cacheback`; errors
    /// name the offending key.
    pub fn from_json(value: serde_json::Value) -> Result<Self, Error> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let key = if path == "." { CONFIG_PATH.to_owned() } else { format!("{CONFIG_PATH}.{path}") };
            Error::Config { key, message: e.into_inner().to_string() }
        })
    }

    /// Builds the stores and queue these settings describe; register jobs on
    /// the returned builder, then [`build`](Builder::build) it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let settings = cacheback::settings::Settings::default();
    /// let cache = settings.builder().await.unwrap().build().unwrap();
    /// assert_eq!(cache.default_alias(), "default");
    /// # });
    /// ```
    pub async fn builder(&self) -> Result<Builder, Error> {
        self.builder_with(&Provided::default()).await
    }

    /// [`builder`](Self::builder), with what the app framework `provided`:
    /// its database and its queue.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cacheback::settings::{Provided, Settings};
    /// let settings = Settings::from_json(serde_json::json!({ "task_queue": "loco" })).unwrap();
    /// let err = settings.builder_with(&Provided::default()).await.unwrap_err();
    /// assert!(err.to_string().contains("initializers.cacheback.task_queue"), "{err}");
    /// let queue = std::sync::Arc::new(cacheback::queue::InProcessQueue::new());
    /// let builder = settings.builder_with(&Provided::default().queue(queue)).await.unwrap();
    /// # let _ = builder;
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`builder`](Self::builder), and [`Error::Config`] naming the key when
    /// the settings ask for what was not provided.
    pub async fn builder_with(&self, provided: &Provided) -> Result<Builder, Error> {
        if !self.caches.contains_key(&self.cache_alias) {
            return Err(Error::Config {
                key: format!("{CONFIG_PATH}.cache_alias"),
                message: format!(
                    "`{}` is not one of the configured caches ({})",
                    self.cache_alias,
                    self.caches.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let queue = self.queue_choice()?;
        // Web processes and workers are built from the same settings.
        let mut builder = Builder::default()
            .default_alias(self.cache_alias.clone())
            .verify_cache_write(self.verify_cache_write)
            .queue_registered_only(true);
        for (alias, config) in &self.caches {
            builder = config.connect_with(alias, builder, provided).await?;
        }
        Ok(builder.queue_arc(queue.connect_with(provided).await?))
    }

    /// The refresh queue these settings choose, its settings checked: the one
    /// place `task_queue` is read.
    ///
    /// ```
    /// use cacheback::settings::{QueueChoice, Settings};
    /// let settings = Settings::default();
    /// assert!(matches!(settings.queue_choice().unwrap(), QueueChoice::InProcess(_)));
    /// let sidekiq = Settings::from_json(serde_json::json!({ "task_queue": "sidekiq" })).unwrap();
    /// let err = sidekiq.queue_choice().unwrap_err();
    /// assert!(err.to_string().contains("initializers.cacheback.sidekiq"), "{err}");
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`], naming the key: the chosen queue's settings are
    /// missing or invalid.
    pub fn queue_choice(&self) -> Result<QueueChoice<'_>, Error> {
        match self.task_queue {
            TaskQueue::InProcess => {
                at_least_one(self.in_process.concurrency, "in_process.concurrency")?;
                Ok(QueueChoice::InProcess(&self.in_process))
            }
            TaskQueue::Sidekiq => {
                let sidekiq = self.sidekiq.as_ref().ok_or_else(|| Error::Config {
                    key: format!("{CONFIG_PATH}.sidekiq"),
                    message: "required with `task_queue: sidekiq` (at least its `url`)".to_owned(),
                })?;
                sidekiq.check()?;
                Ok(QueueChoice::Sidekiq(sidekiq))
            }
            TaskQueue::Loco => {
                if self.loco.queue.as_deref() == Some("") {
                    return Err(Error::Config {
                        key: format!("{CONFIG_PATH}.loco.queue"),
                        message: "must not be empty".to_owned(),
                    });
                }
                Ok(QueueChoice::Loco(&self.loco))
            }
        }
    }

    /// The Sidekiq settings, if Sidekiq is the [chosen](Self::queue_choice)
    /// queue and its settings are valid.
    ///
    /// ```
    /// assert!(cacheback::settings::Settings::default().chosen_sidekiq().is_none());
    /// ```
    pub fn chosen_sidekiq(&self) -> Option<&SidekiqSettings> {
        match self.queue_choice() {
            Ok(QueueChoice::Sidekiq(sidekiq)) => Some(sidekiq),
            _ => None,
        }
    }

    /// The worker these settings describe for `cache`: a [`SidekiqWorker`]
    /// with `task_queue: sidekiq`, `None` with the in-process queue (whose
    /// refreshes run in the process that queues them).
    ///
    /// # Errors
    ///
    /// The Sidekiq settings are invalid or its Redis cannot be reached.
    pub async fn worker(&self, cache: Cacheback) -> Result<Option<SidekiqWorker>, Error> {
        match self.queue_choice()? {
            QueueChoice::InProcess(_) | QueueChoice::Loco(_) => Ok(None),
            QueueChoice::Sidekiq(sidekiq) => sidekiq.worker(cache).await.map(Some),
        }
    }
}

/// The refresh queue [`Settings::queue_choice`] picks, with its settings.
///
/// ```
/// let settings = cacheback::settings::Settings::default();
/// let choice = settings.queue_choice().unwrap();
/// assert!(matches!(choice, cacheback::settings::QueueChoice::InProcess(s) if s.concurrency == 4));
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum QueueChoice<'a> {
    /// `task_queue: in_process`.
    InProcess(&'a InProcessSettings),
    /// `task_queue: sidekiq`.
    Sidekiq(&'a SidekiqSettings),
    /// `task_queue: loco`.
    Loco(&'a LocoQueueSettings),
}

impl QueueChoice<'_> {
    /// The queue, connected.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the queue's URL when it cannot be reached.
    pub async fn connect(self) -> Result<Arc<dyn RefreshQueue>, Error> {
        self.connect_with(&Provided::default()).await
    }

    /// The queue, connected, or the one `provided` for `task_queue: loco`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); with `task_queue: loco`,
    /// [`Error::Config`] when no queue was provided (outside a loco app).
    pub async fn connect_with(self, provided: &Provided) -> Result<Arc<dyn RefreshQueue>, Error> {
        Ok(match self {
            QueueChoice::InProcess(in_process) => Arc::new(in_process.queue()),
            QueueChoice::Sidekiq(sidekiq) => Arc::new(sidekiq.queue().await?),
            QueueChoice::Loco(_) => provided.queue.clone().ok_or_else(|| Error::Config {
                key: format!("{CONFIG_PATH}.task_queue"),
                message: "`loco` runs refreshes on a loco app's queue: it needs cacheback's loco \
                          initializer (feature `loco`); outside loco choose `in_process` or `sidekiq`"
                    .to_owned(),
            })?,
        })
    }
}

impl InProcessSettings {
    /// The queue these settings describe.
    ///
    /// # Panics
    ///
    /// With a concurrency of 0, which [`Settings::from_json`] lets through and
    /// [`Settings::queue_choice`] refuses.
    ///
    /// ```
    /// let queue = cacheback::settings::InProcessSettings::default().queue();
    /// assert_eq!(queue.pending(), 0);
    /// ```
    pub fn queue(&self) -> InProcessQueue {
        InProcessQueue::builder().concurrency(self.concurrency).build()
    }
}

impl SidekiqSettings {
    fn check(&self) -> Result<(), Error> {
        if !self.cluster.is_empty() {
            return Err(Error::Config {
                key: format!("{CONFIG_PATH}.sidekiq.cluster"),
                message: crate::queue::sidekiq::NOT_ON_A_CLUSTER.to_owned(),
            });
        }
        match (self.url.is_empty(), self.sentinel.is_empty()) {
            (true, true) => {
                return Err(Error::Config {
                    key: format!("{CONFIG_PATH}.sidekiq.url"),
                    message: "required: the Redis URL of the queues (or `sentinel`: a Redis Sentinel group)"
                        .to_owned(),
                });
            }
            (false, false) => {
                return Err(Error::Config {
                    key: format!("{CONFIG_PATH}.sidekiq.sentinel"),
                    message: "give `url` (one server) or `sentinel` (a Sentinel group), not both".to_owned(),
                });
            }
            _ => {}
        }
        if self.queues.is_empty() || self.queues.iter().any(String::is_empty) {
            return Err(Error::Config {
                key: format!("{CONFIG_PATH}.sidekiq.queues"),
                message: "name at least one queue, and no empty names".to_owned(),
            });
        }
        at_least_one(self.concurrency, "sidekiq.concurrency")
    }

    /// The queue these settings describe, connected to its Redis: refreshes
    /// go to the first of `queues` unless a job's task options say otherwise.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let settings: cacheback::settings::SidekiqSettings =
    ///     serde_json::from_value(serde_json::json!({"url": "redis://127.0.0.1:6379"})).unwrap();
    /// let queue = settings.queue().await.unwrap();
    /// # let _ = queue;
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `sidekiq.url` when its Redis cannot be reached.
    pub async fn queue(&self) -> Result<SidekiqQueue, Error> {
        self.check()?;
        let queue = match self.sentinel.is_empty() {
            true => SidekiqQueue::builder(self.url.clone()),
            false => SidekiqQueue::sentinel_builder(self.sentinel.clone()),
        };
        let mut queue = queue
            .default_queue(self.queues.first().map_or(crate::queue::sidekiq::DEFAULT_QUEUE, String::as_str))
            .default_retry(self.retry)
            .timestamps(self.timestamps)
            .timeout(Duration::from_millis(self.timeout_ms));
        for (job, options) in &self.task_options {
            queue = queue.task_options(job.clone(), options.clone());
        }
        queue.connect().await.map_err(|e| self.url_error(e))
    }

    /// The worker these settings describe for `cache`, connected.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key: the settings are invalid, or
    /// `sidekiq.url` cannot be reached.
    pub async fn worker(&self, cache: Cacheback) -> Result<SidekiqWorker, Error> {
        self.check()?;
        let worker = match self.sentinel.is_empty() {
            true => SidekiqWorker::builder(cache, self.url.clone()),
            false => SidekiqWorker::sentinel_builder(cache, self.sentinel.clone()),
        };
        worker
            .queues(self.queues.clone())
            .concurrency(self.concurrency)
            .shutdown_timeout(Duration::from_secs(self.shutdown_timeout_secs))
            .heartbeat_lifespan(Duration::from_secs(self.heartbeat_lifespan_secs))
            .poll_interval(Duration::from_secs(self.poll_interval_secs.max(1)))
            .timeout(Duration::from_millis(self.timeout_ms))
            .connect()
            .await
            .map_err(|e| self.url_error(e))
    }

    fn url_error(&self, error: impl std::fmt::Display) -> Error {
        let at = if self.sentinel.is_empty() { "url" } else { "sentinel" };
        Error::Config { key: format!("{CONFIG_PATH}.sidekiq.{at}"), message: error.to_string() }
    }
}

impl CacheConfig {
    /// Adds the store these settings describe to `builder` under `alias`,
    /// connected: the one place a `backend` becomes a store.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cacheback::settings::CacheConfig;
    /// let builder = CacheConfig::Memory { max_capacity: Some(10) }
    ///     .connect("default", cacheback::Cacheback::builder())
    ///     .await
    ///     .unwrap();
    /// assert!(builder.build().unwrap().store("default").is_ok());
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key: the store cannot be reached, or a
    /// setting is out of range.
    pub async fn connect(&self, alias: &str, builder: Builder) -> Result<Builder, Error> {
        self.connect_with(alias, builder, &Provided::default()).await
    }

    /// [`connect`](Self::connect), with the database the app `provided`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn connect_with(
        &self,
        alias: &str,
        builder: Builder,
        provided: &Provided,
    ) -> Result<Builder, Error> {
        let key = |field: &str| format!("{CONFIG_PATH}.caches.{alias}.{field}");
        if let Some(local) = self.local() {
            local.check(&key("local.ttl_ms"))?;
        }
        Ok(match self {
            CacheConfig::Memory { max_capacity } => {
                let mut store = MemoryStore::builder();
                if let Some(items) = max_capacity {
                    store = store.max_capacity(*items);
                }
                builder.store(alias, store.build())
            }
            CacheConfig::Redis { url, cluster, sentinel, key_prefix, timeout_ms, local } => {
                let (mut store, at) = match (!url.is_empty(), !cluster.is_empty(), !sentinel.is_empty()) {
                    (true, false, false) => (RedisStore::builder(url.clone()), "url"),
                    (false, true, false) => (RedisStore::cluster_builder(cluster.0.clone()), "cluster"),
                    (false, false, true) => (RedisStore::sentinel_builder(sentinel.clone()), "sentinel"),
                    (false, false, false) => {
                        return Err(Error::Config {
                            key: key("url"),
                            message: "required: the Redis URL (or `cluster`: the seed nodes of a Redis \
                                      Cluster, or `sentinel`: a Redis Sentinel group)"
                                .to_owned(),
                        });
                    }
                    _ => {
                        return Err(Error::Config {
                            key: key(if sentinel.is_empty() { "cluster" } else { "sentinel" }),
                            message: "give one of `url` (one server), `cluster` (a Redis Cluster) and \
                                      `sentinel` (a Sentinel group)"
                                .to_owned(),
                        });
                    }
                };
                if let Some(prefix) = key_prefix {
                    store = store.key_prefix(prefix.clone());
                }
                if let Some(ms) = timeout_ms {
                    store = store.timeout(Duration::from_millis(*ms));
                }
                let store = store
                    .connect()
                    .await
                    .map_err(|e| Error::Config { key: key(at), message: e.to_string() })?;
                let Some(settings) = local.as_ref().filter(|local| local.ttl_ms > 0) else {
                    return Ok(builder.store(alias, store));
                };
                let copy = settings.build();
                if settings.coherent {
                    copy.keep_coherent(&store)
                        .await
                        .map_err(|e| Error::Config { key: key("local.coherent"), message: e.to_string() })?;
                }
                builder.store(alias, store).local_cache(alias, copy)
            }
            CacheConfig::Database { local: Some(LocalSettings { coherent: true, .. }), .. } => {
                return Err(Error::Config {
                    key: key("local.coherent"),
                    message: "a coherent local copy needs a Redis store (Redis tells of writes); \
                              in front of a database, the copy lives `ttl_ms`"
                        .to_owned(),
                });
            }
            CacheConfig::Database { local, .. } => with_local(
                self.add_database_store(alias, builder, provided, &key).await?,
                alias,
                local.as_ref(),
            ),
            CacheConfig::Null => builder.store(alias, NullStore),
        })
    }

    fn local(&self) -> Option<&LocalSettings> {
        match self {
            CacheConfig::Redis { local, .. } | CacheConfig::Database { local, .. } => local.as_ref(),
            CacheConfig::Memory { .. } | CacheConfig::Null => None,
        }
    }
}

/// `builder` with the local copy `local` describes in front of `alias`, if it is on.
fn with_local(builder: Builder, alias: &str, local: Option<&LocalSettings>) -> Builder {
    match local.filter(|local| local.ttl_ms > 0) {
        Some(local) => builder.local_cache(alias, local.build()),
        None => builder,
    }
}

impl CacheConfig {
    /// Adds the `backend: database` store: on `url`, else on the database
    /// the app `provided`.
    #[cfg(feature = "sea-orm")]
    async fn add_database_store(
        &self,
        alias: &str,
        builder: Builder,
        provided: &Provided,
        key: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Builder, Error> {
        use crate::store::DatabaseStore;
        let CacheConfig::Database { url, key_prefix, timeout_ms, create_tables, .. } = self else {
            return Ok(builder);
        };
        let mut store = match (url, &provided.database) {
            (Some(url), _) => DatabaseStore::open(url)
                .await
                .map_err(|e| Error::Config { key: key("url"), message: e.to_string() })?,
            (None, Some(db)) => DatabaseStore::builder(db.clone()),
            (None, None) => {
                return Err(Error::Config {
                    key: key("url"),
                    message: "required outside a loco app (in one, the store is on the app's database)"
                        .to_owned(),
                });
            }
        };
        if let Some(prefix) = key_prefix {
            store = store.key_prefix(prefix.clone());
        }
        if let Some(ms) = timeout_ms {
            store = store.timeout(Duration::from_millis(*ms));
        }
        let store = store
            .create_tables(create_tables.unwrap_or(false))
            .connect()
            .await
            .map_err(|e| Error::Config { key: key("backend"), message: e.to_string() })?;
        Ok(builder.store(alias, store))
    }

    /// Without feature `sea-orm` there is no database store.
    #[cfg(not(feature = "sea-orm"))]
    async fn add_database_store(
        &self,
        _: &str,
        _: Builder,
        _: &Provided,
        key: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Builder, Error> {
        Err(Error::Config {
            key: key("backend"),
            message: "`database` needs cacheback's feature `sea-orm`".to_owned(),
        })
    }
}

/// `value` if it is at least 1, else the error naming `key` (under
/// `initializers.cacheback`).
fn at_least_one(value: usize, key: &str) -> Result<(), Error> {
    if value == 0 {
        return Err(Error::Config {
            key: format!("{CONFIG_PATH}.{key}"),
            message: "must be at least 1".to_owned(),
        });
    }
    Ok(())
}
