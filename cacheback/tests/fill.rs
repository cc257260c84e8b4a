//! Cold-miss singleflight across processes: concurrent cold misses of one
//! key in two engines sharing a store (Redis, PostgreSQL or SQLite; each with
//! its own connections, queue and clock: two processes) fetch once in total; the others wait for that fill,
//! and fetch themselves if its holder never delivers.

mod common;

use std::time::Duration;

use cacheback::{CacheStatus, Clock};
use common::*;
use futures::future::join_all;

const READERS: usize = 64;

on_every_shared_store!(
    cold_misses_in_two_processes_fetch_once_in_total,
    a_fill_whose_holder_died_is_fetched_once_its_claim_passes,
    a_failed_fill_lets_the_waiters_fetch,
);

async fn cold_reads(fx: &Fixture) -> Vec<cacheback::Lookup<(String, f64)>> {
    let readers = (0..READERS).map(|_| {
        let job = fx.dummy();
        tokio::spawn(async move { job.lookup(&foo()).await.unwrap() })
    });
    join_all(readers).await.into_iter().map(Result::unwrap).collect()
}

async fn cold_misses_in_two_processes_fetch_once_in_total(backend: Backend) {
    for round in 0..5 {
        let a = fixture(backend).fetch_delay(Duration::from_millis(100)).build().await;
        let b = fixture(backend).fetch_delay(Duration::from_millis(100)).prefix(&a.prefix).build().await;
        let (found_a, found_b) = tokio::join!(cold_reads(&a), cold_reads(&b));
        assert_eq!(a.env.fetches() + b.env.fetches(), 1, "round {round}: one fetch between both processes");
        // A reader whose first read reaches the store after the fill landed
        // (a database store's pool queues some of 128 readers) finds a HIT.
        for found in found_a.iter().chain(&found_b) {
            assert!(matches!(found.status, CacheStatus::Miss | CacheStatus::Hit), "{:?}", found.status);
            assert_eq!(found.value.as_ref().unwrap().0, "JOB-EXECUTED:foo", "every reader gets the fill");
        }
        assert!(found_a.iter().chain(&found_b).any(|f| f.status == CacheStatus::Miss), "round {round}");
    }
}

/// The process holding the fill claim died (its claim stays until the
/// refresh timeout passes on the engine's clock): the waiting process
/// fetches once the claim has passed, rather than waiting forever.
async fn a_fill_whose_holder_died_is_fetched_once_its_claim_passes(backend: Backend) {
    let fx = fixture(backend).build().await;
    let key = fx.dummy().key(&foo()).unwrap();
    let store = fx.cache.store("default").unwrap().clone();
    let now = fx.clock().now();
    assert!(store.claim(&key, "a-process-that-died", now, now + 60.0).await.unwrap());

    let reader = tokio::spawn({
        let job = fx.dummy();
        async move { job.lookup(&foo()).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reader.is_finished(), "the reader waits for the fill while its claim holds");
    assert_eq!(fx.env.fetches(), 0);
    fx.clock().advance(Duration::from_secs(61));
    let found = tokio::time::timeout(Duration::from_secs(5), reader).await.unwrap().unwrap();
    assert_eq!((found.status, found.value.unwrap().0.as_str()), (CacheStatus::Miss, "JOB-EXECUTED:foo"));
    assert_eq!(fx.env.fetches(), 1);
}

/// The holder's fetch fails: it releases its claim, and a waiter fetches
/// for itself (fail open) instead of waiting out the refresh timeout.
async fn a_failed_fill_lets_the_waiters_fetch(backend: Backend) {
    let a = fixture(backend).fetch_delay(Duration::from_millis(200)).build().await;
    let b = fixture(backend).prefix(&a.prefix).build().await;
    a.env.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let holder = tokio::spawn({
        let job = a.dummy();
        async move { job.lookup(&foo()).await }
    });
    // B reads once A holds the fill's claim (a new database pool may take
    // longer to connect than a fixed pause would allow).
    let (store, key) = (a.cache.store("default").unwrap().clone(), a.dummy().key(&foo()).unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !store.is_claimed(&key, a.clock().now()).await.unwrap() {
        assert!(std::time::Instant::now() < deadline, "A never took the claim");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let started = std::time::Instant::now();
    let found = b.dummy().lookup(&foo()).await.unwrap();
    assert!(holder.await.unwrap().is_err(), "the holder's own fetch failed");
    assert_eq!(found.value.unwrap().0, "JOB-EXECUTED:foo");
    assert_eq!(b.env.fetches(), 1, "the waiter fetched itself");
    assert!(started.elapsed() < Duration::from_secs(5), "without waiting out the refresh timeout");
}
