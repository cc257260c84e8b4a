//! Job registry: maps a payload's job name to code that rebuilds and refreshes it.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::engine::Cacheback;
use crate::error::{Error, FetchError};
use crate::job::Job;
use crate::queue::RefreshPayload;

/// What running a refresh payload did.
///
/// ```
/// use cacheback::RefreshOutcome;
/// assert_ne!(RefreshOutcome::Refreshed, RefreshOutcome::SkippedFresh);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The job fetched and stored a fresh item.
    Refreshed,
    /// The item was already fresh when the refresh was picked up (another
    /// refresh or a `set` got there first), so nothing was fetched.
    SkippedFresh,
}

/// Runs refresh payloads of one job name. Implemented for registered job
/// types, and by the `#[cacheback]` attribute for decorated functions.
#[doc(hidden)]
pub trait Refresher: Send + Sync {
    fn refresh<'a>(
        &'a self,
        cache: &'a Cacheback,
        payload: &'a RefreshPayload,
    ) -> BoxFuture<'a, Result<RefreshOutcome, Error>>;
}

pub(crate) type Factory<J> = dyn Fn(&serde_json::Value, &Cacheback) -> Result<J, FetchError> + Send + Sync;

pub(crate) struct TypedRefresher<J: Job + 'static> {
    factory: Box<Factory<J>>,
    _job: PhantomData<fn() -> J>,
}

impl<J: Job + 'static> TypedRefresher<J> {
    pub(crate) fn new(factory: Box<Factory<J>>) -> Self {
        Self { factory, _job: PhantomData }
    }
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
            cache.job(job).refresh_queued(&args, &payload.key).await
        })
    }
}

/// Decodes a payload's arguments for job `J`.
#[doc(hidden)]
pub fn decode_args<J: Job>(payload: &RefreshPayload) -> Result<J::Args, Error> {
    serde_json::from_value(payload.args.clone()).map_err(|e| Error::Payload {
        job: payload.job.clone(),
        message: format!(
            "args {} do not decode as `{}`: {e}",
            payload.args,
            std::any::type_name::<J::Args>()
        ),
    })
}

/// A refresher submitted from anywhere in the program (by `#[cacheback]`),
/// registered by every [`Builder::build`](crate::Builder::build).
#[doc(hidden)]
pub struct Submitted {
    pub name: fn() -> String,
    pub refresher: fn() -> Arc<dyn Refresher>,
}

inventory::collect!(Submitted);

#[derive(Default)]
pub(crate) struct Registry {
    refreshers: HashMap<String, Arc<dyn Refresher>>,
}

impl Registry {
    pub(crate) fn insert(&mut self, name: String, refresher: Arc<dyn Refresher>) {
        self.refreshers.insert(name, refresher);
    }

    /// Adds the submitted refreshers whose names are not registered yet.
    pub(crate) fn add_submitted(&mut self) {
        for submitted in inventory::iter::<Submitted> {
            self.refreshers.entry((submitted.name)()).or_insert_with(|| (submitted.refresher)());
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn Refresher>> {
        self.refreshers.get(name)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.refreshers.keys().map(String::as_str)
    }
}
