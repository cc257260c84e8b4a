//! Errors returned by the engine, stores and queues.

use std::sync::Arc;

/// A boxed error returned by [`Job::fetch`](crate::Job::fetch): any error converts into it with `?`.
///
/// ```
/// use cacheback::FetchError;
/// fn parse(s: &str) -> Result<i64, FetchError> {
///     Ok(s.parse::<i64>()?)
/// }
/// assert!(parse("x").is_err());
/// ```
pub type FetchError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A shared, cloneable error source.
pub type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in cacheback.
///
/// Errors are cheap to clone (sources are shared), so one failed fetch can be
/// handed to every caller waiting on it.
///
/// ```
/// let err = cacheback::Error::UnknownJob { job: "app::Missing".into() };
/// assert_eq!(err.to_string(), "no job named `app::Missing` is registered with this cacheback handle");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A job asked for a cache alias that is not configured.
    #[error("unknown cache alias `{alias}` (configured aliases: {known})")]
    UnknownCacheAlias {
        /// The alias that was asked for.
        alias: String,
        /// The configured aliases, comma separated.
        known: String,
    },
    /// A cache store operation failed.
    #[error("cache store `{alias}` failed to {op} key `{key}`: {source}")]
    Store {
        /// The store's alias.
        alias: String,
        /// The operation (`get`, `set`, `delete`, `claim`, ...).
        op: &'static str,
        /// The key involved.
        key: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// An operation on a whole store (not on one key) failed: a ping, a
    /// `clear`, counting its items.
    #[error("cache store `{alias}` failed to {op}: {source}")]
    StoreAdmin {
        /// The store's alias.
        alias: String,
        /// The operation (`ping`, `clear`, `count the items of`... as in "failed to ...").
        op: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// `verify_cache_write` is on and a stored value did not read back.
    #[error(
        "unable to save data of type `{type_name}` to cache `{alias}` under key `{key}`: \
         the value did not read back (verify_cache_write is on)"
    )]
    VerifyWrite {
        /// The store's alias.
        alias: String,
        /// The key written.
        key: String,
        /// The Rust type of the value.
        type_name: &'static str,
    },
    /// A value could not be encoded for a store or a queue.
    #[error("unable to encode a value of type `{type_name}`: {message}")]
    Encode {
        /// The Rust type of the value.
        type_name: &'static str,
        /// What the encoder said.
        message: String,
    },
    /// A cached item could not be decoded into the job's output type.
    #[error("cached item under key `{key}` does not decode as `{type_name}`: {message}")]
    Decode {
        /// The key read.
        key: String,
        /// The expected Rust type.
        type_name: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// A job's `fetch` failed.
    #[error("job `{job}` failed to fetch key `{key}`: {source}")]
    Fetch {
        /// The job's name.
        job: String,
        /// The cache key being refreshed.
        key: String,
        /// The error returned by `fetch`.
        #[source]
        source: SharedError,
    },
    /// A synchronous fetch took longer than the job's
    /// [`fetch_hard_timeout`](crate::Job::fetch_hard_timeout): the reader
    /// gave up; the fetch goes on in the background and stores its result.
    #[error("job `{job}` took longer than {after:?} to fetch key `{key}` (fetch_hard_timeout)")]
    FetchTimeout {
        /// The job's name.
        job: String,
        /// The cache key being fetched.
        key: String,
        /// The hard timeout.
        after: std::time::Duration,
    },
    /// A cache key could not be derived from the arguments.
    #[error("unable to build a cache key for job `{job}`: {message}")]
    Key {
        /// The job's name.
        job: String,
        /// Why.
        message: String,
    },
    /// A refresh payload names a job that is not registered.
    #[error("no job named `{job}` is registered with this cacheback handle")]
    UnknownJob {
        /// The name in the payload.
        job: String,
    },
    /// A refresh payload could not be turned back into a job call.
    #[error("refresh payload for job `{job}` is invalid: {message}")]
    Payload {
        /// The job's name.
        job: String,
        /// Why.
        message: String,
    },
    /// The arguments of a call do not fit the job (e.g. in
    /// [`set_call`](crate::JobHandle::set_call)).
    #[error("invalid call of job `{job}`: {message}")]
    Call {
        /// The job's name.
        job: String,
        /// What does not fit.
        message: String,
    },
    /// A refresh could not be enqueued.
    #[error("unable to enqueue a refresh of job `{job}`: {source}")]
    Queue {
        /// The job's name.
        job: String,
        /// The queue's error.
        #[source]
        source: QueueError,
    },
    /// The refresh queue does not answer (a [`Cacheback::ping`](crate::Cacheback::ping)).
    #[error("the refresh queue does not answer: {source}")]
    QueueUnavailable {
        /// The queue's error.
        #[source]
        source: QueueError,
    },
    /// A `#[cacheback]` function was called through the cache (its `job(..)`)
    /// with no engine installed ([`Cacheback::install_global`](crate::Cacheback::install_global)).
    #[error(
        "`{function}` is a #[cacheback] function but no engine is installed: call \
         Cacheback::install_global (the loco initializer does)"
    )]
    NoEngine {
        /// The function's job name.
        function: String,
    },
    /// The configuration is invalid.
    #[error("invalid cacheback configuration at `{key}`: {message}")]
    Config {
        /// The configuration key, e.g. `initializers.cacheback.caches.default.url`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    /// The error a job's `fetch` returned, if this is a fetch failure with an
    /// error of type `T`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let io = std::io::Error::other("disk on fire");
    /// let err = cacheback::Error::Fetch { job: "j".into(), key: "k".into(), source: Arc::new(io) };
    /// assert_eq!(err.fetch_error::<std::io::Error>().unwrap().to_string(), "disk on fire");
    /// assert!(err.fetch_error::<std::fmt::Error>().is_none());
    /// ```
    pub fn fetch_error<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match self {
            Self::Fetch { source, .. } => source.downcast_ref::<T>(),
            _ => None,
        }
    }
}

/// Defines a message-plus-source error type for one seam.
macro_rules! seam_error {
    ($(#[$doc:meta])* $name:ident, $example:literal) => {
        $(#[$doc])*
        ///
        /// ```
        #[doc = concat!("let err = cacheback::", stringify!($name), "::new(\"", $example, "\");")]
        #[doc = concat!("assert_eq!(err.to_string(), \"", $example, "\");")]
        /// ```
        #[derive(Debug, Clone, thiserror::Error)]
        #[error("{message}")]
        pub struct $name {
            message: String,
            #[source]
            source: Option<SharedError>,
        }

        impl $name {
            /// An error with a message only.
            pub fn new(message: impl Into<String>) -> Self {
                Self { message: message.into(), source: None }
            }

            /// An error wrapping a source error.
            pub fn with_source(
                message: impl Into<String>,
                source: impl std::error::Error + Send + Sync + 'static,
            ) -> Self {
                Self { message: message.into(), source: Some(Arc::new(source)) }
            }
        }
    };
}

seam_error!(
    /// An error from a [`CacheStore`](crate::store::CacheStore).
    StoreError,
    "connection refused"
);

seam_error!(
    /// An error from a [`RefreshQueue`](crate::queue::RefreshQueue).
    QueueError,
    "queue is closed"
);

impl StoreError {
    /// A Redis error, as a store error. A function, not `From`: a public
    /// `From<redis::RedisError>` would put the `redis` crate's major version
    /// into our semver (the error stays reachable as the `source`).
    pub(crate) fn redis(err: redis::RedisError) -> Self {
        Self { message: format!("redis: {err}"), source: Some(Arc::new(err)) }
    }
}

/// The result type of cacheback operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
