//! Stale-if-error (RFC 5861) and `max_stale_age`: bounds counted from an
//! item's last successful fetch, on the memory store and on Redis.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cacheback::queue::InProcessQueue;
use cacheback::store::CacheStore;
use cacheback::{CacheStatus, Cacheback, Clock, Error, FetchError, Job, ManualClock};
use common::*;

/// A job whose fetch fails while `failing` is set; lifetime 600 s, refresh
/// timeout 60 s, and the bounds under test.
#[derive(Clone)]
struct Flaky {
    clock: ManualClock,
    failing: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
    stale_if_error: Option<Duration>,
    max_stale_age: Option<Duration>,
    threshold: Option<Duration>,
}

impl Job for Flaky {
    type Args = (String,);
    type Output = f64;
    async fn fetch(&self, _: &(String,)) -> Result<f64, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err("the database is down".into());
        }
        Ok(self.clock.now())
    }
    fn stale_if_error(&self) -> Option<Duration> {
        self.stale_if_error
    }
    fn max_stale_age(&self) -> Option<Duration> {
        self.max_stale_age
    }
    fn fetch_on_stale_threshold(&self) -> Option<Duration> {
        self.threshold
    }
}

struct Setup {
    cache: Cacheback,
    queue: InProcessQueue,
    job: Flaky,
}

async fn setup(backend: Backend, configure: impl FnOnce(&mut Flaky)) -> Setup {
    let clock = ManualClock::at(T_14_00);
    let mut job = Flaky {
        clock: clock.clone(),
        failing: Arc::default(),
        fetches: Arc::default(),
        stale_if_error: None,
        max_stale_age: None,
        threshold: None,
    };
    configure(&mut job);
    let store: Arc<dyn CacheStore> = store_on(backend, "stale-if-error").await;
    let queue = InProcessQueue::builder().manual().build();
    let registered = job.clone();
    let cache = Cacheback::builder()
        .store_arc("default", store)
        .clock(clock)
        .queue(queue.clone())
        .register(move |_| Ok(registered.clone()))
        .build()
        .unwrap();
    Setup { cache, queue, job }
}

impl Setup {
    fn advance(&self, secs: u64) {
        self.job.clock.advance(Duration::from_secs(secs));
    }
    fn fail(&self, failing: bool) {
        self.job.failing.store(failing, Ordering::SeqCst);
    }
    fn fetches(&self) -> usize {
        self.job.fetches.load(Ordering::SeqCst)
    }
}

fn key() -> (String,) {
    ("k".to_owned(),)
}

on_every_store!(
    within_stale_if_error_a_failed_fetch_serves_the_stale_item,
    without_stale_if_error_the_error_reaches_the_caller,
    max_stale_age_counts_from_the_fetch_not_from_the_re_store,
    fetch_on_stale_threshold_keeps_the_original_meaning,
    items_record_when_they_were_fetched,
);

/// Past `max_stale_age` the item is fetched in the request; the fetch fails;
/// within `stale_if_error` (counted from the fetch) the stale item is
/// served, marked, and a background refresh is queued. Past it, the error.
async fn within_stale_if_error_a_failed_fetch_serves_the_stale_item(backend: Backend) {
    let s = setup(backend, |j| {
        j.max_stale_age = Some(Duration::from_secs(900));
        j.stale_if_error = Some(Duration::from_secs(3600));
    })
    .await;
    let job = s.cache.job(s.job.clone());
    job.refresh(&key()).await.unwrap();
    s.fail(true);
    s.advance(901);
    let found = job.lookup(&key()).await.unwrap();
    assert_eq!(
        (found.status, found.sync_fetch, found.refresh_failed),
        (CacheStatus::Stale, Some(true), true)
    );
    assert_eq!(*found.value.unwrap(), T_14_00, "the item fetched at 14:00");
    assert_eq!(s.queue.pending(), 1, "a background refresh retries");
    assert_eq!(s.fetches(), 2);

    // While the database stays down, the refresh fails and the item is served within the bound...
    s.queue.run_pending().await;
    s.advance(3600 - 901 - 1);
    let found = job.lookup(&key()).await.unwrap();
    assert!(found.refresh_failed && found.status == CacheStatus::Stale, "{found:?}");
    // ...and past it, counted from the fetch, the error reaches the caller.
    s.advance(2);
    let err = job.lookup(&key()).await.unwrap_err();
    assert!(matches!(err, Error::Fetch { .. }), "{err}");

    // The database returns: the next read fetches and is fresh again.
    s.fail(false);
    let found = job.lookup(&key()).await.unwrap();
    assert_eq!((found.status, found.refresh_failed), (CacheStatus::Stale, false));
    assert_eq!(*found.value.unwrap(), s.job.clock.now());
}

/// The original's behaviour is the default: a failed synchronous fetch is
/// the caller's error even with stale data at hand.
async fn without_stale_if_error_the_error_reaches_the_caller(backend: Backend) {
    let s = setup(backend, |j| j.max_stale_age = Some(Duration::from_secs(900))).await;
    let job = s.cache.job(s.job.clone());
    job.refresh(&key()).await.unwrap();
    s.fail(true);
    s.advance(901);
    assert!(matches!(job.lookup(&key()).await.unwrap_err(), Error::Fetch { .. }));
}

/// A refresh that keeps failing re-stores the stale item for the refresh
/// timeout again and again; `max_stale_age` still fetches in the request once
/// the item is that old, counted from its fetch.
async fn max_stale_age_counts_from_the_fetch_not_from_the_re_store(backend: Backend) {
    let s = setup(backend, |j| j.max_stale_age = Some(Duration::from_secs(900))).await;
    let job = s.cache.job(s.job.clone());
    job.refresh(&key()).await.unwrap();
    s.fail(true);
    let mut age = 0;
    for _ in 0..4 {
        // Stale: re-stored until the refresh timeout, queued; the refresh fails.
        s.advance(if age == 0 { 601 } else { 61 });
        age += if age == 0 { 601 } else { 61 };
        let found = job.lookup(&key()).await.unwrap();
        assert_eq!((found.status, found.sync_fetch), (CacheStatus::Stale, Some(false)), "age {age}");
        assert_eq!(s.queue.run_pending().await, 1);
    }
    assert_eq!(age, 784);
    s.fail(false);
    s.advance(117); // age 901: past max_stale_age, 56 s into the last re-store
    let found = job.lookup(&key()).await.unwrap();
    assert_eq!((found.status, found.sync_fetch), (CacheStatus::Stale, Some(true)));
    assert_eq!(*found.value.unwrap(), s.job.clock.now(), "fetched in the request");
}

/// `fetch_on_stale_threshold` counts from the item's last store, as in the
/// original: while reads keep re-storing it for refreshes that fail, the item
/// is served past the threshold counted from its fetch.
async fn fetch_on_stale_threshold_keeps_the_original_meaning(backend: Backend) {
    let s = setup(backend, |j| j.threshold = Some(Duration::from_secs(900))).await;
    let job = s.cache.job(s.job.clone());
    job.refresh(&key()).await.unwrap();
    s.fail(true);
    s.advance(601);
    for age in [601, 662, 723, 784, 845, 906] {
        let found = job.lookup(&key()).await.unwrap();
        assert_eq!((found.status, found.sync_fetch), (CacheStatus::Stale, Some(false)), "age {age}");
        assert_eq!(*found.value.unwrap(), T_14_00, "served {age} s after its fetch");
        s.queue.run_pending().await;
        s.advance(61);
    }
    // 301 s past the last re-store's expiry: past 900 - 600, fetched in the request.
    s.advance(300);
    let err = job.lookup(&key()).await.unwrap_err();
    assert!(matches!(err, Error::Fetch { .. }), "a synchronous fetch, which fails: {err}");
}

/// A fetch stamps the item; a re-store for a refresh keeps the stamp; `set`
/// stamps it anew.
async fn items_record_when_they_were_fetched(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let job = s.cache.job(s.job.clone());
    job.refresh(&key()).await.unwrap();
    assert_eq!(job.raw_get(&key()).await.unwrap().unwrap().fetched_at, Some(T_14_00));
    s.advance(601);
    job.lookup(&key()).await.unwrap();
    let restored = job.raw_get(&key()).await.unwrap().unwrap();
    assert_eq!((restored.expiry, restored.fetched_at), (T_14_00 + 661.0, Some(T_14_00)));
    job.set(&key(), 1.0).await.unwrap();
    assert_eq!(job.raw_get(&key()).await.unwrap().unwrap().fetched_at, Some(T_14_00 + 601.0));
}
