//! Probabilistic early refresh (`early_refresh`, XFetch): a key read
//! continuously is refreshed before it goes stale, about once per lifetime,
//! one refresh at a time; off by default. On the memory store and on Redis,
//! with a manual clock (the fetch's own duration is on it) and a manual
//! queue run after each read, as a live worker would.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cacheback::queue::InProcessQueue;
use cacheback::telemetry::EARLY_REFRESHES_TOTAL;
use cacheback::{CacheStatus, Clock, FetchError, Job, JobHandle, ManualClock};
use common::{Backend, at, manual_engine, store_on};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

const LIFETIME: Duration = Duration::from_secs(600);
/// How long a fetch takes, on the manual clock.
const FETCH: Duration = Duration::from_secs(5);

/// A job whose fetch takes [`FETCH`] on the manual clock and returns its
/// ordinal.
#[derive(Clone)]
struct Counted {
    clock: ManualClock,
    fetches: Arc<AtomicU64>,
    beta: Option<f64>,
}

impl Job for Counted {
    type Args = ();
    type Output = u64;
    async fn fetch(&self, _: &()) -> Result<u64, FetchError> {
        self.clock.advance(FETCH);
        Ok(self.fetches.fetch_add(1, Ordering::SeqCst) + 1)
    }
    fn lifetime(&self) -> Duration {
        LIFETIME
    }
    fn early_refresh(&self) -> Option<f64> {
        self.beta
    }
}

struct Setup {
    job: JobHandle<Counted>,
    queue: InProcessQueue,
    clock: ManualClock,
    fetches: Arc<AtomicU64>,
    /// What the handle's metrics recorded.
    metrics: Snapshotter,
}

/// The early refreshes counted since the last look (a snapshot resets).
fn early_refreshes(metrics: &Snapshotter) -> u64 {
    metrics
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == EARLY_REFRESHES_TOTAL)
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => n,
            other => panic!("{other:?}"),
        })
        .sum()
}

async fn setup(backend: Backend, beta: Option<f64>) -> Setup {
    let clock = ManualClock::at(at(0));
    let fetches = Arc::new(AtomicU64::new(0));
    let job = Counted { clock: clock.clone(), fetches: Arc::clone(&fetches), beta };
    let (cache, queue) = manual_engine(store_on(backend, "early").await, &clock, &job);
    let recorder = DebuggingRecorder::new();
    let metrics = recorder.snapshotter();
    let job = metrics::with_local_recorder(&recorder, || cache.job(job));
    Setup { job, queue, clock, fetches, metrics }
}

/// A key read every second for 30 lifetimes, each read's queued refresh run
/// at once: every read is a HIT, and about one refresh lands per lifetime.
///
/// Read every second, a HIT draws about δ·β·ln(δ·β) = 40 s before the expiry
/// (δ·β = 15 s), and the chance that no read draws before it is e^−15.
async fn read_continuously_never_stale(backend: Backend) {
    let Setup { job, queue, clock, fetches, metrics } = setup(backend, Some(3.0)).await;
    job.get(&()).await.unwrap();
    let start = clock.now();
    let reads = 30 * LIFETIME.as_secs();
    for _ in 0..reads {
        clock.advance(Duration::from_secs(1));
        let found = job.lookup(&()).await.unwrap();
        assert_eq!(found.status, CacheStatus::Hit, "at {}", clock.now() - start);
        assert!(queue.pending() <= 1, "one early refresh at a time");
        queue.run_pending().await;
    }
    let windows = (clock.now() - start) / LIFETIME.as_secs_f64();
    let refreshes = fetches.load(Ordering::SeqCst) - 1;
    // Each refresh lands a little before its item's expiry: somewhat more
    // than one per lifetime (600 / (600 − 40 + 5) ≈ 1.06).
    assert!(
        refreshes as f64 >= windows && (refreshes as f64) < 1.2 * windows,
        "{refreshes} refreshes over {windows:.1} lifetimes"
    );
    assert_eq!(early_refreshes(&metrics), refreshes, "each one counted as early");
}

/// However many HITs draw an early refresh while one is pending, none queues
/// another; once it lands, the next one may.
async fn one_early_refresh_at_a_time(backend: Backend) {
    // β so large that every HIT draws: only the pending mark holds them back.
    let Setup { job, queue, clock, fetches, metrics } = setup(backend, Some(1e12)).await;
    job.get(&()).await.unwrap();
    for _ in 0..20 {
        clock.advance(Duration::from_millis(100));
        let found = job.lookup(&()).await.unwrap();
        assert_eq!((found.status, *found.value.unwrap()), (CacheStatus::Hit, 1), "the current data");
    }
    assert_eq!(queue.pending(), 1, "one early refresh queued by twenty HITs");
    assert_eq!(early_refreshes(&metrics), 1);
    queue.run_pending().await;
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    assert_eq!(*job.get(&()).await.unwrap().unwrap(), 2, "the refresh landed");
    assert_eq!(queue.pending(), 1, "and the next HIT drew again");
}

/// Off (the default), a fresh item never queues anything, and the key goes
/// STALE once per lifetime as it always did.
async fn off_by_default(backend: Backend) {
    assert_eq!(
        Counted { clock: ManualClock::at(0.0), fetches: Arc::default(), beta: None }.early_refresh(),
        None
    );
    let Setup { job, queue, clock, metrics, .. } = setup(backend, None).await;
    job.get(&()).await.unwrap();
    let fresh_until = clock.now() + LIFETIME.as_secs_f64();
    while clock.now() + 1.0 < fresh_until {
        clock.advance(Duration::from_secs(1));
        assert_eq!(job.lookup(&()).await.unwrap().status, CacheStatus::Hit);
        assert_eq!(queue.pending(), 0, "a fresh item queues nothing");
    }
    clock.advance(Duration::from_secs(2));
    assert_eq!(job.lookup(&()).await.unwrap().status, CacheStatus::Stale);
    assert_eq!(queue.pending(), 1);
    assert_eq!(early_refreshes(&metrics), 0);
}

on_every_store!(read_continuously_never_stale, one_early_refresh_at_a_time, off_by_default);
