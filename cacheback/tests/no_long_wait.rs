//! No reader waits long for another's fill (issue 18, §1–2): a fill whose
//! caller went away hands over at once (its claim is released in the
//! background, the in-process waiters take over), and a reader waits for
//! another process's fill for at most the job's `fill_wait`.

mod common;

use std::time::{Duration, Instant};

use cacheback::{CacheStatus, Clock, FetchError, Job};
use common::*;

on_every_store_mt!(
    a_cancelled_fill_hands_over_at_once,
    cancelled_fills_hand_over_every_time,
    a_dead_holder_is_waited_for_fill_wait_only,
    a_released_claim_is_claimed_in_turn,
);

const FETCH: Duration = Duration::from_millis(400);

/// Waits (polling the fetch count, which the job bumps as it starts) until
/// `n` fetches have started.
async fn fetches_started(env: &Env, n: usize) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while env.fetches() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the fetch starts");
}

/// The first reader of a cold key is cancelled mid-fetch (its request was
/// dropped): the reader waiting on it answers within its own fetch time,
/// not after the refresh timeout (60 s) as before.
async fn a_cancelled_fill_hands_over_at_once(backend: Backend) {
    let fx = fixture(backend).fetch_delay(FETCH).build().await;
    let first = tokio::spawn({
        let job = fx.dummy();
        async move { job.lookup(&foo()).await }
    });
    fetches_started(&fx.env, 1).await;
    let waiter = tokio::spawn({
        let job = fx.dummy();
        async move { job.lookup(&foo()).await.unwrap() }
    });
    // The waiter joins the fill (it does not fetch while the first one runs).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fx.env.fetches(), 1);
    let cancelled = Instant::now();
    first.abort();
    let found = tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("no long wait").unwrap();
    let waited = cancelled.elapsed();
    eprintln!("cancelled_fill_wait {} ms (fetch {} ms)", waited.as_millis(), FETCH.as_millis());
    assert_eq!((found.status, found.value.unwrap().0.as_str()), (CacheStatus::Miss, "JOB-EXECUTED:foo"));
    assert_eq!(fx.env.fetches(), 2, "the waiter fetched in turn, once");
    assert!(waited < FETCH * 3, "answered {waited:?} after the cancellation: its own fetch and a poll");
}

/// Many rounds, many waiters: each time the fill's first reader is
/// cancelled, one waiter fetches in turn and every other one shares it.
async fn cancelled_fills_hand_over_every_time(backend: Backend) {
    const WAITERS: usize = 8;
    let fetch = Duration::from_millis(100);
    for round in 0..10 {
        let fx = fixture(backend).fetch_delay(fetch).build().await;
        let first = tokio::spawn({
            let job = fx.dummy();
            async move { job.lookup(&foo()).await }
        });
        fetches_started(&fx.env, 1).await;
        let waiters: Vec<_> = (0..WAITERS)
            .map(|_| {
                let job = fx.dummy();
                tokio::spawn(async move { job.lookup(&foo()).await.unwrap() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let cancelled = Instant::now();
        first.abort();
        for waiter in waiters {
            let found =
                tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("no long wait").unwrap();
            assert_eq!(found.value.unwrap().0, "JOB-EXECUTED:foo", "round {round}");
        }
        assert!(cancelled.elapsed() < fetch * 5, "round {round}: {:?}", cancelled.elapsed());
        assert_eq!(fx.env.fetches(), 2, "round {round}: one fetch in turn, shared by every waiter");
    }
}

/// A job that waits at most 300 ms for another process's fill.
#[derive(Debug, Clone)]
struct Patient(Env);

const FILL_WAIT: Duration = Duration::from_millis(300);

impl Job for Patient {
    type Args = (String,);
    type Output = (String, f64);
    async fn fetch(&self, (param,): &(String,)) -> Result<(String, f64), FetchError> {
        self.0.fetch(param).await
    }
    fn fill_wait(&self) -> Duration {
        FILL_WAIT
    }
}

/// Another process holds the fill claim and never delivers (it died or
/// hangs; its claim would hold for the refresh timeout): the reader fetches
/// itself after `fill_wait`, logs it, and counts it.
async fn a_dead_holder_is_waited_for_fill_wait_only(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.cache.job(Patient(fx.env.clone()));
    let key = job.key(&foo()).unwrap();
    let now = fx.clock().now();
    let store = fx.cache.store("default").unwrap();
    assert!(store.claim(&key, "a-process-that-hangs", now, now + 60.0).await.unwrap());

    let (logs, _guard) = Logs::capture();
    let started = Instant::now();
    let found = job.lookup(&foo()).await.unwrap();
    let waited = started.elapsed();
    assert_eq!((found.status, found.value.unwrap().0.as_str()), (CacheStatus::Miss, "JOB-EXECUTED:foo"));
    assert_eq!(fx.env.fetches(), 1);
    assert!(waited >= FILL_WAIT, "it waited for the holder first ({waited:?})");
    assert!(waited < FILL_WAIT * 5, "and no longer than fill_wait and a poll ({waited:?})");
    assert_eq!(logs.text().matches("took longer than fill_wait").count(), 1, "{}", logs.text());
}

/// The holder lets go without a fresh item (its fetch failed or its caller
/// went away): a waiter claims the key in turn, well before `fill_wait`.
async fn a_released_claim_is_claimed_in_turn(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.cache.job(Patient(fx.env.clone()));
    let key = job.key(&foo()).unwrap();
    let now = fx.clock().now();
    let store = fx.cache.store("default").unwrap().clone();
    assert!(store.claim(&key, "a-holder", now, now + 60.0).await.unwrap());
    let reader = tokio::spawn(async move { job.lookup(&foo()).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(fx.env.fetches(), 0, "the reader waits while the claim is held");
    store.release(&key, "a-holder").await.unwrap();
    let found = reader.await.unwrap();
    assert_eq!(found.value.unwrap().0, "JOB-EXECUTED:foo");
    assert_eq!(fx.env.fetches(), 1);
    // It held the claim for its own fetch, and released it.
    assert!(!store.is_claimed(&key, fx.clock().now()).await.unwrap());
}
