//! The [`Job`] trait: what to fetch, and the policies that decide when.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::error::FetchError;
use crate::key::{KeyError, derive_key};
use crate::policy::{Options, past_stale_threshold, policies, policy_methods};

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

/// What a [`Job::refetch`] found: new data, or the stale data still good.
///
/// ```
/// let found: cacheback::Refetched<u32> = cacheback::Refetched::Modified(2);
/// assert!(matches!(found, cacheback::Refetched::Modified(2)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refetched<T> {
    /// New data, stored as a fetch's.
    Modified(T),
    /// The source has not changed: keep the stale data, fresh again.
    NotModified,
}

/// What [`JobHandle::async_refresh`](crate::JobHandle::async_refresh) did.
///
/// ```
/// use cacheback::Dispatch;
/// assert_ne!(Dispatch::Enqueued, Dispatch::Failed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// The refresh was queued.
    Enqueued,
    /// The queue failed; the refresh ran synchronously instead.
    RefreshedInline,
    /// The queue failed and so did the synchronous refresh (both logged).
    Failed,
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

    /// A refresh of an item that has data: `stale` is that data. Answer
    /// [`Refetched::NotModified`] when the source says it has not changed
    /// (an HTTP 304 against an ETag kept in the value, a row's unchanged
    /// version): the stale data is kept, its expiry renewed and its fetch time
    /// set to now, without encoding the data again. By default, a
    /// [`fetch`](Job::fetch), as new data. Used by synchronous and queued
    /// refreshes alike (Caffeine's `reload(key, old)`).
    ///
    /// ```
    /// use cacheback::{Cacheback, FetchError, Job, Refetched};
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// /// A page and the version it was served at.
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Page { version: u32, body: String }
    /// struct Pages { version: AtomicU32 }
    /// impl Job for Pages {
    ///     type Args = ();
    ///     type Output = Page;
    ///     async fn fetch(&self, _: &()) -> Result<Page, FetchError> {
    ///         let version = self.version.load(Ordering::SeqCst);
    ///         Ok(Page { version, body: format!("v{version}") })
    ///     }
    ///     async fn refetch(&self, args: &(), stale: &Page) -> Result<Refetched<Page>, FetchError> {
    ///         if stale.version == self.version.load(Ordering::SeqCst) {
    ///             return Ok(Refetched::NotModified); // "304"
    ///         }
    ///         self.fetch(args).await.map(Refetched::Modified)
    ///     }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let pages = Cacheback::builder().build().unwrap().job(Pages { version: AtomicU32::new(1) });
    /// assert_eq!(pages.get(&()).await.unwrap().unwrap().body, "v1");
    /// assert_eq!(pages.refresh(&()).await.unwrap().body, "v1", "not modified: kept");
    /// pages.job().version.store(2, Ordering::SeqCst);
    /// assert_eq!(pages.refresh(&()).await.unwrap().body, "v2");
    /// # });
    /// ```
    fn refetch(
        &self,
        args: &Self::Args,
        stale: &Self::Output,
    ) -> impl Future<Output = Result<Refetched<Self::Output>, FetchError>> + Send {
        let _ = stale;
        async move { self.fetch(args).await.map(Refetched::Modified) }
    }

    /// Fetches the data for several arguments at once: the misses of one
    /// [`get_many`](crate::JobHandle::get_many) that fetch synchronously, so
    /// that a job reading rows answers them with one `IN (...)` query. The
    /// answers in the order of `args` (prepared, each asked once), as many
    /// as asked; an error fails every read of the call. By default, a
    /// [`fetch`](Job::fetch) of each, run concurrently.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use cacheback::{Cacheback, FetchError, Job};
    ///
    /// #[derive(Default)]
    /// struct Squares { queries: AtomicUsize }
    /// impl Job for Squares {
    ///     type Args = (u64,);
    ///     type Output = u64;
    ///     async fn fetch(&self, (n,): &(u64,)) -> Result<u64, FetchError> {
    ///         Ok(self.fetch_many(&[(*n,)]).await?.remove(0))
    ///     }
    ///     async fn fetch_many(&self, args: &[(u64,)]) -> Result<Vec<u64>, FetchError> {
    ///         self.queries.fetch_add(1, Ordering::SeqCst); // one query for all of them
    ///         Ok(args.iter().map(|(n,)| n * n).collect())
    ///     }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let squares = Cacheback::builder().build().unwrap().job(Squares::default());
    /// let got = squares.get_many(&[(2,), (3,), (2,)]).await.unwrap();
    /// assert_eq!(got.iter().map(|v| *v.as_deref().unwrap()).collect::<Vec<_>>(), [4, 9, 4]);
    /// assert_eq!(squares.job().queries.load(Ordering::SeqCst), 1);
    /// # });
    /// ```
    fn fetch_many(
        &self,
        args: &[Self::Args],
    ) -> impl Future<Output = Result<Vec<Self::Output>, FetchError>> + Send {
        futures::future::try_join_all(args.iter().map(|args| self.fetch(args)))
    }

    /// How long an item holding `output` is fresh, chosen from the value
    /// (an API's `max-age`, a short life for an empty result): by default
    /// [`lifetime`](Job::lifetime). A fetched item's expiry is
    /// [`expiry`](Job::expiry) moved by the difference (with the default
    /// `expiry`, `now + lifetime_for(args, output)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheback::{Cacheback, FetchError, Job};
    /// struct Search;
    /// impl Job for Search {
    ///     type Args = (String,);
    ///     type Output = Vec<String>;
    ///     async fn fetch(&self, (q,): &(String,)) -> Result<Vec<String>, FetchError> {
    ///         Ok(if q.is_empty() { vec![] } else { vec![q.clone()] })
    ///     }
    ///     fn lifetime_for(&self, _: &(String,), found: &Vec<String>) -> Duration {
    ///         if found.is_empty() { Duration::from_secs(5) } else { self.lifetime() }
    ///     }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = Cacheback::builder().build().unwrap();
    /// let found = cache.job(Search).lookup(&(String::new(),)).await.unwrap();
    /// assert!(found.expiry.unwrap() <= cache.now() + 5.0, "nothing found: fresh for 5 s only");
    /// # });
    /// ```
    fn lifetime_for(&self, args: &Self::Args, output: &Self::Output) -> Duration {
        let _ = (args, output);
        self.lifetime()
    }

    /// The job's registered name (the original's `class_path`): the prefix of its
    /// keys and the name a worker looks it up by.
    ///
    /// Defaults to the Rust type path, which is stable for one build. Override
    /// it when keys or queued refreshes must survive renames or compiler
    /// upgrades.
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(std::any::type_name::<Self>())
    }

    /// What a worker needs to rebuild this job (the original's `get_init_kwargs`).
    /// Passed to the factory given at registration. Defaults to `null`.
    fn init_state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// The job's policies as data. Every policy method below reads it by
    /// default; a job kind that carries [`Options`] (a
    /// [`FunctionJob`](crate::function::FunctionJob), the ORM jobs) returns
    /// them here, and a job may override any single policy method instead.
    fn options(&self) -> &Options {
        Options::defaults()
    }

    // lifetime, refresh_timeout, cache_ttl, fetch_on_miss,
    // fetch_on_stale_threshold, cache_alias, task_options, set_data_kwarg:
    // one method per policy, from the table in `policy.rs`.
    policies!(policy_methods);

    /// The names of positional arguments, so that a named call maps onto them
    /// in [`set_call`](crate::JobHandle::set_call), as keyword arguments map
    /// onto parameters in Python. Empty by default; `#[cacheback]` functions
    /// name their parameters.
    fn parameter_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// The cache key for `args` (already [prepared](Job::prepare_args)).
    /// See [`crate::key`] for the default format.
    fn key(&self, args: &Self::Args) -> Result<String, KeyError> {
        derive_key(&Self::name(), args)
    }

    /// The tags of the item for `args` (already [prepared](Job::prepare_args)):
    /// [`Cacheback::invalidate_tag`](crate::Cacheback::invalidate_tag) of any
    /// of them makes the item stale, in every process sharing its store. By
    /// default the job's [`static_tags`](Job::static_tags) (none unless set:
    /// `with_tags`, `#[cacheback(tags = [..])]`); the ORM jobs add their
    /// entity's table name.
    ///
    /// ```
    /// use cacheback::{Cacheback, CacheStatus, FetchError, Job};
    /// struct Profile;
    /// impl Job for Profile {
    ///     type Args = (u32,);
    ///     type Output = String;
    ///     async fn fetch(&self, (id,): &(u32,)) -> Result<String, FetchError> { Ok(format!("user {id}")) }
    ///     fn tags(&self, (id,): &(u32,)) -> Vec<String> { vec!["users".into(), format!("user:{id}")] }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = Cacheback::builder().build().unwrap();
    /// let profile = cache.job(Profile);
    /// profile.get(&(7,)).await.unwrap();
    /// assert_eq!(profile.lookup(&(7,)).await.unwrap().status, CacheStatus::Hit);
    /// cache.invalidate_tag("user:7").await.unwrap();
    /// assert_eq!(profile.lookup(&(7,)).await.unwrap().status, CacheStatus::Stale);
    /// # });
    /// ```
    fn tags(&self, args: &Self::Args) -> Vec<String> {
        let _ = args;
        match self.static_tags() {
            [] => Vec::new(),
            tags => tags.to_vec(),
        }
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
        past_stale_threshold(self.fetch_on_stale_threshold(), self.lifetime(), delta)
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
