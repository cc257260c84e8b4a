//! Metrics: every path of a lookup, a refresh and a worker moves the counters
//! and histograms docs/observability.md lists, with their labels.
//!
//! Each test records into its own `metrics-util` debugging recorder
//! (thread-local, on a current-thread runtime), so tests run in parallel
//! without seeing each other's numbers.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use cacheback::queue::sidekiq::{SidekiqQueue, SidekiqWorker};
use cacheback::queue::{InProcessQueue, RefreshPayload, RefreshQueue};
use cacheback::store::{CacheStore, MemoryStore};
use cacheback::telemetry::{
    CLAIMS_TOTAL, DISPATCHES_TOTAL, LOCAL_HITS_TOTAL, LOOKUPS_TOTAL, QUEUE_LATENCY_SECONDS,
    REFRESH_DURATION_SECONDS, REFRESHES_TOTAL, STALE_AGE_SECONDS, WORKER_JOBS_TOTAL,
};
use cacheback::{CacheStatus, Cacheback, FetchError, Job, LocalCache, ManualClock, QueueError, TaskOptions};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use redis::AsyncCommands;

mod common;
use common::{redis_url, unique_prefix};

const T0: f64 = 1_700_000_000.0;

/// One metric: its name, labels and value.
type Metric = (String, Vec<(String, String)>, DebugValue);

/// What a test recorded.
struct Recorded(Vec<Metric>);

impl Recorded {
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.0.iter().find_map(|(n, l, value)| {
            let same = n == name
                && l.len() == labels.len()
                && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v));
            same.then_some(value)
        })
    }

    /// A counter's value (0 if never registered).
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{name} is not a counter: {other:?}"),
        }
    }

    /// A histogram's values.
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.find(name, labels) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            None => Vec::new(),
            Some(other) => panic!("{name} is not a histogram: {other:?}"),
        }
    }
}

/// Runs `test` with a fresh recorder installed on this thread.
fn recorded<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> Recorded {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(test());
    });
    Recorded(
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
                (key.name().to_owned(), labels, value)
            })
            .collect(),
    )
}

/// Counts its fetches; fails while `failing`; a minute of lifetime, fetched
/// in the call past two minutes, stale served for an hour if that fails.
#[derive(Clone, Default)]
struct Counted {
    fetches: Arc<AtomicU32>,
    failing: Arc<AtomicBool>,
    fetch_on_miss: bool,
}

impl Job for Counted {
    type Args = (u32,);
    type Output = u32;

    async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err("the origin is down".into());
        }
        Ok(n + self.fetches.fetch_add(1, Ordering::SeqCst))
    }

    fn lifetime(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn should_missing_item_be_fetched_synchronously(&self, _: &(u32,)) -> bool {
        self.fetch_on_miss
    }

    fn stale_if_error(&self) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }

    fn fetch_on_stale_threshold(&self) -> Option<Duration> {
        Some(Duration::from_secs(120))
    }
}

fn job() -> String {
    Counted::name().into_owned()
}

fn engine(clock: &ManualClock, queue: &InProcessQueue) -> Cacheback {
    Cacheback::builder()
        .clock(clock.clone())
        .queue(queue.clone())
        .register(|_| Ok(Counted { fetch_on_miss: true, ..Counted::default() }))
        .build()
        .unwrap()
}

#[test]
fn a_miss_a_hit_a_stale_read_and_its_queued_refresh() {
    let recorded = recorded(|| async {
        let clock = ManualClock::at(T0);
        let queue = InProcessQueue::builder().manual().build();
        let cache = engine(&clock, &queue);
        let counted = cache.job(Counted { fetch_on_miss: true, ..Counted::default() });

        let miss = counted.lookup(&(1,)).await.unwrap();
        assert_eq!(
            (miss.status, miss.fetched_at, miss.expiry),
            (CacheStatus::Miss, Some(T0), Some(T0 + 60.0))
        );
        let hit = counted.lookup(&(1,)).await.unwrap();
        assert_eq!((hit.status, hit.fetched_at, hit.expiry), (CacheStatus::Hit, Some(T0), Some(T0 + 60.0)));

        clock.advance(Duration::from_secs(75));
        let stale = counted.lookup(&(1,)).await.unwrap();
        assert_eq!((stale.status, stale.sync_fetch), (CacheStatus::Stale, Some(false)));
        assert_eq!(
            (stale.fetched_at, stale.expiry),
            (Some(T0), Some(T0 + 60.0)),
            "the stale data's own times"
        );
        // Re-stored for the refresh timeout: a HIT until the refresh lands.
        assert_eq!(counted.lookup(&(1,)).await.unwrap().status, CacheStatus::Hit);

        assert_eq!(queue.run_pending().await, 1);
        let fresh = counted.lookup(&(1,)).await.unwrap();
        assert_eq!((fresh.status, fresh.fetched_at), (CacheStatus::Hit, Some(T0 + 75.0)));
    });
    let job = job();
    let job = job.as_str();
    let lookups =
        |status| recorded.counter(LOOKUPS_TOTAL, &[("job", job), ("alias", "default"), ("status", status)]);
    assert_eq!([lookups("hit"), lookups("stale"), lookups("miss"), lookups("stale_if_error")], [3, 1, 1, 0]);
    let refreshes = |mode, outcome| {
        recorded.counter(REFRESHES_TOTAL, &[("job", job), ("mode", mode), ("outcome", outcome)])
    };
    assert_eq!((refreshes("sync", "ok"), refreshes("queued", "ok")), (1, 1));
    assert_eq!((refreshes("sync", "error"), refreshes("queued", "skipped_fresh")), (0, 0));
    for mode in ["sync", "queued"] {
        let took = recorded.histogram(REFRESH_DURATION_SECONDS, &[("job", job), ("mode", mode)]);
        assert!(took.len() == 1 && took[0] >= 0.0 && took[0] < 5.0, "{mode}: {took:?}");
    }
    let claims =
        |kind, result| recorded.counter(CLAIMS_TOTAL, &[("job", job), ("kind", kind), ("result", result)]);
    assert_eq!((claims("fill", "won"), claims("refresh", "won")), (1, 1));
    assert_eq!((claims("fill", "lost"), claims("refresh", "lost")), (0, 0));
    assert_eq!(recorded.counter(DISPATCHES_TOTAL, &[("job", job), ("result", "enqueued")]), 1);
    assert_eq!(recorded.histogram(STALE_AGE_SECONDS, &[("job", job)]), [75.0], "served 75 s after its fetch");
    assert_eq!(recorded.counter(WORKER_JOBS_TOTAL, &[("queue", "in_process"), ("result", "processed")]), 1);
    assert_eq!(recorded.histogram(QUEUE_LATENCY_SECONDS, &[("queue", "in_process")]).len(), 1);
    assert_eq!(recorded.counter(LOCAL_HITS_TOTAL, &[("job", job), ("alias", "default")]), 0);
}

#[test]
fn stale_data_served_after_a_failed_fetch_is_counted_apart() {
    let recorded = recorded(|| async {
        let clock = ManualClock::at(T0);
        let queue = InProcessQueue::builder().manual().build();
        let cache = engine(&clock, &queue);
        let counted = Counted { fetch_on_miss: true, ..Counted::default() };
        let handle = cache.job(counted.clone());
        handle.get(&(1,)).await.unwrap();
        // Past the stale threshold (120 s from the fetch): fetched in the
        // call, which fails.
        clock.advance(Duration::from_secs(150));
        counted.failing.store(true, Ordering::SeqCst);
        let served = handle.lookup(&(1,)).await.unwrap();
        assert!(served.refresh_failed && served.status == CacheStatus::Stale);
        assert_eq!((served.value.as_deref(), served.fetched_at), (Some(&1), Some(T0)));
    });
    let job = job();
    let job = job.as_str();
    let lookups =
        |status| recorded.counter(LOOKUPS_TOTAL, &[("job", job), ("alias", "default"), ("status", status)]);
    assert_eq!((lookups("stale_if_error"), lookups("stale"), lookups("miss")), (1, 0, 1));
    let refreshes = |mode, outcome| {
        recorded.counter(REFRESHES_TOTAL, &[("job", job), ("mode", mode), ("outcome", outcome)])
    };
    assert_eq!((refreshes("sync", "ok"), refreshes("sync", "error")), (1, 1));
    assert_eq!(recorded.histogram(STALE_AGE_SECONDS, &[("job", job)]), [150.0]);
}

#[test]
fn a_queued_refresh_of_an_item_refreshed_since_is_skipped() {
    let recorded = recorded(|| async {
        let clock = ManualClock::at(T0);
        let queue = InProcessQueue::builder().manual().build();
        let cache = engine(&clock, &queue);
        let handle = cache.job(Counted::default());
        let mut payload = RefreshPayload::new(job(), serde_json::json!([1]), handle.key(&(1,)).unwrap());
        payload.queued_at = Some(T0 - 1.0);
        handle.set(&(1,), 7).await.unwrap();
        assert_eq!(cache.perform(&payload).await.unwrap(), cacheback::queue::RefreshOutcome::SkippedFresh);
    });
    let job = job();
    let skipped = [("job", job.as_str()), ("mode", "queued"), ("outcome", "skipped_fresh")];
    assert_eq!(recorded.counter(REFRESHES_TOTAL, &skipped), 1);
    assert!(recorded.histogram(REFRESH_DURATION_SECONDS, &[("job", &job), ("mode", "queued")]).is_empty());
}

/// A queue that refuses everything.
#[derive(Debug)]
struct Refusing;

#[async_trait::async_trait]
impl RefreshQueue for Refusing {
    async fn enqueue(&self, _: RefreshPayload, _: &TaskOptions) -> Result<(), QueueError> {
        Err(QueueError::new("refused"))
    }
}

#[test]
fn a_refresh_the_queue_refuses_runs_inline_and_says_so() {
    let recorded = recorded(|| async {
        let cache = Cacheback::builder().clock(ManualClock::at(T0)).queue(Refusing).build().unwrap();
        let handle = cache.job(Counted::default());
        let miss = handle.lookup(&(1,)).await.unwrap();
        assert_eq!((miss.status, miss.value), (CacheStatus::Miss, None));
        assert_eq!(*handle.get(&(1,)).await.unwrap().unwrap(), 1, "refreshed in the call");
    });
    let job = job();
    let job = job.as_str();
    assert_eq!(recorded.counter(DISPATCHES_TOTAL, &[("job", job), ("result", "inline")]), 1);
    assert_eq!(recorded.counter(DISPATCHES_TOTAL, &[("job", job), ("result", "enqueued")]), 0);
    assert_eq!(recorded.counter(REFRESHES_TOTAL, &[("job", job), ("mode", "sync"), ("outcome", "ok")]), 1);
}

#[test]
fn local_copies_count_their_hits() {
    let recorded = recorded(|| async {
        let cache = Cacheback::builder()
            .local_cache("default", LocalCache::new(Duration::from_secs(5)))
            .build()
            .unwrap();
        let handle = cache.job(Counted { fetch_on_miss: true, ..Counted::default() });
        handle.get(&(1,)).await.unwrap();
        handle.get(&(1,)).await.unwrap();
        handle.get(&(1,)).await.unwrap();
    });
    let job = job();
    let job = job.as_str();
    assert_eq!(recorded.counter(LOCAL_HITS_TOTAL, &[("job", job), ("alias", "default")]), 2);
    assert_eq!(recorded.counter(LOOKUPS_TOTAL, &[("job", job), ("alias", "default"), ("status", "hit")]), 2);
}

#[test]
fn a_cold_key_another_process_fills_is_a_lost_fill_claim() {
    let recorded = recorded(|| async {
        let clock = ManualClock::at(T0);
        let store = Arc::new(MemoryStore::new());
        let cache =
            Cacheback::builder().store_arc("default", store.clone()).clock(clock.clone()).build().unwrap();
        let counted = Counted { fetch_on_miss: true, ..Counted::default() };
        let handle = cache.job(counted.clone());
        let key = handle.key(&(1,)).unwrap();
        // "Another process" holds the fill claim, then stores the item and releases.
        assert!(store.claim(&key, "other", T0, T0 + 60.0).await.unwrap());
        let reader = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.lookup(&(1,)).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        handle.set(&(1,), 41).await.unwrap();
        store.release(&key, "other").await.unwrap();
        let found = reader.await.unwrap();
        assert_eq!(found.value.as_deref(), Some(&41), "the other process's fill");
        assert_eq!(counted.fetches.load(Ordering::SeqCst), 0);
    });
    let job = job();
    let claims =
        |result| recorded.counter(CLAIMS_TOTAL, &[("job", &job), ("kind", "fill"), ("result", result)]);
    assert_eq!((claims("won"), claims("lost")), (0, 1));
}

#[test]
fn the_sidekiq_worker_counts_what_it_takes_off_its_queue() {
    let name = unique_prefix("metrics").replace(':', "-").trim_end_matches('-').to_owned();
    let queue_name = name.clone();
    let recorded = recorded(|| async move {
        let sidekiq = SidekiqQueue::builder(redis_url()).default_queue(&queue_name).connect().await.unwrap();
        let cache = Cacheback::builder().queue(sidekiq).register(|_| Ok(Counted::default())).build().unwrap();
        let worker = SidekiqWorker::builder(cache.clone(), redis_url())
            .queues([queue_name.clone()])
            .connect()
            .await
            .unwrap();
        let handle = cache.job(Counted::default());
        assert_eq!(handle.lookup(&(1,)).await.unwrap().status, CacheStatus::Miss, "queued");
        let mut redis =
            redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let garbage = format!("not a job {queue_name}");
        let () = redis.lpush(format!("queue:{queue_name}"), &garbage).await.unwrap();
        let report = worker.drain().await.unwrap();
        assert_eq!((report.processed, report.failed), (2, 1));
        assert_eq!(*handle.get(&(1,)).await.unwrap().unwrap(), 1);
    });
    let processed = recorded.counter(WORKER_JOBS_TOTAL, &[("queue", &name), ("result", "processed")]);
    let dead = recorded.counter(WORKER_JOBS_TOTAL, &[("queue", &name), ("result", "dead")]);
    assert_eq!((processed, dead), (1, 1));
    let waited = recorded.histogram(QUEUE_LATENCY_SECONDS, &[("queue", &name)]);
    assert!(waited.len() == 1 && (0.0..5.0).contains(&waited[0]), "{waited:?}");
    let job = job();
    assert_eq!(recorded.counter(REFRESHES_TOTAL, &[("job", &job), ("mode", "queued"), ("outcome", "ok")]), 1);
}

#[test]
fn prometheus_exposition_names_units_and_labels() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            let cache = Cacheback::builder().build().unwrap();
            let counted = cache.job(Counted { fetch_on_miss: true, ..Counted::default() });
            counted.get(&(1,)).await.unwrap();
            counted.get(&(1,)).await.unwrap();
        });
    });
    let text = handle.render();
    let job = job();
    for line in [
        "# HELP cacheback_lookups_total Cache lookups, by status (hit, stale, miss, stale_if_error)."
            .to_owned(),
        "# TYPE cacheback_lookups_total counter".to_owned(),
        format!("cacheback_lookups_total{{job=\"{job}\",alias=\"default\",status=\"hit\"}} 1"),
        format!("cacheback_lookups_total{{job=\"{job}\",alias=\"default\",status=\"miss\"}} 1"),
        format!("cacheback_refreshes_total{{job=\"{job}\",mode=\"sync\",outcome=\"ok\"}} 1"),
        "# TYPE cacheback_refresh_duration_seconds summary".to_owned(),
        format!("cacheback_refresh_duration_seconds_count{{job=\"{job}\",mode=\"sync\"}} 1"),
    ] {
        assert!(text.lines().any(|l| l == line), "no line `{line}` in:\n{text}");
    }
}

#[test]
fn without_a_recorder_nothing_is_recorded_and_nothing_breaks() {
    // No recorder on this thread nor globally (no test installs one).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let cache = Cacheback::builder().store("default", MemoryStore::new()).build().unwrap();
        let counted = cache.job(Counted { fetch_on_miss: true, ..Counted::default() });
        assert_eq!(*counted.get(&(5,)).await.unwrap().unwrap(), 5);
        assert_eq!(counted.lookup(&(5,)).await.unwrap().status, CacheStatus::Hit);
    });
}
