//! Exactly one refresh, for real: a reader whose read predates a landed
//! refresh cannot undo it (forced interleavings), and 1,000 stale episodes of
//! 64 concurrent readers with a live worker fetch exactly once each.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cacheback::queue::InProcessQueue;
use cacheback::{CacheStatus, Clock, JobHandle};
use common::*;
use futures::future::join_all;

on_every_store_mt!(
    a_late_stale_reader_does_not_undo_a_landed_refresh,
    a_late_missing_reader_does_not_blank_a_landed_refresh,
    a_reader_that_read_the_refreshed_item_leaves_it,
    every_stale_episode_fetches_exactly_once_with_a_live_worker,
);

/// Reader B reads the stale item and stops before its re-store; reader A
/// re-stores, queues, the worker refreshes; then B goes on. B must neither
/// re-store the old data over the fresh item nor queue a second refresh.
async fn a_late_stale_reader_does_not_undo_a_landed_refresh(backend: Backend) {
    let gate = Arc::new(Gate::default());
    let fx = fixture(backend).pausing(gate.clone()).build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    fx.clock().advance(Duration::from_secs(601));

    gate.arm();
    let late = tokio::spawn({
        let job = job.clone();
        async move { job.lookup(&foo()).await.unwrap() }
    });
    gate.reached().await; // B has read the stale item
    let a = job.lookup(&foo()).await.unwrap();
    assert_eq!((a.status, a.sync_fetch), (CacheStatus::Stale, Some(false)));
    assert_eq!(fx.queue.run_pending().await, 1, "A queued the refresh; the worker ran it");
    let fresh = job.raw_get(&foo()).await.unwrap().unwrap();
    gate.open();
    let b = late.await.unwrap();

    assert_eq!(b.status, CacheStatus::Stale, "B still answers with what it read");
    assert_eq!(fx.queue.pending(), 0, "B queued no second refresh");
    assert_eq!(job.raw_get(&foo()).await.unwrap().unwrap(), fresh, "the refreshed item stands");
    let next = job.lookup(&foo()).await.unwrap();
    assert_eq!((next.status, next.value.unwrap().1), (CacheStatus::Hit, fx.clock().now()));
    assert_eq!(fx.env.fetches(), 2, "the first fill and one refresh");
}

/// The same on the asynchronous MISS path: B read nothing and stops before
/// storing the empty placeholder; A stores it, the worker fills the item;
/// B must not blank it.
async fn a_late_missing_reader_does_not_blank_a_landed_refresh(backend: Backend) {
    let gate = Arc::new(Gate::default());
    let fx = fixture(backend).pausing(gate.clone()).build().await;
    let job = fx.empty();

    gate.arm();
    let late = tokio::spawn({
        let job = job.clone();
        async move { job.lookup(&foo()).await.unwrap() }
    });
    gate.reached().await;
    let a = job.lookup(&foo()).await.unwrap();
    assert_eq!((a.status, a.value), (CacheStatus::Miss, None));
    assert_eq!(fx.queue.run_pending().await, 1);
    gate.open();
    let b = late.await.unwrap();

    assert_eq!((b.status, b.value), (CacheStatus::Miss, None));
    assert_eq!(fx.queue.pending(), 0, "B queued no second refresh");
    let next = job.lookup(&foo()).await.unwrap();
    assert_eq!(next.status, CacheStatus::Hit);
    assert_eq!(next.value.expect("the filled item, not the placeholder").0, "JOB-EXECUTED:foo");
    assert_eq!(fx.env.fetches(), 1);
}

/// The compare-and-set compares with what the reader read, not with an
/// older item: a reader that read the re-stored item sees a HIT and writes
/// nothing; a reader that read the original while another re-stored it
/// loses the race and queues nothing.
async fn a_reader_that_read_the_refreshed_item_leaves_it(backend: Backend) {
    let gate = Arc::new(Gate::default());
    let fx = fixture(backend).pausing(gate.clone()).build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    fx.clock().advance(Duration::from_secs(601));

    gate.arm();
    let late = tokio::spawn({
        let job = job.clone();
        async move { job.lookup(&foo()).await.unwrap() }
    });
    gate.reached().await;
    // A re-stores for its refresh (not yet run); B read the original.
    job.lookup(&foo()).await.unwrap();
    let restored = job.raw_get(&foo()).await.unwrap().unwrap();
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Hit, "re-stored until the timeout");
    gate.open();
    late.await.unwrap();
    assert_eq!(fx.queue.pending(), 1, "one refresh for the episode");
    assert_eq!(job.raw_get(&foo()).await.unwrap().unwrap(), restored);
}

/// 1,000 stale episodes, each read by 64 concurrent readers while a live
/// in-process worker refreshes with an instant fetch: every episode fetches
/// exactly once, and the next read is a HIT on the refreshed item.
async fn every_stale_episode_fetches_exactly_once_with_a_live_worker(backend: Backend) {
    const EPISODES: usize = 1_000;
    const READERS: usize = 64;
    let queue = InProcessQueue::builder().concurrency(4).build();
    let fx = fixture(backend).queue(queue.clone()).build().await;
    let job: JobHandle<DummyJob> = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    let mut off = Vec::new();
    for episode in 0..EPISODES {
        fx.clock().advance(Duration::from_secs(601));
        let before = fx.env.fetches();
        let readers = (0..READERS).map(|_| {
            let job = job.clone();
            tokio::spawn(async move { job.lookup(&foo()).await.unwrap().status })
        });
        let statuses: Vec<_> = join_all(readers).await.into_iter().map(Result::unwrap).collect();
        queue.wait_idle().await;
        let fetches = fx.env.fetches() - before;
        if fetches != 1 {
            off.push((episode, fetches));
        }
        assert!(statuses.iter().all(|s| *s != CacheStatus::Miss), "episode {episode}: {statuses:?}");
        let after = job.lookup(&foo()).await.unwrap();
        assert_eq!(after.status, CacheStatus::Hit, "episode {episode}: the refresh landed");
        assert_eq!(after.value.unwrap().1, fx.clock().now(), "episode {episode}: and is what readers see");
    }
    assert!(off.is_empty(), "{} of {EPISODES} episodes did not fetch exactly once: {off:?}", off.len());
}
