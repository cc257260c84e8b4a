//! An item that does not decode as its job's output (a deploy changed the
//! output type, another program wrote the key) is, for every public
//! operation, what the docs say: a MISS, logged once, replaced through the
//! compare-and-set of the next lookup or by any write.

mod common;

use cacheback::queue::RefreshOutcome;
use cacheback::{CacheStatus, Dispatch};
use common::*;

on_every_store!(
    lookup_fetches_logs_once_and_replaces,
    lookup_without_fetch_on_miss_claims_it_and_queues_one_refresh,
    raw_get_is_none,
    invalidate_is_as_on_a_miss,
    delete_removes_it,
    set_replaces_it,
    refresh_replaces_it,
    async_refresh_queues,
    a_queued_refresh_runs,
);

const WARNING: &str = "Undecodable cached item treated as a MISS";

/// The tests take turns: they all reach the warning's callsite, and
/// `tracing`'s per-callsite interest, computed when one test thread first
/// reaches it, can otherwise hide it from another thread's captured logs.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Stores, under the dummy job's key for `foo`, an item of another output
/// type (a `String`, where the dummy job caches a `(String, f64)`).
async fn plant(fx: &Fixture) -> String {
    let key = fx.dummy().key(&foo()).unwrap();
    let other = fx.cache.job(FailJob);
    other.store_raw(&key, fx.cache.now() + 600.0, Some("a string, not a tuple".into())).await.unwrap();
    assert!(fx.contains("default", &key).await);
    key
}

async fn lookup_fetches_logs_once_and_replaces(backend: Backend) {
    let _turn = TURN.lock().await;
    let fx = fixture(backend).build().await;
    plant(&fx).await;
    let (logs, _guard) = Logs::capture();
    let found = fx.dummy().lookup(&foo()).await.unwrap();
    assert_eq!((found.status, found.sync_fetch), (CacheStatus::Miss, Some(true)));
    assert_eq!(found.value.unwrap().0, "JOB-EXECUTED:foo");
    assert_eq!(logs.text().matches(WARNING).count(), 1, "{}", logs.text());
    assert_eq!(fx.env.fetches(), 1);
    assert_eq!(fx.dummy().get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
    assert_eq!(fx.env.fetches(), 1, "the fetched item replaced it: a HIT");
}

async fn lookup_without_fetch_on_miss_claims_it_and_queues_one_refresh(backend: Backend) {
    let _turn = TURN.lock().await;
    let fx = fixture(backend).build().await;
    let key = fx.empty().key(&foo()).unwrap();
    fx.cache.job(FailJob).store_raw(&key, fx.cache.now() + 600.0, Some("x".into())).await.unwrap();
    let job = fx.empty();
    let first = job.lookup(&foo()).await.unwrap();
    assert_eq!((first.status, first.sync_fetch, first.value), (CacheStatus::Miss, Some(false), None));
    // The placeholder replaced it through the compare-and-set: a second
    // reader sees the placeholder (a HIT) and queues nothing.
    let second = job.lookup(&foo()).await.unwrap();
    assert_eq!((second.status, second.value), (CacheStatus::Hit, None));
    assert_eq!(fx.queue.pending(), 1);
    assert_eq!(fx.queue.run_pending().await, 1);
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
}

async fn raw_get_is_none(backend: Backend) {
    let _turn = TURN.lock().await;
    let fx = fixture(backend).build().await;
    plant(&fx).await;
    assert!(fx.dummy().raw_get(&foo()).await.unwrap().is_none());
}

async fn invalidate_is_as_on_a_miss(backend: Backend) {
    let _turn = TURN.lock().await;
    let fx = fixture(backend).build().await;
    plant(&fx).await;
    fx.dummy().invalidate(&foo()).await.unwrap();
    assert_eq!(fx.queue.pending(), 0, "nothing is cached: nothing to invalidate");
    assert_eq!(fx.env.fetches(), 0);
    assert_eq!(fx.dummy().lookup(&foo()).await.unwrap().status, CacheStatus::Miss);
}

async fn delete_removes_it(backend: Backend) {
    let _turn = TURN.lock().await;
    let fx = fixture(backend).build().await;
    let key = plant(&fx).await;
    fx.dummy().delete(&foo()).await.unwrap();
    assert!(!fx.contains("default", &key).await);
}

async fn set_replaces_it(backend: Backend) {
    let _turn = TURN.lock().await;
    let fx = fixture(backend).build().await;
    plant(&fx).await;
    fx.dummy().set(&foo(), ("set".into(), 1.0)).await.unwrap();
    let found = fx.dummy().lookup(&foo()).await.unwrap();
    assert_eq!((found.status, found.value.unwrap().0.as_str()), (CacheStatus::Hit, "set"));
}

async fn refresh_replaces_it(backend: Backend) {
    let _turn = TURN.lock().await;
    let fx = fixture(backend).build().await;
    plant(&fx).await;
    assert_eq!(fx.dummy().refresh(&foo()).await.unwrap().0, "JOB-EXECUTED:foo");
    assert_eq!(fx.dummy().raw_get(&foo()).await.unwrap().unwrap().data.unwrap().0, "JOB-EXECUTED:foo");
}

async fn async_refresh_queues(backend: Backend) {
    let _turn = TURN.lock().await;
    let fx = fixture(backend).build().await;
    plant(&fx).await;
    assert_eq!(fx.dummy().async_refresh(&foo()).await.unwrap(), Dispatch::Enqueued);
    assert_eq!(fx.queue.pending(), 1);
}

/// A worker's refresh is not skipped as fresh: what is stored is not this
/// job's item.
async fn a_queued_refresh_runs(backend: Backend) {
    let _turn = TURN.lock().await;
    let fx = fixture(backend).build().await;
    fx.dummy().async_refresh(&foo()).await.unwrap();
    let payload = fx.queue.pending_payloads().remove(0);
    plant(&fx).await;
    assert_eq!(fx.cache.perform(&payload).await.unwrap(), RefreshOutcome::Refreshed);
    assert_eq!(fx.env.fetches(), 1);
    assert_eq!(fx.dummy().raw_get(&foo()).await.unwrap().unwrap().data.unwrap().0, "JOB-EXECUTED:foo");
}
