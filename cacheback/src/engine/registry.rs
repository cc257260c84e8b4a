//! The registered jobs of an engine: a [`Refresher`] per job name.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::Cacheback;
use crate::error::Error;
use crate::payload::{RefreshOutcome, RefreshPayload};

/// Runs the refresh payloads of one job name: implemented for registered job
/// types, and by `#[cacheback]` for decorated functions.
#[doc(hidden)]
pub trait Refresher: Send + Sync {
    fn refresh<'a>(
        &'a self,
        cache: &'a Cacheback,
        payload: &'a RefreshPayload,
    ) -> BoxFuture<'a, Result<RefreshOutcome, Error>>;

    /// Rebuilds the job from `state`, decodes `args` as its arguments and
    /// does `op` on their item; returns the item's key.
    fn by_name<'a>(
        &'a self,
        cache: &'a Cacheback,
        op: ByName,
        state: &'a serde_json::Value,
        args: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<super::NamedItem, Error>>;

    /// Rebuilds the job of `payload` now and returns its synchronous fill
    /// (fetch and store) as a future of its own, which can outlive the
    /// reader that started it: what a fetch with a timeout runs on. The
    /// output is the handle's fresh item, type-erased.
    fn detach(
        &self,
        cache: &Cacheback,
        payload: &RefreshPayload,
    ) -> Result<BoxFuture<'static, Result<Detached, Error>>, Error>;
}

/// A detached fill's fresh item, type-erased (see [`Refresher::detach`]).
pub(crate) type Detached = Arc<dyn std::any::Any + Send + Sync>;

/// What [`Cacheback::invalidate_by_name`] and [`Cacheback::delete_by_name`]
/// do to an item, through its job's [`Refresher`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByName {
    /// [`JobHandle::invalidate`](crate::JobHandle::invalidate).
    Invalidate,
    /// [`JobHandle::delete`](crate::JobHandle::delete).
    Delete,
}

/// A refresher submitted from anywhere in the program (by `#[cacheback]`),
/// registered by every [`Builder::build`].
#[doc(hidden)]
pub struct Submitted {
    pub name: fn() -> String,
    pub refresher: fn() -> Arc<dyn Refresher>,
}

inventory::collect!(Submitted);

/// The refreshers of an engine, by job name.
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
