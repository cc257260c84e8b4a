//! Registering jobs: how a worker rebuilds a job from a payload and runs
//! its refresh.

use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::engine::{Builder, ByName, Cacheback, Detached, NamedItem, Refresher};
use crate::error::{Error, FetchError};
use crate::handle::JobHandle;
use crate::job::Job;
use crate::payload::{RefreshOutcome, RefreshPayload};

type Factory<J> = dyn Fn(&serde_json::Value, &Cacheback) -> Result<J, FetchError> + Send + Sync;

/// Runs the payloads of a registered job type, rebuilt by its factory.
struct TypedRefresher<J: Job + 'static> {
    factory: Box<Factory<J>>,
    _job: PhantomData<fn() -> J>,
}

impl<J: Job + 'static> Refresher for TypedRefresher<J> {
    fn refresh<'a>(
        &'a self,
        cache: &'a Cacheback,
        payload: &'a RefreshPayload,
    ) -> BoxFuture<'a, Result<RefreshOutcome, Error>> {
        Box::pin(async move {
            let invalid = |message: String| Error::Payload { job: payload.job.clone(), message };
            let job = (self.factory)(&payload.state, cache)
                .map_err(|e| invalid(format!("cannot rebuild the job from state {}: {e}", payload.state)))?;
            let args = decode_args::<J>(payload)?;
            cache.job(job).refresh_queued(&args, payload).await
        })
    }

    fn detach(
        &self,
        cache: &Cacheback,
        payload: &RefreshPayload,
    ) -> Result<BoxFuture<'static, Result<Detached, Error>>, Error> {
        let invalid = |message: String| Error::Payload { job: payload.job.clone(), message };
        let job = (self.factory)(&payload.state, cache)
            .map_err(|e| invalid(format!("cannot rebuild the job from state {}: {e}", payload.state)))?;
        let args = decode_args::<J>(payload)?;
        let handle = cache.job(job);
        Ok(Box::pin(
            async move { handle.fill_detached(&args).await.map(|fresh| Arc::new(fresh) as Detached) },
        ))
    }

    fn by_name<'a>(
        &'a self,
        cache: &'a Cacheback,
        op: ByName,
        state: &'a serde_json::Value,
        args: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<NamedItem, Error>> {
        Box::pin(async move {
            let job = (self.factory)(state, cache).map_err(|e| Error::Call {
                job: J::name().into_owned(),
                message: format!("cannot rebuild the job from state {state}: {e}"),
            })?;
            by_name(&cache.job(job), op, args).await
        })
    }
}

/// Does `op` on the item of `args` (JSON, as in a payload) of `handle`'s job;
/// returns its key.
pub(crate) async fn by_name<J: Job>(
    handle: &JobHandle<J>,
    op: ByName,
    args: &serde_json::Value,
) -> Result<NamedItem, Error> {
    let args: J::Args = serde_json::from_value(args.clone()).map_err(|e| Error::Call {
        job: J::name().into_owned(),
        message: format!("args {args} do not decode as `{}`: {e}", std::any::type_name::<J::Args>()),
    })?;
    let key = handle.key(&args)?;
    let was_cached = handle.is_stored(&args).await?;
    match op {
        ByName::Invalidate => handle.invalidate(&args).await?,
        ByName::Delete => handle.delete(&args).await?,
    }
    Ok(NamedItem { key, was_cached })
}

/// Decodes a payload's arguments for job `J`.
pub(crate) fn decode_args<J: Job>(payload: &RefreshPayload) -> Result<J::Args, Error> {
    serde_json::from_value(payload.args.clone()).map_err(|e| Error::Payload {
        job: payload.job.clone(),
        message: format!(
            "args {} do not decode as `{}`: {e}",
            payload.args,
            std::any::type_name::<J::Args>()
        ),
    })
}

impl Builder {
    /// Registers job `J` for refreshes from payloads, rebuilt by `factory` from
    /// its [`init_state`](Job::init_state). The factory may capture what the
    /// job needs, such as a database connection.
    ///
    /// ```
    /// use cacheback::{Cacheback, FetchError, Job};
    /// struct Scaled { factor: u32 }
    /// impl Job for Scaled {
    ///     type Args = (u32,);
    ///     type Output = u32;
    ///     async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> { Ok(n * self.factor) }
    ///     fn init_state(&self) -> serde_json::Value { serde_json::json!(self.factor) }
    /// }
    /// let cache = Cacheback::builder()
    ///     .register(|state| Ok(Scaled { factor: serde_json::from_value(state.clone())? }))
    ///     .build()
    ///     .unwrap();
    /// assert!(cache.is_registered(&Scaled::name()));
    /// ```
    #[must_use]
    pub fn register<J, F>(self, factory: F) -> Self
    where
        J: Job + 'static,
        F: Fn(&serde_json::Value) -> Result<J, FetchError> + Send + Sync + 'static,
    {
        self.register_with(move |state, _| factory(state))
    }

    /// [`register`](Self::register), with a factory that also gets the engine,
    /// to read its [extensions](Cacheback::extension).
    ///
    /// ```
    /// use cacheback::{Cacheback, FetchError, Job};
    /// struct Greeting { greeting: std::sync::Arc<String> }
    /// impl Job for Greeting {
    ///     type Args = (String,);
    ///     type Output = String;
    ///     async fn fetch(&self, (who,): &(String,)) -> Result<String, FetchError> {
    ///         Ok(format!("{} {who}", self.greeting))
    ///     }
    /// }
    /// let cache = Cacheback::builder()
    ///     .extension("hello".to_string())
    ///     .register_with(|_, cache| Ok(Greeting { greeting: cache.extension().ok_or("no greeting")? }))
    ///     .build()
    ///     .unwrap();
    /// assert!(cache.is_registered(&Greeting::name()));
    /// ```
    #[must_use]
    pub fn register_with<J, F>(self, factory: F) -> Self
    where
        J: Job + 'static,
        F: Fn(&serde_json::Value, &Cacheback) -> Result<J, FetchError> + Send + Sync + 'static,
    {
        let refresher = TypedRefresher::<J> { factory: Box::new(factory), _job: PhantomData };
        self.register_refresher(J::name().into_owned(), Arc::new(refresher))
    }

    /// Registers a job type that is rebuilt with `Default`.
    ///
    /// ```
    /// use cacheback::{Cacheback, FetchError, Job};
    /// #[derive(Default)]
    /// struct Answer;
    /// impl Job for Answer {
    ///     type Args = ();
    ///     type Output = u32;
    ///     async fn fetch(&self, _: &()) -> Result<u32, FetchError> { Ok(42) }
    /// }
    /// let cache = Cacheback::builder().register_default::<Answer>().build().unwrap();
    /// assert!(cache.is_registered(&Answer::name()));
    /// ```
    #[must_use]
    pub fn register_default<J: Job + Default + 'static>(self) -> Self {
        self.register(|_| Ok(J::default()))
    }
}
