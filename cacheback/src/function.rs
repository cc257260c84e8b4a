//! Cached functions: [`FunctionJob`] for any async function, and the runtime
//! of the [`#[cacheback]`](crate::cacheback) attribute.
//!
//! A cached function's arguments are its cache key and its refresh payload,
//! so they are owned serde values. A leading *context* argument (a database
//! connection, loco's `AppContext`) is neither: a worker supplies its own,
//! from the engine's [extensions](crate::Cacheback::extension). A function's
//! policies are [`Options`], or a custom
//! [`Policy`] named by the attribute's `job = ...`.

mod cached_fn;
mod job;

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::cached_fn::{CachedFn, Plain, WithContext};
pub use self::job::FunctionJob;
use crate::engine::{ByName, Cacheback, Detached, Refresher};
use crate::error::{Error, FetchError};
use crate::handle::JobHandle;
use crate::job::Job;
use crate::key::derive_key;
use crate::payload::{RefreshOutcome, RefreshPayload};
use crate::policy::{Options, Policy, delegate_to_policy, policies};
use crate::register::{by_name, decode_args};

/// What `#[cacheback]` generates for one function.
#[doc(hidden)]
pub trait Decorated: Sized + Send + Sync + 'static {
    /// The job's name: the attribute's `name = "..."`, or else the
    /// function's path, `module::path::function`.
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

    fn options(&self) -> &Options {
        self.policy.options()
    }

    policies!(delegate_to_policy);

    fn should_stale_item_be_fetched_synchronously(&self, delta: Duration, _args: &Self::Args) -> bool {
        self.policy().should_stale_item_be_fetched_synchronously(delta)
    }

    /// The policy's `fetch_on_miss`, but a function must return a value:
    /// without an empty one (the attribute's `fetch_on_miss = false` gives
    /// `Default::default()`), a miss fetches, rather than calling the function
    /// directly *and* queueing a refresh.
    fn should_missing_item_be_fetched_synchronously(&self, _args: &Self::Args) -> bool {
        self.fetch_on_miss() || D::empty().is_none()
    }
}

/// The handle of a decorated function's job on the global engine.
#[doc(hidden)]
pub fn handle<D: Decorated>(context: &D::Context) -> Result<JobHandle<DecoratedJob<'_, D>>, Error> {
    let cache = Cacheback::global().ok_or_else(|| Error::NoEngine { function: D::NAME.to_owned() })?;
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
            let context = cache
                .required_extension::<D::Context>()
                .map_err(|message| Error::Payload { job: payload.job.clone(), message })?;
            let args = decode_args::<DecoratedJob<'_, D>>(payload)?;
            cache.job(DecoratedJob::<D>::new(&context)).refresh_queued(&args, payload).await
        })
    }

    fn detach(
        &self,
        cache: &Cacheback,
        payload: &RefreshPayload,
    ) -> Result<BoxFuture<'static, Result<Detached, Error>>, Error> {
        let context = cache
            .required_extension::<D::Context>()
            .map_err(|message| Error::Payload { job: payload.job.clone(), message })?;
        let args = decode_args::<DecoratedJob<'_, D>>(payload)?;
        let cache = cache.clone();
        Ok(Box::pin(async move {
            let handle = cache.job(DecoratedJob::<D>::new(&context));
            handle.fill_detached(&args).await.map(|fresh| Arc::new(fresh) as Detached)
        }))
    }

    fn by_name<'a>(
        &'a self,
        cache: &'a Cacheback,
        op: ByName,
        _state: &'a serde_json::Value,
        args: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<crate::engine::NamedItem, Error>> {
        Box::pin(async move {
            let context = cache
                .required_extension::<D::Context>()
                .map_err(|message| Error::Call { job: D::NAME.to_owned(), message })?;
            by_name(&cache.job(DecoratedJob::<D>::new(&context)), op, args).await
        })
    }
}
