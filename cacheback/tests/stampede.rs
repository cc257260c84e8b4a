//! Beyond the seed: exactly one refresh per window, cold-miss singleflight,
//! and skipping refreshes of items that are already fresh.

mod common;

use std::time::Duration;

use cacheback::queue::RefreshOutcome;
use cacheback::{CacheStatus, Job};
use common::*;
use futures::future::join_all;

const READERS: usize = 64;

/// Runs `READERS` concurrent `lookup`s as separate tasks on the multi-thread runtime.
async fn concurrent_lookups<J>(
    job: &cacheback::JobHandle<J>,
    args: &J::Args,
    readers: usize,
) -> Vec<cacheback::Lookup<J::Output>>
where
    J: Job + Clone + 'static,
{
    let tasks = (0..readers).map(|_| {
        let job = job.clone();
        let args = args.clone();
        tokio::spawn(async move { job.lookup(&args).await.unwrap() })
    });
    join_all(tasks).await.into_iter().map(Result::unwrap).collect()
}

on_every_store_mt!(
    stale_reads_queue_exactly_one_refresh,
    async_misses_queue_exactly_one_refresh,
    cold_misses_fetch_once,
    a_refresh_is_requeued_after_the_refresh_timeout,
    a_queued_refresh_of_a_fresh_item_is_skipped,
    a_duplicate_refresh_is_skipped,
    stale_read_fails_over_when_the_queue_is_down,
);

/// 6a: 64 concurrent stale reads of one key queue exactly one refresh.
async fn stale_reads_queue_exactly_one_refresh(backend: Backend) {
    let fx = fixture(backend).yielding().build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    fx.clock().advance(Duration::from_secs(601));

    let found = concurrent_lookups(&job, &foo(), READERS).await;

    assert!(found.iter().all(|f| f.status == CacheStatus::Stale || f.status == CacheStatus::Hit));
    assert!(found.iter().all(|f| f.value.as_ref().unwrap().1 == at(0)), "every reader got the stale data");
    assert_eq!(fx.queue.pending(), 1, "exactly one refresh queued");
    assert_eq!(fx.env.fetches(), 1, "no reader fetched");
}

/// 6a, for misses refreshed asynchronously.
async fn async_misses_queue_exactly_one_refresh(backend: Backend) {
    let fx = fixture(backend).yielding().build().await;
    let job = fx.empty();
    let found = concurrent_lookups(&job, &foo(), READERS).await;
    assert!(found.iter().all(|f| f.value.is_none()));
    assert_eq!(fx.queue.pending(), 1);
    assert_eq!(fx.queue.run_pending().await, 1);
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
    assert_eq!(fx.env.fetches(), 1);
}

/// 6b: 64 concurrent cold misses with fetch_on_miss run `fetch` once. A
/// reader whose first read reaches the store after the fill has landed (a
/// database store serves 64 readers through a pool of fewer connections)
/// finds the item: a HIT, fetched by nobody else.
async fn cold_misses_fetch_once(backend: Backend) {
    let fx = fixture(backend).yielding().fetch_delay(Duration::from_millis(50)).build().await;
    let job = fx.dummy();
    let found = concurrent_lookups(&job, &foo(), READERS).await;
    assert_eq!(fx.env.fetches(), 1, "fetch ran once");
    assert_eq!(found.len(), READERS);
    for f in &found {
        assert_eq!(f.value.as_ref().unwrap().0, "JOB-EXECUTED:foo");
        assert!(
            matches!((f.status, f.sync_fetch), (CacheStatus::Miss, Some(true)) | (CacheStatus::Hit, None)),
            "{:?} {:?}",
            f.status,
            f.sync_fetch
        );
    }
    assert!(found.iter().any(|f| f.status == CacheStatus::Miss), "the readers found it missing");
    assert_eq!(fx.queue.pending(), 0);
}

/// The seed's third threshold: a refresh that never lands (its worker died)
/// is queued again once the refresh timeout has passed, not before.
async fn a_refresh_is_requeued_after_the_refresh_timeout(backend: Backend) {
    let fx = fixture(backend).yielding().build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    fx.clock().advance(Duration::from_secs(601));
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Stale);
    assert_eq!(fx.queue.pending(), 1);

    fx.clock().advance(Duration::from_secs(59));
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Hit, "limbo guard");
    assert_eq!(fx.queue.pending(), 1);

    fx.clock().advance(Duration::from_secs(2));
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Stale);
    assert_eq!(fx.queue.pending(), 2, "the timeout passed: a new refresh is queued");
}

/// 6c: a refresh whose key is already fresh when the worker picks it up is skipped.
async fn a_queued_refresh_of_a_fresh_item_is_skipped(backend: Backend) {
    let fx = fixture(backend).yielding().build().await;
    let job = fx.empty();
    assert!(job.get(&foo()).await.unwrap().is_none());
    let payload = fx.queue.pending_payloads().remove(0);
    // Someone else refreshes first (a synchronous refresh, another worker).
    job.refresh(&foo()).await.unwrap();
    assert_eq!(fx.env.fetches(), 1);
    assert_eq!(fx.cache.perform(&payload).await.unwrap(), RefreshOutcome::SkippedFresh);
    assert_eq!(fx.env.fetches(), 1, "the queued refresh did not fetch");
}

/// 6c: the same payload delivered twice (a queue retry) fetches once.
async fn a_duplicate_refresh_is_skipped(backend: Backend) {
    let fx = fixture(backend).yielding().build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    fx.clock().advance(Duration::from_secs(601));
    job.get(&foo()).await.unwrap();
    let payload = fx.queue.pending_payloads().remove(0);
    assert_eq!(fx.cache.perform(&payload).await.unwrap(), RefreshOutcome::Refreshed);
    assert_eq!(fx.cache.perform(&payload).await.unwrap(), RefreshOutcome::SkippedFresh);
    assert_eq!(fx.env.fetches(), 2);
    // Once the item goes stale again, the payload runs again.
    fx.clock().advance(Duration::from_secs(601));
    assert_eq!(fx.cache.perform(&payload).await.unwrap(), RefreshOutcome::Refreshed);
}

/// A stale read with the queue down refreshes in the request, returns the
/// stale data, and the next read is a fresh HIT.
async fn stale_read_fails_over_when_the_queue_is_down(backend: Backend) {
    let fx = fixture(backend).yielding().build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    fx.clock().advance(Duration::from_secs(601));
    fx.queue.close();
    let found = job.lookup(&foo()).await.unwrap();
    assert_eq!(found.status, CacheStatus::Stale);
    assert_eq!(found.value.unwrap().1, at(0));
    let next = job.lookup(&foo()).await.unwrap();
    assert_eq!(next.status, CacheStatus::Hit);
    assert_eq!(next.value.unwrap().1, at(0) + 601.0);
}

/// 6a across processes: two independent engines sharing one Redis (each with
/// its own connections, queue and clock) queue exactly one refresh between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_sharing_redis_queue_exactly_one_refresh() {
    let a = fixture(Backend::Redis).build().await;
    let b = fixture(Backend::Redis).prefix(&a.prefix).build().await;
    a.dummy().refresh(&foo()).await.unwrap();
    a.clock().advance(Duration::from_secs(601));
    b.clock().set(a.cache.now());

    let (job_a, job_b) = (a.dummy(), b.dummy());
    let args = foo();
    let (found_a, found_b) = tokio::join!(
        concurrent_lookups(&job_a, &args, READERS / 2),
        concurrent_lookups(&job_b, &args, READERS / 2)
    );
    assert_eq!(found_a.len() + found_b.len(), READERS);
    assert!(found_a.iter().chain(&found_b).all(|f| f.value.as_ref().unwrap().1 == at(0)));
    assert_eq!(a.queue.pending() + b.queue.pending(), 1, "exactly one refresh between both processes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_sharing_redis_queue_one_refresh_for_async_misses() {
    let a = fixture(Backend::Redis).build().await;
    let b = fixture(Backend::Redis).prefix(&a.prefix).build().await;
    let (job_a, job_b) = (a.empty(), b.empty());
    let args = foo();
    let (found_a, found_b) = tokio::join!(
        concurrent_lookups(&job_a, &args, READERS / 2),
        concurrent_lookups(&job_b, &args, READERS / 2)
    );
    assert!(found_a.iter().chain(&found_b).all(|f| f.value.is_none()));
    assert_eq!(a.queue.pending() + b.queue.pending(), 1);
}

/// The in-process queue (not manual) runs refreshes in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_queue_refreshes_in_the_background() {
    let queue = cacheback::queue::InProcessQueue::new();
    let fx = fixture(Backend::Memory).queue(queue.clone()).build().await;
    let job = fx.stale();
    job.get(&foo()).await.unwrap();
    fx.clock().advance(Duration::from_secs(601));
    let stale = job.lookup(&foo()).await.unwrap();
    assert_eq!(stale.status, CacheStatus::Stale);
    queue.wait_idle().await;
    assert_eq!(queue.enqueued(), 1);
    let fresh = job.lookup(&foo()).await.unwrap();
    assert_eq!(fresh.status, CacheStatus::Hit);
    assert_eq!(fresh.value.unwrap().1, at(0) + 601.0);
}
