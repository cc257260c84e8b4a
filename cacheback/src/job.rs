//! The [`Job`] trait: what to fetch, and the policies that decide when.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::FetchError;
use crate::key::{KeyError, derive_key};

/// Default [`Job::lifetime`]: 10 minutes.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Default [`Job::refresh_timeout`]: 1 minute.
pub const DEFAULT_REFRESH_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Job::cache_ttl`]: 30 days, memcached's longest expiration.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(2_592_000);

/// How a [`get`](crate::JobHandle::get) found its item.
///
/// ```
/// use cacheback::CacheStatus;
/// assert_eq!(CacheStatus::Stale.to_string(), "STALE");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// Nothing was cached.
    Miss,
    /// A fresh item was cached.
    Hit,
    /// An item was cached but its lifetime had passed.
    Stale,
}

impl std::fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Miss => "MISS",
            Self::Hit => "HIT",
            Self::Stale => "STALE",
        })
    }
}

/// The call being answered, as given to [`Job::process_result`]: the caller's
/// arguments before [`Job::prepare_args`].
///
/// ```
/// let args = ("bob".to_string(),);
/// let call = cacheback::Call { args: &args };
/// assert_eq!(call.args.0, "bob");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Call<'a, A> {
    /// The arguments as passed to `get`.
    pub args: &'a A,
}

/// How many times a failed refresh is retried by a queue that retries.
///
/// Serializes as Sidekiq's `retry` field: `true`, `false`, or a count.
///
/// ```
/// use cacheback::Retry;
/// assert_eq!(serde_json::to_string(&Retry::Count(3)).unwrap(), "3");
/// assert_eq!(serde_json::from_str::<Retry>("false").unwrap(), Retry::Enabled(false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Retry {
    /// Retry with the queue's default count (`true`) or never (`false`).
    Enabled(bool),
    /// Retry this many times.
    Count(u32),
}

/// Where and how a job's refreshes are queued (the seed's `task_options`).
///
/// ```
/// use cacheback::{Retry, TaskOptions};
/// let opts = TaskOptions::default().queue("low").retry(Retry::Count(2));
/// assert_eq!(opts.queue.as_deref(), Some("low"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskOptions {
    /// The queue name; `None` uses the configured default queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Retry policy; `None` uses the queue's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

impl TaskOptions {
    /// Routes refreshes to `queue`.
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }
}

/// A cached read.
///
/// Implement [`fetch`](Job::fetch), the expensive read; every other item is a
/// policy with the original's default, which you override to customise. Bind a
/// job to a [`Cacheback`](crate::Cacheback) handle with
/// [`Cacheback::job`](crate::Cacheback::job) and call
/// [`get`](crate::JobHandle::get).
///
/// `Args` is the call's arguments: a tuple for positional arguments, a struct
/// or map for named ones, `()` for none. Both `Args` and `Output` are serde
/// types so that a refresh can run in another process. A job may borrow (a
/// request's context, say); only [registered](crate::Builder::register) job
/// types must be `'static`.
///
/// ```
/// use std::time::Duration;
/// use cacheback::{Cacheback, FetchError, Job};
///
/// #[derive(Default)]
/// struct UserTweets;
///
/// impl Job for UserTweets {
///     type Args = (String,);
///     type Output = Vec<String>;
///
///     async fn fetch(&self, (user,): &(String,)) -> Result<Vec<String>, FetchError> {
///         Ok(vec![format!("hello from {user}")])
///     }
///
///     fn lifetime(&self) -> Duration {
///         Duration::from_secs(20 * 60)
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = Cacheback::builder().register_default::<UserTweets>().build().unwrap();
/// let tweets = cache.job(UserTweets).get(&("bob".into(),)).await.unwrap();
/// assert_eq!(tweets.unwrap().as_slice(), ["hello from bob"]);
/// # });
/// ```
pub trait Job: Send + Sync {
    /// The call's arguments.
    type Args: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// What [`fetch`](Job::fetch) returns and the cache holds.
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Does the expensive work. Required.
    fn fetch(&self, args: &Self::Args) -> impl Future<Output = Result<Self::Output, FetchError>> + Send;

    /// The job's registered name (the seed's `class_path`): the prefix of its
    /// keys and the name a worker looks it up by.
    ///
    /// Defaults to the Rust type path, which is stable for one build. Override
    /// it when keys or queued refreshes must survive renames or compiler
    /// upgrades.
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(std::any::type_name::<Self>())
    }

    /// What a worker needs to rebuild this job (the seed's `get_init_kwargs`).
    /// Passed to the factory given at registration. Defaults to `null`.
    fn init_state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// How long an item is fresh. After it, reads are STALE and trigger a refresh.
    fn lifetime(&self) -> Duration {
        DEFAULT_LIFETIME
    }

    /// How long a queued refresh is trusted to finish; no second refresh of the
    /// item is queued before it passes.
    fn refresh_timeout(&self) -> Duration {
        DEFAULT_REFRESH_TIMEOUT
    }

    /// How long the store keeps an item at all. After it, reads are a MISS.
    fn cache_ttl(&self) -> Duration {
        DEFAULT_CACHE_TTL
    }

    /// Whether a MISS fetches synchronously (`true`) or returns
    /// [`empty`](Job::empty) while a refresh is queued.
    fn fetch_on_miss(&self) -> bool {
        true
    }

    /// An age past which a STALE item is too old to serve: it is fetched
    /// synchronously instead. `None` (the default) always serves stale items.
    fn fetch_on_stale_threshold(&self) -> Option<Duration> {
        None
    }

    /// The store alias; `None` uses the settings' `cache_alias`.
    fn cache_alias(&self) -> Option<&str> {
        None
    }

    /// The name of the field carrying the data in
    /// [`set_call`](crate::JobHandle::set_call) (the seed's `set_data_kwarg`).
    fn set_data_kwarg(&self) -> &str {
        "data"
    }

    /// The names of positional arguments, so that a named call maps onto them
    /// in [`set_call`](crate::JobHandle::set_call), as keyword arguments map
    /// onto parameters in Python. Empty by default; `#[cacheback]` functions
    /// name their parameters.
    fn parameter_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// Queue routing and retry for this job's refreshes.
    fn task_options(&self) -> TaskOptions {
        TaskOptions::default()
    }

    /// The cache key for `args` (already [prepared](Job::prepare_args)).
    /// See [`crate::key`] for the default format.
    fn key(&self, args: &Self::Args) -> Result<String, KeyError> {
        derive_key(&Self::name(), args)
    }

    /// When an item fetched `now` goes stale.
    fn expiry(&self, now: Timestamp, _args: &Self::Args) -> Timestamp {
        now + self.lifetime().as_secs_f64()
    }

    /// Until when a refresh queued `now` is trusted to be pending.
    fn timeout(&self, now: Timestamp, _args: &Self::Args) -> Timestamp {
        now + self.refresh_timeout().as_secs_f64()
    }

    /// Whether a MISS for `args` is fetched synchronously.
    fn should_missing_item_be_fetched_synchronously(&self, _args: &Self::Args) -> bool {
        self.fetch_on_miss()
    }

    /// Whether an item stale by `delta` (time past its expiry) is fetched
    /// synchronously. By default: when it is older than
    /// [`fetch_on_stale_threshold`](Job::fetch_on_stale_threshold).
    fn should_stale_item_be_fetched_synchronously(&self, delta: Duration, _args: &Self::Args) -> bool {
        match self.fetch_on_stale_threshold() {
            None => false,
            Some(threshold) => delta > threshold.saturating_sub(self.lifetime()),
        }
    }

    /// The value returned (and cached) on a MISS that is refreshed
    /// asynchronously. `None` by default.
    fn empty(&self) -> Option<Self::Output> {
        None
    }

    /// Turns the caller's arguments into the ones keyed, queued and fetched.
    fn prepare_args<'a>(&self, args: &'a Self::Args) -> Cow<'a, Self::Args> {
        Cow::Borrowed(args)
    }

    /// Transforms the result right before `get` returns it. `sync_fetch` is
    /// `Some(true)` if this call fetched, `Some(false)` if it queued a refresh,
    /// `None` on a HIT.
    fn process_result(
        &self,
        result: Option<Arc<Self::Output>>,
        _call: &Call<'_, Self::Args>,
        _status: CacheStatus,
        _sync_fetch: Option<bool>,
    ) -> Option<Arc<Self::Output>> {
        result
    }
}
