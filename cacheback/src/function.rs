//! Cached functions: [`FunctionJob`] for any async function, and the runtime
//! of the [`#[cacheback]`](crate::cacheback) attribute.
//!
//! A cached function's arguments are its cache key and its refresh payload,
//! so they are owned serde values. A leading *context* argument (a database
//! connection, loco's `AppContext`) is neither: a worker supplies its own,
//! from the engine's [extensions](crate::Cacheback::extension).

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::engine::Cacheback;
use crate::error::{Error, FetchError};
use crate::handle::JobHandle;
use crate::job::{DEFAULT_CACHE_TTL, DEFAULT_LIFETIME, DEFAULT_REFRESH_TIMEOUT, Job, TaskOptions};
use crate::key::derive_key;
use crate::queue::RefreshPayload;
use crate::registry::{RefreshOutcome, Refresher, decode_args};

/// The options of a cached function (the seed decorator's arguments), and the
/// state a worker rebuilds its job from.
///
/// ```
/// use std::time::Duration;
/// use cacheback::function::Options;
/// let options = Options::default().with_lifetime(Duration::from_secs(30)).with_fetch_on_miss(false);
/// assert_eq!(options.lifetime, Duration::from_secs(30));
/// assert_eq!(options.cache_alias, None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Options {
    /// See [`Job::lifetime`].
    pub lifetime: Duration,
    /// See [`Job::refresh_timeout`].
    pub refresh_timeout: Duration,
    /// See [`Job::cache_ttl`].
    pub cache_ttl: Duration,
    /// See [`Job::fetch_on_miss`].
    pub fetch_on_miss: bool,
    /// See [`Job::fetch_on_stale_threshold`].
    pub fetch_on_stale_threshold: Option<Duration>,
    /// See [`Job::cache_alias`].
    pub cache_alias: Option<String>,
    /// See [`Job::task_options`].
    pub task_options: TaskOptions,
    /// See [`Job::set_data_kwarg`].
    pub set_data_kwarg: String,
    /// Options for a custom [`Policy`] (the seed's `job_class_kwargs`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            lifetime: DEFAULT_LIFETIME,
            refresh_timeout: DEFAULT_REFRESH_TIMEOUT,
            cache_ttl: DEFAULT_CACHE_TTL,
            fetch_on_miss: true,
            fetch_on_stale_threshold: None,
            cache_alias: None,
            task_options: TaskOptions::default(),
            set_data_kwarg: "data".to_owned(),
            extra: serde_json::Map::new(),
        }
    }
}

impl Options {
    /// Sets [`lifetime`](Self::lifetime).
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }
    /// Sets [`refresh_timeout`](Self::refresh_timeout).
    #[must_use]
    pub fn with_refresh_timeout(mut self, timeout: Duration) -> Self {
        self.refresh_timeout = timeout;
        self
    }
    /// Sets [`cache_ttl`](Self::cache_ttl).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }
    /// Sets [`fetch_on_miss`](Self::fetch_on_miss).
    #[must_use]
    pub fn with_fetch_on_miss(mut self, fetch: bool) -> Self {
        self.fetch_on_miss = fetch;
        self
    }
    /// Sets [`fetch_on_stale_threshold`](Self::fetch_on_stale_threshold).
    #[must_use]
    pub fn with_fetch_on_stale_threshold(mut self, threshold: Duration) -> Self {
        self.fetch_on_stale_threshold = Some(threshold);
        self
    }
    /// Sets [`cache_alias`](Self::cache_alias).
    #[must_use]
    pub fn with_cache_alias(mut self, alias: impl Into<String>) -> Self {
        self.cache_alias = Some(alias.into());
        self
    }
    /// Sets [`task_options`](Self::task_options).
    #[must_use]
    pub fn with_task_options(mut self, options: TaskOptions) -> Self {
        self.task_options = options;
        self
    }
    /// Sets [`set_data_kwarg`](Self::set_data_kwarg).
    #[must_use]
    pub fn with_set_data_kwarg(mut self, name: impl Into<String>) -> Self {
        self.set_data_kwarg = name.into();
        self
    }
    /// Adds an [`extra`](Self::extra) option.
    #[must_use]
    pub fn with_extra(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }
}

/// The policies of a cached function: [`Options`] by default, or a custom
/// type named by the attribute's `job = ...` (the seed's `job_class`), which
/// can override any policy.
///
/// ```
/// use std::time::Duration;
/// use cacheback::function::{Options, Policy};
///
/// /// Refreshes in the background on a miss, whatever the options say,
/// /// and keeps items an extra `grace` seconds.
/// struct Lazy(Options);
///
/// impl Policy for Lazy {
///     fn from_options(options: Options) -> Self { Lazy(options) }
///     fn options(&self) -> &Options { &self.0 }
///     fn fetch_on_miss(&self) -> bool { false }
///     fn cache_ttl(&self) -> Duration {
///         let grace = self.0.extra.get("grace").and_then(|v| v.as_u64()).unwrap_or(0);
///         self.0.cache_ttl + Duration::from_secs(grace)
///     }
/// }
/// let lazy = Lazy::from_options(Options::default().with_extra("grace", 60));
/// assert!(!lazy.fetch_on_miss());
/// assert_eq!(lazy.cache_ttl(), Duration::from_secs(2_592_060));
/// ```
pub trait Policy: Send + Sync + 'static {
    /// Builds the policy from the function's options.
    fn from_options(options: Options) -> Self
    where
        Self: Sized;
    /// The options it was built from.
    fn options(&self) -> &Options;
    /// See [`Job::lifetime`].
    fn lifetime(&self) -> Duration {
        self.options().lifetime
    }
    /// See [`Job::refresh_timeout`].
    fn refresh_timeout(&self) -> Duration {
        self.options().refresh_timeout
    }
    /// See [`Job::cache_ttl`].
    fn cache_ttl(&self) -> Duration {
        self.options().cache_ttl
    }
    /// See [`Job::fetch_on_miss`].
    fn fetch_on_miss(&self) -> bool {
        self.options().fetch_on_miss
    }
    /// See [`Job::fetch_on_stale_threshold`].
    fn fetch_on_stale_threshold(&self) -> Option<Duration> {
        self.options().fetch_on_stale_threshold
    }
    /// See [`Job::cache_alias`].
    fn cache_alias(&self) -> Option<&str> {
        self.options().cache_alias.as_deref()
    }
    /// See [`Job::set_data_kwarg`].
    fn set_data_kwarg(&self) -> &str {
        &self.options().set_data_kwarg
    }
    /// See [`Job::task_options`].
    fn task_options(&self) -> TaskOptions {
        self.options().task_options.clone()
    }
    /// See [`Job::should_stale_item_be_fetched_synchronously`].
    fn should_stale_item_be_fetched_synchronously(&self, delta: Duration) -> bool {
        self.fetch_on_stale_threshold().is_some_and(|t| delta > t.saturating_sub(self.lifetime()))
    }
}

impl Policy for Options {
    fn from_options(options: Options) -> Self {
        options
    }
    fn options(&self) -> &Options {
        self
    }
}

/// Implements the [`Job`] policies of a type whose `policy()` returns a [`Policy`]
/// (`@except_fetch_on_miss`: all but that one).
macro_rules! delegate_policies {
    () => {
        fn fetch_on_miss(&self) -> bool {
            self.policy().fetch_on_miss()
        }
        delegate_policies!(@except_fetch_on_miss);
    };
    (@except_fetch_on_miss) => {
        fn lifetime(&self) -> Duration {
            self.policy().lifetime()
        }
        fn refresh_timeout(&self) -> Duration {
            self.policy().refresh_timeout()
        }
        fn cache_ttl(&self) -> Duration {
            self.policy().cache_ttl()
        }
        fn fetch_on_stale_threshold(&self) -> Option<Duration> {
            self.policy().fetch_on_stale_threshold()
        }
        fn cache_alias(&self) -> Option<&str> {
            self.policy().cache_alias()
        }
        fn set_data_kwarg(&self) -> &str {
            self.policy().set_data_kwarg()
        }
        fn task_options(&self) -> TaskOptions {
            self.policy().task_options()
        }
        fn should_stale_item_be_fetched_synchronously(&self, delta: Duration, _args: &Self::Args) -> bool {
            self.policy().should_stale_item_be_fetched_synchronously(delta)
        }
    };
}

#[cfg(feature = "sea-orm")]
pub(crate) use delegate_policies;

// ---------------------------------------------------------------------------
// FunctionJob
// ---------------------------------------------------------------------------

/// An async function that [`FunctionJob`] can cache: `async fn(A, B, ..) ->
/// Result<T, E>` with up to six owned serde arguments, optionally after a
/// leading context argument taken by value (`async fn(C, A, ..)`).
///
/// `M` only tells the implementations apart; it is inferred.
pub trait CachedFn<M>: Copy + Send + Sync + 'static {
    /// The leading context argument's type; `()` when there is none.
    type Context: Clone + Send + Sync + 'static;
    /// The other arguments, as a tuple.
    type Args: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// The `T` of `Result<T, E>`.
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Calls the function.
    fn call(
        &self,
        context: &Self::Context,
        args: &Self::Args,
    ) -> BoxFuture<'static, Result<Self::Output, FetchError>>;
}

/// Marks the [`CachedFn`] implementations for functions without a context.
#[doc(hidden)]
pub struct Plain<Args>(PhantomData<Args>);

/// Marks the [`CachedFn`] implementations for functions with a leading context.
#[doc(hidden)]
pub struct WithContext<C, Args>(PhantomData<(C, Args)>);

macro_rules! cached_fn {
    ($($arg:ident),*) => {
        impl<F, Fut, T, E, $($arg,)*> CachedFn<Plain<($($arg,)*)>> for F
        where
            F: Fn($($arg),*) -> Fut + Copy + Send + Sync + 'static,
            Fut: Future<Output = Result<T, E>> + Send + 'static,
            E: Into<FetchError>,
            T: Serialize + DeserializeOwned + Send + Sync + 'static,
            $($arg: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,)*
        {
            type Context = ();
            type Args = ($($arg,)*);
            type Output = T;
            #[allow(non_snake_case)]
            fn call(&self, _: &(), args: &Self::Args) -> BoxFuture<'static, Result<T, FetchError>> {
                let ($($arg,)*) = args.clone();
                let future = self($($arg),*);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
        }

        impl<F, Fut, T, E, C, $($arg,)*> CachedFn<WithContext<C, ($($arg,)*)>> for F
        where
            F: Fn(C, $($arg),*) -> Fut + Copy + Send + Sync + 'static,
            Fut: Future<Output = Result<T, E>> + Send + 'static,
            E: Into<FetchError>,
            T: Serialize + DeserializeOwned + Send + Sync + 'static,
            C: Clone + Send + Sync + 'static,
            $($arg: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,)*
        {
            type Context = C;
            type Args = ($($arg,)*);
            type Output = T;
            #[allow(non_snake_case)]
            fn call(&self, context: &C, args: &Self::Args) -> BoxFuture<'static, Result<T, FetchError>> {
                let ($($arg,)*) = args.clone();
                let future = self(context.clone(), $($arg),*);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
        }
    };
}

cached_fn!();
cached_fn!(A1);
cached_fn!(A1, A2);
cached_fn!(A1, A2, A3);
cached_fn!(A1, A2, A3, A4);
cached_fn!(A1, A2, A3, A4, A5);
cached_fn!(A1, A2, A3, A4, A5, A6);

/// Caches an async function without the attribute (the seed's
/// `FunctionJob().get(fn, *args)`), with options set per instance.
///
/// The job is named, and keyed, by the function's path. Register the function
/// with [`Builder::register_function`](crate::Builder::register_function) so a
/// worker can refresh it; a context argument comes from the engine's
/// [extensions](crate::Builder::extension) there.
///
/// ```
/// use cacheback::{Cacheback, FetchError};
/// use cacheback::function::FunctionJob;
///
/// async fn names_containing(q: String) -> Result<Vec<String>, FetchError> {
///     Ok(["Item_1", "Item_2", "Item_10"].into_iter().filter(|n| n.contains(&q)).map(String::from).collect())
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = Cacheback::builder().register_function(names_containing).build().unwrap();
/// let job = cache.job(FunctionJob::new(names_containing));
/// let names = job.get(&("1".to_string(),)).await.unwrap().unwrap();
/// assert_eq!(*names, ["Item_1", "Item_10"]);
///
/// // Per instance, as the seed's `job.fetch_on_miss = False`:
/// let lazy = cache.job(FunctionJob::new(names_containing).with_fetch_on_miss(false));
/// assert_eq!(lazy.get(&("2".to_string(),)).await.unwrap(), None);
/// # });
/// ```
pub struct FunctionJob<F: CachedFn<M>, M, P: Policy = Options> {
    function: F,
    context: F::Context,
    policy: P,
    _marker: PhantomData<fn() -> M>,
}

impl<F: CachedFn<Plain<Args>, Context = ()>, Args> FunctionJob<F, Plain<Args>> {
    /// Caches `function`, which takes no context.
    pub fn new(function: F) -> Self {
        Self::build(function, ())
    }
}

impl<F: CachedFn<WithContext<C, Args>, Context = C>, C, Args> FunctionJob<F, WithContext<C, Args>> {
    /// Caches `function`, called with `context` as its first argument.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cacheback::FetchError;
    /// use cacheback::function::FunctionJob;
    /// async fn greet(greeting: Arc<String>, who: String) -> Result<String, FetchError> {
    ///     Ok(format!("{greeting} {who}"))
    /// }
    /// let job = FunctionJob::with_context(greet, Arc::new("hello".to_string()));
    /// # let _ = job;
    /// ```
    pub fn with_context(function: F, context: C) -> Self {
        Self::build(function, context)
    }
}

impl<F: CachedFn<M>, M> FunctionJob<F, M> {
    fn build(function: F, context: F::Context) -> Self {
        Self { function, context, policy: Options::default(), _marker: PhantomData }
    }

    /// Sets the lifetime of items.
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.policy.lifetime = lifetime;
        self
    }
    /// Sets whether a MISS fetches synchronously.
    #[must_use]
    pub fn with_fetch_on_miss(mut self, fetch: bool) -> Self {
        self.policy.fetch_on_miss = fetch;
        self
    }
    /// Sets the cache alias.
    #[must_use]
    pub fn with_cache_alias(mut self, alias: impl Into<String>) -> Self {
        self.policy.cache_alias = Some(alias.into());
        self
    }
    /// Sets the task options.
    #[must_use]
    pub fn with_task_options(mut self, options: TaskOptions) -> Self {
        self.policy.task_options = options;
        self
    }
    /// Sets the name of the data field of [`set_call`](JobHandle::set_call).
    #[must_use]
    pub fn with_set_data_kwarg(mut self, name: impl Into<String>) -> Self {
        self.policy.set_data_kwarg = name.into();
        self
    }
    /// Sets every option at once.
    #[must_use]
    pub fn with_options(mut self, options: Options) -> Self {
        self.policy = options;
        self
    }
}

impl<F: CachedFn<M>, M, P: Policy> FunctionJob<F, M, P> {
    /// The function's options.
    pub fn policy(&self) -> &P {
        &self.policy
    }
}

impl<F: CachedFn<M>, M, P: Policy> Job for FunctionJob<F, M, P> {
    type Args = F::Args;
    type Output = F::Output;

    fn fetch(&self, args: &F::Args) -> impl Future<Output = Result<F::Output, FetchError>> + Send {
        self.function.call(&self.context, args)
    }

    fn name() -> Cow<'static, str> {
        Cow::Borrowed(std::any::type_name::<F>())
    }

    fn init_state(&self) -> serde_json::Value {
        serde_json::to_value(self.policy.options()).unwrap_or_default()
    }

    delegate_policies!();
}

impl crate::Builder {
    /// Registers `function` so a worker can refresh its [`FunctionJob`]s.
    ///
    /// ```
    /// use cacheback::{Cacheback, FetchError};
    /// async fn double(n: u32) -> Result<u32, FetchError> { Ok(n * 2) }
    /// let cache = Cacheback::builder().register_function(double).build().unwrap();
    /// assert!(cache.registered_jobs()[0].ends_with("double"));
    /// ```
    #[must_use]
    pub fn register_function<F: CachedFn<Plain<Args>>, Args: 'static>(self, function: F) -> Self {
        self.register_cached_fn::<F, Plain<Args>>(function)
    }

    /// Registers a `function` taking a leading context, so a worker can
    /// refresh its [`FunctionJob`]s. The worker's context is the engine's
    /// [extension](crate::Builder::extension) of that type.
    ///
    /// ```
    /// use cacheback::{Cacheback, FetchError};
    /// #[derive(Clone)]
    /// struct Db;
    /// async fn count(_db: Db, table: String) -> Result<usize, FetchError> { Ok(table.len()) }
    /// let cache = Cacheback::builder().extension(Db).register_function_with_context(count).build().unwrap();
    /// assert!(cache.registered_jobs()[0].ends_with("count"));
    /// ```
    #[must_use]
    pub fn register_function_with_context<F, C, Args>(self, function: F) -> Self
    where
        F: CachedFn<WithContext<C, Args>, Context = C>,
        C: 'static,
        Args: 'static,
    {
        self.register_cached_fn::<F, WithContext<C, Args>>(function)
    }

    fn register_cached_fn<F: CachedFn<M>, M: 'static>(self, function: F) -> Self {
        self.register_with(move |state, cache: &Cacheback| {
            let options: Options = serde_json::from_value(state.clone())?;
            let context = cache.extension::<F::Context>().ok_or_else(|| {
                format!(
                    "no context of type `{}` among the engine's extensions",
                    std::any::type_name::<F::Context>()
                )
            })?;
            Ok(FunctionJob::<F, M>::build(function, (*context).clone()).with_options(options))
        })
    }
}

// ---------------------------------------------------------------------------
// The attribute's runtime.
// ---------------------------------------------------------------------------

/// What `#[cacheback]` generates for one function.
#[doc(hidden)]
pub trait Decorated: Sized + Send + Sync + 'static {
    /// `module::path::function`.
    const NAME: &'static str;
    const PARAMETERS: &'static [&'static str];
    type Context: Send + Sync + 'static;
    type Args: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    type Output: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    type Error: std::fmt::Display + Send + 'static;
    type Policy: Policy;
    fn options() -> Options;
    fn empty() -> Option<Self::Output>;
    fn call(context: &Self::Context, args: Self::Args) -> BoxFuture<'_, Result<Self::Output, Self::Error>>;
}

/// The job of a `#[cacheback]` function: its policy, the caller's context,
/// and the error of the last fetch, handed back to the caller as is.
pub struct DecoratedJob<'c, D: Decorated> {
    context: &'c D::Context,
    policy: D::Policy,
    error: Mutex<Option<D::Error>>,
}

impl<'c, D: Decorated> DecoratedJob<'c, D> {
    /// The job for a call made with `context`.
    pub fn new(context: &'c D::Context) -> Self {
        Self { context, policy: D::Policy::from_options(D::options()), error: Mutex::new(None) }
    }

    /// The policy (the attribute's `job = ...` type, or [`Options`]).
    pub fn policy(&self) -> &D::Policy {
        &self.policy
    }

    fn take_error(&self) -> Option<D::Error> {
        self.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

/// The message of a decorated function's error, as the engine sees it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct FunctionFailed(String);

impl<D: Decorated> Job for DecoratedJob<'_, D> {
    type Args = D::Args;
    type Output = D::Output;

    async fn fetch(&self, args: &D::Args) -> Result<D::Output, FetchError> {
        D::call(self.context, args.clone()).await.map_err(|e| {
            let message = e.to_string();
            *self.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            FetchError::from(FunctionFailed(message))
        })
    }

    fn name() -> Cow<'static, str> {
        Cow::Borrowed(D::NAME)
    }

    fn key(&self, args: &D::Args) -> Result<String, crate::key::KeyError> {
        derive_key(D::NAME, args)
    }

    fn empty(&self) -> Option<D::Output> {
        D::empty()
    }

    fn parameter_names(&self) -> &'static [&'static str] {
        D::PARAMETERS
    }

    /// The policy's, but a function must return a value: without an empty one
    /// (the attribute's `fetch_on_miss = false` gives `Default::default()`),
    /// a miss fetches, rather than calling the function directly *and*
    /// queueing a refresh.
    fn fetch_on_miss(&self) -> bool {
        self.policy().fetch_on_miss() || D::empty().is_none()
    }

    delegate_policies!(@except_fetch_on_miss);
}

/// The handle of a decorated function's job on the global engine.
#[doc(hidden)]
pub fn handle<D: Decorated>(context: &D::Context) -> Result<JobHandle<DecoratedJob<'_, D>>, Error> {
    let cache = Cacheback::global().ok_or_else(|| Error::Config {
        key: "global".to_owned(),
        message: format!(
            "`{}` is a #[cacheback] function but no engine is installed: call Cacheback::install_global \
             (the loco initializer does)",
            D::NAME
        ),
    })?;
    Ok(cache.job(DecoratedJob::new(context)))
}

/// A call of a decorated function: from the cache when possible. When the
/// cache cannot answer (no engine, store down, a fetch shared with another
/// caller failed), the function is called directly: caching never changes
/// what a call returns, only how fast.
#[doc(hidden)]
pub async fn call<'c, D, Direct, Fut>(
    context: &'c D::Context,
    args: D::Args,
    direct: Direct,
) -> Result<D::Output, D::Error>
where
    D: Decorated,
    Direct: FnOnce(&'c D::Context, D::Args) -> Fut,
    Fut: Future<Output = Result<D::Output, D::Error>>,
{
    let handle = match handle::<D>(context) {
        Ok(handle) => handle,
        Err(err) => {
            tracing::warn!(target: "cacheback", error = %err, "Calling {} uncached", D::NAME);
            return direct(context, args).await;
        }
    };
    match handle.get(&args).await {
        Ok(Some(value)) => Ok(Arc::unwrap_or_clone(value)),
        Ok(None) => match D::empty() {
            Some(empty) => Ok(empty),
            None => direct(context, args).await,
        },
        Err(err) => match handle.job().take_error() {
            Some(own) => Err(own),
            None => {
                tracing::error!(target: "cacheback", error = %err, "Cache failed; calling {} directly", D::NAME);
                direct(context, args).await
            }
        },
    }
}

/// Refreshes a decorated function from a payload, with the worker's context.
#[doc(hidden)]
pub struct DecoratedRefresher<D>(PhantomData<fn() -> D>);

impl<D: Decorated> DecoratedRefresher<D> {
    #[doc(hidden)]
    pub fn submitted() -> Arc<dyn Refresher> {
        Arc::new(Self(PhantomData))
    }
}

impl<D: Decorated> Refresher for DecoratedRefresher<D> {
    fn refresh<'a>(
        &'a self,
        cache: &'a Cacheback,
        payload: &'a RefreshPayload,
    ) -> BoxFuture<'a, Result<RefreshOutcome, Error>> {
        Box::pin(async move {
            let context = cache.extension::<D::Context>().ok_or_else(|| Error::Payload {
                job: payload.job.clone(),
                message: format!(
                    "no context of type `{}` among the engine's extensions (Builder::extension)",
                    std::any::type_name::<D::Context>()
                ),
            })?;
            let args = decode_args::<DecoratedJob<'_, D>>(payload)?;
            cache.job(DecoratedJob::<D>::new(&context)).refresh_queued(&args, &payload.key).await
        })
    }
}
