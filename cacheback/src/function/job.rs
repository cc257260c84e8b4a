//! [`FunctionJob`]: caches any async function, without the attribute.

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use super::cached_fn::{CachedFn, Plain, WithContext};
use crate::engine::Cacheback;
use crate::error::FetchError;
use crate::job::Job;
use crate::policy::{Options, Policy, delegate_to_policy, policies, setters};

/// Caches an async function without the attribute (the original's
/// `FunctionJob().get(fn, *args)`), with options set per instance.
///
/// The job is named, and keyed, by the function's path
/// (`std::any::type_name` of the function). Register the function with
/// [`Builder::register_function`](crate::Builder::register_function) so a
/// worker can refresh it; a context argument comes from the engine's
/// [extensions](crate::Builder::extension) there.
///
/// The name follows the function when it moves to another module. It cannot
/// be set per instance, as [`Job::name`] takes no `self` (workers and keys need
/// the name without an instance): to pin a name across renames, cache the
/// function with [`#[cacheback(name = "...")]`](crate::cacheback) or write a
/// [`Job`] that overrides [`name`](Job::name).
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
/// // Per instance, as the original's `job.fetch_on_miss = False`:
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

    fn options_mut(&mut self) -> &mut Options {
        &mut self.policy
    }

    // with_lifetime, with_refresh_timeout, ...: one setter per policy.
    policies!(setters);

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

    fn options(&self) -> &Options {
        self.policy.options()
    }

    policies!(delegate_to_policy);

    fn should_stale_item_be_fetched_synchronously(&self, delta: Duration, _args: &Self::Args) -> bool {
        self.policy().should_stale_item_be_fetched_synchronously(delta)
    }
}

impl crate::Builder {
    /// Registers `function` so a worker can refresh its [`FunctionJob`]s.
    ///
    /// ```
    /// use cacheback::{Cacheback, FetchError};
    /// async fn double(n: u32) -> Result<u32, FetchError> { Ok(n * 2) }
    /// let cache = Cacheback::builder().register_function(double).build().unwrap();
    /// assert!(cache.registered_jobs().iter().any(|job| job.ends_with("::double")));
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
    /// assert!(cache.registered_jobs().iter().any(|job| job.ends_with("::count")));
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
            let context = cache.required_extension::<F::Context>()?;
            Ok(FunctionJob::<F, M>::build(function, (*context).clone()).with_options(options))
        })
    }
}
