//! What runs by job name: a worker's queued refresh ([`Cacheback::perform`])
//! and an operator's invalidate and delete.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tracing::Instrument;

use super::{ByName, Cacheback, Inner, Refresher};
use crate::error::Error;
use crate::payload::{RefreshOutcome, RefreshPayload};
use crate::queue::Performer;
use crate::telemetry::{self, Mode, Outcome};

impl Cacheback {
    /// Runs one queued refresh: the worker's entry point (the original's
    /// `perform_async_refresh`). Only registered jobs run; an unknown name or
    /// undecodable arguments are logged and returned as errors, never a panic.
    ///
    /// ```
    /// use cacheback::{Cacheback, Error};
    /// use cacheback::queue::RefreshPayload;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = Cacheback::builder().build().unwrap();
    /// let payload = RefreshPayload::new("foomodule::BarJob", serde_json::json!([]), "foomodule::BarJob");
    /// let err = cache.perform(&payload).await.unwrap_err();
    /// assert!(matches!(err, Error::UnknownJob { .. }));
    /// # });
    /// ```
    pub async fn perform(&self, payload: &RefreshPayload) -> Result<RefreshOutcome, Error> {
        let Some(refresher) = self.inner.registry.get(&payload.job).cloned() else {
            tracing::error!(
                target: "cacheback",
                job = %payload.job,
                state = %payload.state,
                "Unable to construct {} with state {}: no such job is registered",
                payload.job,
                payload.state,
            );
            return Err(Error::UnknownJob { job: payload.job.clone() });
        };
        let span = telemetry::refresh_span(&payload.job, &payload.key, Mode::Queued);
        crate::trace_context::adopt(&span, payload.trace.as_ref());
        span.in_scope(|| {
            tracing::info!(target: "cacheback", "Using {} with state {}", payload.job, payload.state);
            tracing::info!(target: "cacheback", "Calling refresh with args {}", payload.args);
        });
        let start = Instant::now();
        let outcome = refresher.refresh(self, payload).instrument(span.clone()).await;
        span.in_scope(|| match &outcome {
            Ok(RefreshOutcome::Refreshed) => {
                span.record("outcome", Outcome::Ok.as_str());
                tracing::info!(target: "cacheback", "Refreshed cache in {:.6} seconds", start.elapsed().as_secs_f64());
            }
            Ok(RefreshOutcome::SkippedFresh) => {
                span.record("outcome", Outcome::SkippedFresh.as_str());
                tracing::info!(target: "cacheback", key = %payload.key, "Skipped refresh: the item is already fresh");
            }
            Err(err) => {
                span.record("outcome", Outcome::Error.as_str());
                tracing::error!(target: "cacheback", error = %err, "Error running job: '{err}'");
            }
        });
        outcome
    }

    /// [`JobHandle::invalidate`](crate::JobHandle::invalidate) for a job known
    /// only by its registered name, with its arguments as JSON (as they travel
    /// in a refresh payload): marks the item stale, re-stored for the job's
    /// refresh timeout, and queues a refresh; does nothing if nothing is
    /// cached. The job is rebuilt by its factory from `state` (its
    /// [`init_state`](crate::Job::init_state); `Value::Null` for jobs whose
    /// factory ignores it). Returns the item's key. What operators run as
    /// `cargo loco task cacheback command:invalidate`.
    ///
    /// ```
    /// use cacheback::{Cacheback, Error, FetchError, Job};
    /// use serde_json::{Value, json};
    /// #[derive(Default)]
    /// struct Double;
    /// impl Job for Double {
    ///     type Args = (u32,);
    ///     type Output = u32;
    ///     async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> { Ok(n * 2) }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// // A manual queue holds the refresh, so the re-stored item can be looked at.
    /// let queue = cacheback::queue::InProcessQueue::builder().manual().build();
    /// let cache = Cacheback::builder().queue(queue.clone()).register_default::<Double>().build().unwrap();
    /// cache.job(Double).set(&(21,), 42).await.unwrap();
    /// let done = cache.invalidate_by_name(&Double::name(), &Value::Null, &json!([21])).await.unwrap();
    /// assert_eq!(done.key, cache.job(Double).key(&(21,)).unwrap());
    /// assert!(done.was_cached);
    /// let item = cache.job(Double).raw_get(&(21,)).await.unwrap().unwrap();
    /// assert!(item.expiry <= cache.now() + 60.0, "stale, for the refresh timeout");
    /// assert_eq!(queue.pending(), 1, "and a refresh is queued");
    ///
    /// let err = cache.invalidate_by_name("app::Nope", &Value::Null, &json!([])).await.unwrap_err();
    /// assert!(matches!(err, Error::UnknownJob { .. }));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnknownJob`] for a name no job is registered under;
    /// [`Error::Call`] for `args` that do not decode as the job's; the
    /// errors of the factory, the key, the store.
    pub async fn invalidate_by_name(
        &self,
        job: &str,
        state: &serde_json::Value,
        args: &serde_json::Value,
    ) -> Result<NamedItem, Error> {
        self.refresher(job)?.by_name(self, ByName::Invalidate, state, args).await
    }

    /// [`JobHandle::delete`](crate::JobHandle::delete) for a job known only by
    /// its registered name, with its arguments as JSON: removes the item from
    /// the job's store (and this process's local cache). As
    /// [`invalidate_by_name`](Self::invalidate_by_name) otherwise.
    ///
    /// ```
    /// use cacheback::{Cacheback, FetchError, Job};
    /// use serde_json::{Value, json};
    /// #[derive(Default)]
    /// struct Double;
    /// impl Job for Double {
    ///     type Args = (u32,);
    ///     type Output = u32;
    ///     async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> { Ok(n * 2) }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = Cacheback::builder().register_default::<Double>().build().unwrap();
    /// cache.job(Double).set(&(21,), 42).await.unwrap();
    /// assert!(cache.delete_by_name(&Double::name(), &Value::Null, &json!([21])).await.unwrap().was_cached);
    /// assert!(cache.job(Double).raw_get(&(21,)).await.unwrap().is_none());
    /// assert!(!cache.delete_by_name(&Double::name(), &Value::Null, &json!([21])).await.unwrap().was_cached);
    /// assert!(cache.delete_by_name(&Double::name(), &Value::Null, &json!(["x"])).await.is_err());
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`invalidate_by_name`](Self::invalidate_by_name).
    pub async fn delete_by_name(
        &self,
        job: &str,
        state: &serde_json::Value,
        args: &serde_json::Value,
    ) -> Result<NamedItem, Error> {
        self.refresher(job)?.by_name(self, ByName::Delete, state, args).await
    }

    fn refresher(&self, job: &str) -> Result<Arc<dyn Refresher>, Error> {
        self.inner.registry.get(job).cloned().ok_or_else(|| Error::UnknownJob { job: job.to_owned() })
    }
}

/// The item [`Cacheback::invalidate_by_name`] or
/// [`delete_by_name`](Cacheback::delete_by_name) was asked about.
///
/// ```
/// let item = cacheback::NamedItem { key: "app::Report:0f".into(), was_cached: false };
/// assert!(!item.was_cached);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedItem {
    /// Its key.
    pub key: String,
    /// Whether the store held a value under the key before the call (an
    /// invalidation of a key that held none does nothing).
    pub was_cached: bool,
}

/// What a queue runs refreshes with: the engine it was attached to.
#[async_trait]
impl Performer for Inner {
    async fn perform(self: Arc<Self>, payload: &RefreshPayload) -> Result<RefreshOutcome, Error> {
        Cacheback { inner: self }.perform(payload).await
    }
}

/// A worker runs refreshes with the engine it was built with.
#[async_trait]
impl Performer for Cacheback {
    async fn perform(self: Arc<Self>, payload: &RefreshPayload) -> Result<RefreshOutcome, Error> {
        Cacheback::perform(&self, payload).await
    }
}
