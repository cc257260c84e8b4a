//! What the cache does, as metrics through the [`metrics`] facade: the
//! names (one place for each), their units and labels.
//!
//! Nothing is recorded unless the application installs a recorder (for
//! Prometheus, `metrics-exporter-prometheus`); without one every update is
//! the facade's no-op. With one, the handles of a job are registered in it
//! when [`Cacheback::job`](crate::Cacheback::job) first binds that job type
//! and store alias (and again if another recorder was installed since), and
//! a lookup only bumps an atomic counter. A [`JobHandle`](crate::JobHandle)
//! keeps the handles it was made with: make long-lived handles after
//! installing the recorder.
//!
//! The metrics, their labels and what they count are listed in
//! [docs/observability.md](https://github.com/cacheback-rs/cacheback/blob/main/docs/observability.md),
//! with what recording costs a HIT.
//!
//! ```
//! // Any recorder will do; metrics-util's debugging one shows what is recorded.
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//! use cacheback::{Cacheback, FetchError, Job};
//!
//! struct Answer;
//! impl Job for Answer {
//!     type Args = ();
//!     type Output = u32;
//!     async fn fetch(&self, _: &()) -> Result<u32, FetchError> { Ok(42) }
//! }
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! metrics::with_local_recorder(&recorder, || {
//!     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//!         let answer = Cacheback::builder().build().unwrap().job(Answer);
//!         answer.get(&()).await.unwrap(); // a MISS, fetched in the call
//!         answer.get(&()).await.unwrap(); // a HIT
//!     })
//! });
//! // Every status is registered (at 0) when the job is first bound (`job`).
//! let counts: Vec<(String, u64)> = snapshotter
//!     .snapshot()
//!     .into_vec()
//!     .into_iter()
//!     .filter(|(key, ..)| key.key().name() == cacheback::telemetry::LOOKUPS_TOTAL)
//!     .filter_map(|(key, _, _, value)| {
//!         let status = key.key().labels().find(|l| l.key() == "status")?.value().to_owned();
//!         match value {
//!             DebugValue::Counter(n) if n > 0 => Some((status, n)),
//!             _ => None,
//!         }
//!     })
//!     .collect();
//! let mut counts = counts;
//! counts.sort();
//! assert_eq!(counts, [("hit".to_owned(), 1), ("miss".to_owned(), 1)]);
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram, SharedString, Unit};

use crate::job::{CacheStatus, Dispatch};

/// Lookups by status: `cacheback_lookups_total{job, alias, status}`.
pub const LOOKUPS_TOTAL: &str = "cacheback_lookups_total";
/// HITs answered by the local copy: `cacheback_local_hits_total{job, alias}`.
pub const LOCAL_HITS_TOTAL: &str = "cacheback_local_hits_total";
/// Age of the stale data served, in seconds: `cacheback_stale_age_seconds{job}`.
pub const STALE_AGE_SECONDS: &str = "cacheback_stale_age_seconds";
/// Refreshes by mode and outcome: `cacheback_refreshes_total{job, mode, outcome}`.
pub const REFRESHES_TOTAL: &str = "cacheback_refreshes_total";
/// Refresh duration, in seconds: `cacheback_refresh_duration_seconds{job, mode}`.
pub const REFRESH_DURATION_SECONDS: &str = "cacheback_refresh_duration_seconds";
/// Claims won and lost: `cacheback_claims_total{job, kind, result}`.
pub const CLAIMS_TOTAL: &str = "cacheback_claims_total";
/// Refreshes handed to the queue: `cacheback_dispatches_total{job, result}`.
pub const DISPATCHES_TOTAL: &str = "cacheback_dispatches_total";
/// HITs that queued an early refresh (`early_refresh`, XFetch):
/// `cacheback_early_refreshes_total{job}`. The refresh itself counts in
/// [`REFRESHES_TOTAL`] as any queued one.
pub const EARLY_REFRESHES_TOTAL: &str = "cacheback_early_refreshes_total";
/// Writes of a read the store refused, the read answered anyway with the
/// data it had: `cacheback_refused_writes_total{job, alias, op}`, `op`
/// `replace` (a stale or missing item's re-store, no refresh queued), `set`
/// (fetched data, served without the cache) or `claim` (a cold key's fill
/// claim, fetched without it).
pub const REFUSED_WRITES_TOTAL: &str = "cacheback_refused_writes_total";
/// Jobs a worker took off a queue: `cacheback_worker_jobs_total{queue, result}`.
pub const WORKER_JOBS_TOTAL: &str = "cacheback_worker_jobs_total";
/// Time a job waited on its queue, in seconds: `cacheback_queue_latency_seconds{queue}`.
pub const QUEUE_LATENCY_SECONDS: &str = "cacheback_queue_latency_seconds";

/// The `queue` label of the in-process queue's worker metrics.
pub const IN_PROCESS_QUEUE: &str = "in_process";

/// Gives every metric its unit and description, in the recorder installed
/// now (exporters print them as `# HELP` lines). The engine calls it when it
/// registers a job's metrics; calling it again is harmless.
///
/// ```
/// cacheback::telemetry::describe();
/// ```
pub fn describe() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!(
        LOOKUPS_TOTAL,
        Unit::Count,
        "Cache lookups, by status (hit, stale, miss, stale_if_error)."
    );
    describe_counter!(LOCAL_HITS_TOTAL, Unit::Count, "HITs answered by the process's local copy.");
    describe_histogram!(STALE_AGE_SECONDS, Unit::Seconds, "Age, since its fetch, of the stale data served.");
    describe_counter!(REFRESHES_TOTAL, Unit::Count, "Refreshes, by mode (sync, queued) and outcome.");
    describe_histogram!(REFRESH_DURATION_SECONDS, Unit::Seconds, "Duration of a refresh (fetch and store).");
    describe_counter!(CLAIMS_TOTAL, Unit::Count, "Claims on a key (refresh, fill), won or lost.");
    describe_counter!(
        FETCH_TIMEOUTS_TOTAL,
        Unit::Count,
        "Synchronous fetches a reader stopped waiting for (soft: stale served; hard: failed)."
    );
    describe_counter!(
        DISPATCHES_TOTAL,
        Unit::Count,
        "Refreshes handed to the queue: enqueued, inline, failed."
    );
    describe_counter!(
        EARLY_REFRESHES_TOTAL,
        Unit::Count,
        "HITs that queued an early refresh of a fresh item (early_refresh, XFetch)."
    );
    describe_counter!(
        REFUSED_WRITES_TOTAL,
        Unit::Count,
        "Writes of a read the store refused (read-only, out of memory, ACL); the read served its data."
    );
    describe_counter!(WORKER_JOBS_TOTAL, Unit::Count, "Jobs a worker took off a queue, by result.");
    describe_histogram!(QUEUE_LATENCY_SECONDS, Unit::Seconds, "Time a job waited on its queue.");
}

/// Where a refresh runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// In the caller.
    Sync = 0,
    /// In a worker.
    Queued = 1,
}

impl Mode {
    pub(crate) fn as_str(self) -> &'static str {
        ["sync", "queued"][self as usize]
    }
}

/// The `cacheback.refresh` span of a refresh of `job`'s item `key`, its
/// `outcome` recorded when it ends: the one definition for a synchronous
/// refresh (in the caller) and a queued one (in the worker).
pub(crate) fn refresh_span(job: &str, key: &str, mode: Mode) -> tracing::Span {
    tracing::info_span!(
        target: "cacheback",
        "cacheback.refresh",
        job = %job,
        key = %key,
        mode = mode.as_str(),
        outcome = tracing::field::Empty,
    )
}

/// Synchronous fetches a reader stopped waiting for:
/// `cacheback_fetch_timeouts_total{job, kind}`, `kind` `soft` (stale data
/// served) or `hard` (the reader failed).
pub const FETCH_TIMEOUTS_TOTAL: &str = "cacheback_fetch_timeouts_total";

/// How a refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok = 0,
    Error = 1,
    SkippedFresh = 2,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        ["ok", "error", "skipped_fresh"][self as usize]
    }
}

/// Which claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The compare-and-set of a stale or missing item that queues its refresh.
    Refresh = 0,
    /// The cross-process claim on a cold key's synchronous fetch.
    Fill = 1,
}

/// The registered handles of one job type on one store alias: what a lookup
/// bumps, without building a metric key each time.
pub(crate) struct JobMetrics {
    /// hit, stale, miss, stale_if_error.
    lookups: [Counter; 4],
    local_hits: Counter,
    stale_age: Histogram,
    /// [mode][outcome].
    refreshes: [[Counter; 3]; 2],
    /// [mode].
    refresh_duration: [Histogram; 2],
    /// [claim][won, lost].
    claims: [[Counter; 2]; 2],
    /// Fill waits given up at `fill_wait` (`kind="fill", result="gave_up"`).
    fill_give_ups: Counter,
    /// [soft, hard] fetch timeouts.
    fetch_timeouts: [Counter; 2],
    /// enqueued, inline, failed.
    dispatches: [Counter; 3],
    /// HITs that queued an early refresh.
    early_refreshes: Counter,
    /// [replace, set, claim] writes of a read the store refused.
    refused_writes: [Counter; 3],
    /// One warning per [`REFUSED_WRITE_LOG_EVERY`] for them.
    refused_log: Throttle,
}

/// The least time between two warnings of refused writes of one job and
/// alias: a store that refuses writes refuses them all, on every read.
pub(crate) const REFUSED_WRITE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Which write of a read the store refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// The compare-and-set re-store of a stale or missing item.
    Replace = 0,
    /// The store of data fetched in the read.
    Set = 1,
    /// The fill claim of a cold key fetched in the read.
    Claim = 2,
}

impl JobMetrics {
    fn register(job: &str, alias: &str) -> Self {
        describe();
        let job = SharedString::from(job.to_owned());
        let alias = SharedString::from(alias.to_owned());
        let lookup = |status: &'static str| metrics::counter!(LOOKUPS_TOTAL, "job" => job.clone(), "alias" => alias.clone(), "status" => status);
        let refresh = |mode: Mode, outcome: Outcome| metrics::counter!(REFRESHES_TOTAL, "job" => job.clone(), "mode" => mode.as_str(), "outcome" => outcome.as_str());
        let duration = |mode: Mode| metrics::histogram!(REFRESH_DURATION_SECONDS, "job" => job.clone(), "mode" => mode.as_str());
        let claim = |kind: &'static str, result: &'static str| metrics::counter!(CLAIMS_TOTAL, "job" => job.clone(), "kind" => kind, "result" => result);
        let dispatch = |result: &'static str| metrics::counter!(DISPATCHES_TOTAL, "job" => job.clone(), "result" => result);
        let outcomes = |mode| [Outcome::Ok, Outcome::Error, Outcome::SkippedFresh].map(|o| refresh(mode, o));
        Self {
            lookups: ["hit", "stale", "miss", "stale_if_error"].map(lookup),
            local_hits: metrics::counter!(LOCAL_HITS_TOTAL, "job" => job.clone(), "alias" => alias.clone()),
            stale_age: metrics::histogram!(STALE_AGE_SECONDS, "job" => job.clone()),
            refreshes: [outcomes(Mode::Sync), outcomes(Mode::Queued)],
            refresh_duration: [duration(Mode::Sync), duration(Mode::Queued)],
            claims: [["won", "lost"].map(|r| claim("refresh", r)), ["won", "lost"].map(|r| claim("fill", r))],
            fill_give_ups: claim("fill", "gave_up"),
            fetch_timeouts: ["soft", "hard"]
                .map(|kind| metrics::counter!(FETCH_TIMEOUTS_TOTAL, "job" => job.clone(), "kind" => kind)),
            dispatches: ["enqueued", "inline", "failed"].map(dispatch),
            early_refreshes: metrics::counter!(EARLY_REFRESHES_TOTAL, "job" => job.clone()),
            refused_writes: ["replace", "set", "claim"].map(|op| metrics::counter!(REFUSED_WRITES_TOTAL, "job" => job.clone(), "alias" => alias.clone(), "op" => op)),
            refused_log: Throttle::new(REFUSED_WRITE_LOG_EVERY),
        }
    }

    /// A HIT queued an early refresh.
    pub(crate) fn refreshed_early(&self) {
        self.early_refreshes.increment(1);
    }

    /// The store refused `write` of a read; returns, once per
    /// [`REFUSED_WRITE_LOG_EVERY`], how many refusals to log (this one and
    /// those held back since the last warning).
    pub(crate) fn write_refused(&self, write: Write) -> Option<u64> {
        self.refused_writes[write as usize].increment(1);
        self.refused_log.pass()
    }

    /// A lookup answered with `status` (`refresh_failed`: stale data served
    /// after a failed synchronous fetch).
    pub(crate) fn lookup(&self, status: CacheStatus, refresh_failed: bool) {
        let index = match (status, refresh_failed) {
            (CacheStatus::Hit, _) => 0,
            (CacheStatus::Stale, false) => 1,
            (CacheStatus::Miss, _) => 2,
            (CacheStatus::Stale, true) => 3,
        };
        self.lookups[index].increment(1);
    }

    pub(crate) fn local_hit(&self) {
        self.local_hits.increment(1);
    }

    /// Stale data `age` seconds old (since its fetch) was served.
    pub(crate) fn stale_served(&self, age: f64) {
        self.stale_age.record(age.max(0.0));
    }

    pub(crate) fn refreshed(&self, mode: Mode, outcome: Outcome, took: Option<Duration>) {
        self.refreshes[mode as usize][outcome as usize].increment(1);
        if let Some(took) = took {
            self.refresh_duration[mode as usize].record(took.as_secs_f64());
        }
    }

    pub(crate) fn claim(&self, claim: Claim, won: bool) {
        self.claims[claim as usize][usize::from(!won)].increment(1);
    }

    /// A reader stopped waiting for a synchronous fetch: at its soft timeout
    /// (`hard` false: it served stale data) or its hard one.
    pub(crate) fn fetch_timed_out(&self, hard: bool) {
        self.fetch_timeouts[usize::from(hard)].increment(1);
    }

    /// A reader stopped waiting for another process's fill (`fill_wait`).
    pub(crate) fn fill_gave_up(&self) {
        self.fill_give_ups.increment(1);
    }

    pub(crate) fn dispatched(&self, dispatch: Dispatch) {
        let index = match dispatch {
            Dispatch::Enqueued => 0,
            Dispatch::RefreshedInline => 1,
            Dispatch::Failed => 2,
        };
        self.dispatches[index].increment(1);
    }
}

/// Lets one event through per `every`, counting those it holds back.
///
/// By hand: a lock and two fields, for a warning that would otherwise be
/// logged on every read; `tracing` has no rate limit of its own.
pub(crate) struct Throttle {
    every: Duration,
    /// When an event last went through, and the events held back since.
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Self {
        Self { every, state: std::sync::Mutex::new((None, 0)) }
    }

    /// `Some(n)` when this event goes through: `n` counts it and those held
    /// back since the last one that did; `None` when it is held back.
    pub(crate) fn pass(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (last, held) = &mut *state;
        if last.is_some_and(|last| now.duration_since(last) < self.every) {
            *held += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(held) + 1)
    }
}

/// The engine's [`JobMetrics`], per job type and store alias, registered on
/// first use in the recorder of the moment, and again if another recorder
/// has been installed since.
#[derive(Default)]
pub(crate) struct Registered {
    jobs: RwLock<Jobs>,
}

/// Keyed by the address of the job type's `type_name` (any type has one,
/// borrowed or not; should two copies of one name exist, both entries hold
/// handles of the same metrics). A job type has one name, and almost always
/// one alias: a short list per type, each entry with the address of the
/// recorder its handles were registered in.
type Jobs = HashMap<usize, Vec<Entry>>;

struct Entry {
    alias: Box<str>,
    recorder: usize,
    metrics: Arc<JobMetrics>,
}

/// The address of the recorder installed for this thread now (the facade's
/// no-op recorder when none is): it changes when an application installs
/// its recorder after the engine's first lookups.
fn current_recorder() -> usize {
    metrics::with_recorder(|recorder| std::ptr::from_ref(recorder).cast::<()>() as usize)
}

impl Registered {
    /// The handles of job type `J` (named `name`) on `alias`.
    pub(crate) fn of<J: ?Sized>(
        &self,
        name: impl FnOnce() -> Cow<'static, str>,
        alias: &str,
    ) -> Arc<JobMetrics> {
        let id = std::any::type_name::<J>().as_ptr() as usize;
        let recorder = current_recorder();
        let find = |jobs: &Jobs| {
            let entry = jobs.get(&id)?.iter().find(|e| &*e.alias == alias && e.recorder == recorder)?;
            Some(Arc::clone(&entry.metrics))
        };
        if let Some(found) = find(&self.jobs.read().unwrap_or_else(std::sync::PoisonError::into_inner)) {
            return found;
        }
        let mut jobs = self.jobs.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = find(&jobs) {
            return found;
        }
        let metrics = Arc::new(JobMetrics::register(&name(), alias));
        let entries = jobs.entry(id).or_default();
        entries.retain(|e| &*e.alias != alias);
        entries.push(Entry { alias: alias.into(), recorder, metrics: Arc::clone(&metrics) });
        metrics
    }
}

/// A worker took a job off `queue` and ran it to `result`.
pub(crate) fn worker_job(queue: &str, result: &'static str) {
    metrics::counter!(WORKER_JOBS_TOTAL, "queue" => queue.to_owned(), "result" => result).increment(1);
}

/// A job waited `seconds` on `queue`.
pub(crate) fn queue_latency(queue: &str, seconds: f64) {
    metrics::histogram!(QUEUE_LATENCY_SECONDS, "queue" => queue.to_owned()).record(seconds.max(0.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_one_event_through_per_period_and_counts_the_others() {
        let throttle = Throttle::new(Duration::from_millis(200));
        assert_eq!(throttle.pass(), Some(1));
        assert_eq!((throttle.pass(), throttle.pass()), (None, None), "held back within the period");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(throttle.pass(), Some(3), "this one and the two held back");
        assert_eq!(throttle.pass(), None);
    }
}
