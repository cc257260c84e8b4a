//! Settings: the original's `CACHEBACK_*` settings and `CACHES`, read from
//! `initializers.cacheback` in a loco `config/*.yaml` (or built in code).
//!
//! ```yaml
//! initializers:
//!   cacheback:
//!     cache_alias: default          # CACHEBACK_CACHE_ALIAS
//!     verify_cache_write: true      # CACHEBACK_VERIFY_CACHE_WRITE
//!     task_queue: in_process        # CACHEBACK_TASK_QUEUE
//!     task_ignore_result: false     # CACHEBACK_TASK_IGNORE_RESULT
//!     in_process:
//!       concurrency: 4
//!     caches:                       # Django's CACHES
//!       default:
//!         backend: memory
//!         max_capacity: 10000
//!       shared:
//!         backend: redis
//!         url: {{ get_env(name="REDIS_URL", default="redis://127.0.0.1:6379") }}
//!         key_prefix: "cacheback:"
//!       dummy:
//!         backend: "null"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{Builder, DEFAULT_CACHE_ALIAS};
use crate::error::Error;
use crate::queue::InProcessQueue;
use crate::store::{MemoryStore, NullStore, RedisStore};

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
    /// write their result to the cache and nowhere else: no queue here keeps
    /// task results, so there is nothing to ignore.
    pub task_ignore_result: bool,
    /// The in-process queue's settings.
    pub in_process: InProcessSettings,
    /// The named stores (Django's `CACHES`).
    pub caches: BTreeMap<String, CacheConfig>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cache_alias: DEFAULT_CACHE_ALIAS.to_owned(),
            verify_cache_write: true,
            task_queue: TaskQueue::InProcess,
            task_ignore_result: false,
            in_process: InProcessSettings::default(),
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
}

/// The in-process queue's settings.
///
/// ```
/// assert_eq!(cacheback::settings::InProcessSettings::default().concurrency, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InProcessSettings {
    /// How many refreshes run at once.
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
    /// A [`RedisStore`].
    Redis {
        /// The Redis URL, e.g. `redis://127.0.0.1:6379/0`.
        url: String,
        /// The key prefix (default `cacheback:`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_prefix: Option<String>,
        /// Connect and response timeout in milliseconds (default 2000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// A [`NullStore`].
    Null,
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
        let mut builder = Builder::default()
            .default_alias(self.cache_alias.clone())
            .verify_cache_write(self.verify_cache_write);
        for (alias, config) in &self.caches {
            builder = match config {
                CacheConfig::Memory { max_capacity } => {
                    let mut store = MemoryStore::builder();
                    if let Some(items) = max_capacity {
                        store = store.max_capacity(*items);
                    }
                    builder.store(alias.clone(), store.build())
                }
                CacheConfig::Redis { url, key_prefix, timeout_ms } => {
                    let mut store = RedisStore::builder(url.clone());
                    if let Some(prefix) = key_prefix {
                        store = store.key_prefix(prefix.clone());
                    }
                    if let Some(ms) = timeout_ms {
                        store = store.timeout(Duration::from_millis(*ms));
                    }
                    let store = store.connect().await.map_err(|e| Error::Config {
                        key: format!("{CONFIG_PATH}.caches.{alias}.url"),
                        message: e.to_string(),
                    })?;
                    builder.store(alias.clone(), store)
                }
                CacheConfig::Null => builder.store(alias.clone(), NullStore),
            };
        }
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
        builder = match self.task_queue {
            TaskQueue::InProcess => {
                builder.queue(InProcessQueue::builder().concurrency(self.in_process.concurrency).build())
            }
        };
        Ok(builder)
    }
}
