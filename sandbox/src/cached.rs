//! The seed sandbox's jobs (`dummyapp/jobs.py`) and cached functions
//! (`views.py`): what django-cacheback calls jobs, kept under their seed names,
//! `sandbox::jobs::...`.
//!
//! These are cacheback jobs, not loco's background workers (the sandbox has
//! none: cacheback's worker runs the refreshes).
//!
//! A job's name is the prefix of its cache keys, the job of its queued
//! refreshes and its key in the settings (`task_options`), so it must not
//! follow the module's name, `cached`: the job types return theirs from
//! `Job::name()`, and `decorated` pins its with
//! `#[cacheback(name = "sandbox::jobs::decorated")]`. The exceptions are
//! `fetch` and `fetch_with_arg`, plain functions that the page caches with a
//! `FunctionJob`: a `FunctionJob` is named after its function's path
//! (`sandbox::cached::fetch`, `sandbox::cached::fetch_with_arg`), which cannot
//! be overridden.

use std::sync::Arc;
use std::time::Duration;

use cacheback::key::KeyError;
use cacheback::{FetchError, Job, cacheback};
use loco_rs::app::AppContext;
use sea_orm::{DatabaseConnection, DbErr};
use serde::{Deserialize, Serialize};

use crate::models::dummy_models::{self, Model};

/// The seed's `VanillaJob`: no arguments, a slow fetch of every row, a miss
/// refreshed in the background, five seconds to refresh.
#[derive(Clone)]
pub struct VanillaJob {
    /// The connection.
    pub db: DatabaseConnection,
    /// How slow the fetch is (the seed sleeps 10 s; configurable so tests need not wait).
    pub delay: Duration,
}

/// What a worker rebuilds a [`VanillaJob`] from: its
/// [`init_state`](Job::init_state), read back by [`VanillaJob::from_state`].
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct VanillaState {
    /// [`VanillaJob::delay`], in milliseconds.
    delay_ms: u64,
}

impl VanillaJob {
    /// The job a refresh queued with `state` (its
    /// [`init_state`](Job::init_state)) runs: a state that does not read
    /// back is a fetch without delay.
    #[must_use]
    pub fn from_state(db: DatabaseConnection, state: &serde_json::Value) -> Self {
        let state = VanillaState::deserialize(state).unwrap_or_default();
        Self { db, delay: Duration::from_millis(state.delay_ms) }
    }
}

impl Job for VanillaJob {
    type Args = ();
    type Output = Vec<Model>;

    async fn fetch(&self, _: &()) -> Result<Vec<Model>, FetchError> {
        tokio::time::sleep(self.delay).await;
        Ok(dummy_models::Entity::all_by_name(&self.db).await?)
    }

    fn name() -> std::borrow::Cow<'static, str> {
        "sandbox::jobs::VanillaJob".into()
    }

    fn fetch_on_miss(&self) -> bool {
        false
    }

    fn refresh_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn init_state(&self) -> serde_json::Value {
        let delay_ms = u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX);
        serde_json::to_value(VanillaState { delay_ms }).unwrap_or_default()
    }
}

/// The seed's `KeyedJob`: rows named `name`, keyed on the name itself, fresh
/// for 5 s. The seed's `fetch_on_stale_threshold` of 10 s counts from the
/// item's last store (a refresh re-stores it), so on its own it lets an item
/// whose refreshes fail be served older; `max_stale_age` makes the promise
/// the seed meant: never served more than 10 s after its fetch. Past it, a
/// slow database holds a page up for at most its soft timeout.
#[derive(Clone)]
pub struct KeyedJob {
    /// The connection.
    pub db: DatabaseConnection,
}

impl Job for KeyedJob {
    type Args = (String,);
    type Output = Vec<Model>;

    async fn fetch(&self, (name,): &(String,)) -> Result<Vec<Model>, FetchError> {
        Ok(dummy_models::Entity::named(&self.db, name).await?)
    }

    fn name() -> std::borrow::Cow<'static, str> {
        "sandbox::jobs::KeyedJob".into()
    }

    fn key(&self, (name,): &(String,)) -> Result<String, KeyError> {
        if name.is_empty() || name.len() > 200 {
            return Err(KeyError::new("`name` must be 1 to 200 bytes long"));
        }
        Ok(name.clone())
    }

    fn lifetime(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn fetch_on_stale_threshold(&self) -> Option<Duration> {
        Some(Duration::from_secs(10))
    }

    fn max_stale_age(&self) -> Option<Duration> {
        Some(Duration::from_secs(10))
    }

    /// A page past `max_stale_age` waits for the database at most this long:
    /// then it shows the stale rows, and the fetch lands in the background.
    fn fetch_soft_timeout(&self) -> Option<Duration> {
        Some(KEYED_SOFT_TIMEOUT)
    }
}

/// [`KeyedJob`]'s `fetch_soft_timeout`.
pub const KEYED_SOFT_TIMEOUT: Duration = Duration::from_millis(500);

/// The seed's `fetch()`: rows whose name contains "1".
pub async fn fetch(db: DatabaseConnection) -> Result<Vec<Model>, DbErr> {
    dummy_models::Entity::names_containing(&db, "1").await
}

/// The seed's `fetch_with_arg(q)`: rows whose name contains `q`.
pub async fn fetch_with_arg(db: DatabaseConnection, q: String) -> Result<Vec<Model>, DbErr> {
    dummy_models::Entity::names_containing(&db, &q).await
}

/// The seed's `@cacheback(5) def decorated(q)`, under the seed's name.
#[cacheback(5, name = "sandbox::jobs::decorated")]
pub async fn decorated(db: &DatabaseConnection, q: String) -> Result<Vec<Model>, DbErr> {
    dummy_models::Entity::names_containing(db, &q).await
}

/// Registers the jobs a worker may refresh.
pub fn register(builder: cacheback::Builder, ctx: &AppContext) -> cacheback::Builder {
    let db = ctx.db.clone();
    let vanilla_db = db.clone();
    builder
        .register(move |state| Ok(VanillaJob::from_state(vanilla_db.clone(), state)))
        .register(move |_| Ok(KeyedJob { db: db.clone() }))
        .register_function_with_context(fetch)
        .register_function_with_context(fetch_with_arg)
        .register_model::<dummy_models::Entity>()
}

/// Shared so handlers need not clone the connection per request.
pub type Items = Option<Arc<Vec<Model>>>;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vanilla(state: &serde_json::Value) -> Duration {
        VanillaJob::from_state(DatabaseConnection::default(), state).delay
    }

    #[test]
    fn a_vanilla_job_is_rebuilt_from_its_state() {
        let job = VanillaJob { db: DatabaseConnection::default(), delay: Duration::from_millis(1500) };
        assert_eq!(job.init_state(), json!({ "delay_ms": 1500 }));
        assert_eq!(vanilla(&job.init_state()), Duration::from_millis(1500));
        // Longer than u64 milliseconds: the longest that fits.
        let job = VanillaJob { db: DatabaseConnection::default(), delay: Duration::MAX };
        assert_eq!(vanilla(&job.init_state()), Duration::from_millis(u64::MAX));
    }

    #[test]
    fn a_state_that_does_not_read_back_is_no_delay() {
        for state in [json!(null), json!({}), json!({ "delay_ms": "1500" }), json!({ "delay_ms": -1 })] {
            assert_eq!(vanilla(&state), Duration::ZERO, "{state}");
        }
    }
}
