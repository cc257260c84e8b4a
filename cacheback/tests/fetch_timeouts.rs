//! Soft and hard fetch timeouts (issue 18, §3): a reader with stale data to
//! serve gets it at `fetch_soft_timeout`, one whose fetch outlasts
//! `fetch_hard_timeout` fails with `Error::FetchTimeout`; either way the fetch
//! goes on, on a task of its own under the same claim, and stores its result,
//! and no second fetch starts meanwhile (a worker's queued refresh included).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cacheback::queue::{InProcessQueue, RefreshOutcome};
use cacheback::store::CacheStore;
use cacheback::{CacheStatus, Cacheback, Error, FetchError, Job, JobHandle, ManualClock};
use common::*;

on_every_store_mt!(
    the_soft_timeout_serves_stale_data_and_the_fetch_lands,
    the_hard_timeout_fails_the_reader_and_the_fetch_lands,
    a_worker_refresh_racing_a_soft_timeout_does_not_fetch_again,
    an_unregistered_job_s_timeouts_do_not_apply,
);

const FETCH: Duration = Duration::from_millis(400);
const SOFT: Duration = Duration::from_millis(100);

/// A slow source: a fetch takes 400 ms and returns the current version.
#[derive(Clone, Default)]
struct Source {
    version: Arc<AtomicU32>,
    fetches: Arc<AtomicUsize>,
}

impl Source {
    async fn fetch(&self) -> Result<u32, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(FETCH).await;
        Ok(self.version.load(Ordering::SeqCst))
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// Fresh for 10 s, never served more than 20 s old (past it, fetched in the
/// request), with a soft timeout.
#[derive(Clone)]
struct Soft(Source);

impl Job for Soft {
    type Args = ();
    type Output = u32;
    async fn fetch(&self, _: &()) -> Result<u32, FetchError> {
        self.0.fetch().await
    }
    fn lifetime(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn max_stale_age(&self) -> Option<Duration> {
        Some(Duration::from_secs(20))
    }
    fn fetch_soft_timeout(&self) -> Option<Duration> {
        Some(SOFT)
    }
}

/// A hard timeout, on every synchronous fetch.
#[derive(Clone)]
struct Hard(Source);

impl Job for Hard {
    type Args = ();
    type Output = u32;
    async fn fetch(&self, _: &()) -> Result<u32, FetchError> {
        self.0.fetch().await
    }
    fn fetch_hard_timeout(&self) -> Option<Duration> {
        Some(SOFT)
    }
}

struct Engine {
    cache: Cacheback,
    clock: ManualClock,
    queue: InProcessQueue,
    source: Source,
}

async fn engine(backend: Backend) -> Engine {
    let source = Source::default();
    let clock = ManualClock::at(T_14_00);
    let store: Arc<dyn CacheStore> = store_on(backend, "timeouts").await;
    let queue = InProcessQueue::builder().manual().build();
    let (soft, hard) = (source.clone(), source.clone());
    let cache = Cacheback::builder()
        .store_arc("default", store)
        .clock(clock.clone())
        .queue(queue.clone())
        .register(move |_| Ok(Soft(soft.clone())))
        .register(move |_| Ok(Hard(hard.clone())))
        .build()
        .unwrap();
    Engine { cache, clock, queue, source }
}

/// Polls `job`'s stored value until it is `value` (the background fetch
/// landed), for at most 5 s.
async fn lands<J: Job<Args = (), Output = u32>>(job: &JobHandle<J>, value: u32) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while job.raw_get(&()).await.unwrap().and_then(|item| item.data).map(|d| *d) != Some(value) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the background fetch stores its result");
}

async fn the_soft_timeout_serves_stale_data_and_the_fetch_lands(backend: Backend) {
    let e = engine(backend).await;
    let job = e.cache.job(Soft(e.source.clone()));
    e.source.version.store(1, Ordering::SeqCst);
    assert_eq!(*job.get(&()).await.unwrap().unwrap(), 1, "a cold miss waits for its fetch");
    e.source.version.store(2, Ordering::SeqCst);
    e.clock.advance(Duration::from_secs(25));

    let started = Instant::now();
    let found = job.lookup(&()).await.unwrap();
    let waited = started.elapsed();
    eprintln!(
        "soft_timeout_wait {} ms (bound {} ms, fetch {} ms)",
        waited.as_millis(),
        SOFT.as_millis(),
        FETCH.as_millis()
    );
    assert_eq!((found.status, found.timed_out, *found.value.unwrap()), (CacheStatus::Stale, true, 1));
    assert!(waited >= SOFT && waited < FETCH, "the stale data at the soft timeout ({waited:?})");
    lands(&job, 2).await;
    assert_eq!(e.source.fetches(), 2, "one fetch for the stale item, run to its end");
    let found = job.lookup(&()).await.unwrap();
    assert_eq!((found.status, found.timed_out, *found.value.unwrap()), (CacheStatus::Hit, false, 2));
}

async fn the_hard_timeout_fails_the_reader_and_the_fetch_lands(backend: Backend) {
    let e = engine(backend).await;
    let job = e.cache.job(Hard(e.source.clone()));
    e.source.version.store(7, Ordering::SeqCst);
    let started = Instant::now();
    let err = job.lookup(&()).await.unwrap_err();
    let waited = started.elapsed();
    eprintln!(
        "hard_timeout_wait {} ms (bound {} ms, fetch {} ms)",
        waited.as_millis(),
        SOFT.as_millis(),
        FETCH.as_millis()
    );
    assert!(matches!(err, Error::FetchTimeout { after, .. } if after == SOFT), "{err:?}");
    assert!(waited >= SOFT && waited < FETCH, "failed at the hard timeout ({waited:?})");
    #[cfg(feature = "loco")]
    {
        let status = loco_rs::Error::from(err);
        assert!(matches!(status, loco_rs::Error::CustomError(code, _) if code.as_u16() == 503), "a 503");
    }
    lands(&job, 7).await;
    let found = job.lookup(&()).await.unwrap();
    assert_eq!((found.status, *found.value.unwrap()), (CacheStatus::Hit, 7));
    assert_eq!(e.source.fetches(), 1, "the timed-out fetch was the only one");
}

/// A refresh queued for the key (by an earlier stale read) reaches a worker
/// while a reader's fetch, left running past its soft timeout, still holds
/// the claim: the worker waits for it and skips, rather than fetching again.
async fn a_worker_refresh_racing_a_soft_timeout_does_not_fetch_again(backend: Backend) {
    let e = engine(backend).await;
    let job = e.cache.job(Soft(e.source.clone()));
    job.get(&()).await.unwrap();
    assert_eq!(job.async_refresh(&()).await.unwrap(), cacheback::Dispatch::Enqueued);
    let payload = e.queue.pending_payloads().remove(0);
    e.clock.advance(Duration::from_secs(25));
    let found = job.lookup(&()).await.unwrap();
    assert!(found.timed_out);
    assert_eq!(e.cache.perform(&payload).await.unwrap(), RefreshOutcome::SkippedFresh);
    assert_eq!(e.source.fetches(), 2, "the first fetch and the reader's, none for the worker");
}

/// A job with a hard timeout that the engine cannot rebuild (not
/// registered): cut short, its fetch would never land, so the timeouts do
/// not apply: the reader waits for its fetch, and a warning says why, once.
async fn an_unregistered_job_s_timeouts_do_not_apply(backend: Backend) {
    #[derive(Clone)]
    struct Unregistered(Source);
    impl Job for Unregistered {
        type Args = ();
        type Output = u32;
        async fn fetch(&self, _: &()) -> Result<u32, FetchError> {
            self.0.fetch().await
        }
        fn fetch_hard_timeout(&self) -> Option<Duration> {
            Some(SOFT)
        }
    }
    let e = engine(backend).await;
    let job = e.cache.job(Unregistered(e.source.clone()));
    let (logs, _guard) = Logs::capture();
    for _ in 0..2 {
        job.delete(&()).await.unwrap();
        let started = Instant::now();
        assert_eq!(*job.get(&()).await.unwrap().unwrap(), 0);
        assert!(started.elapsed() >= FETCH, "the whole fetch");
    }
    assert_eq!(logs.text().matches("the timeouts do not apply").count(), 1, "{}", logs.text());
}
