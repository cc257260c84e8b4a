//! Bulk reads: `get_many` and `lookup_many` answer in the order asked, each
//! as `lookup` would; read every key in one store call; fetch synchronous
//! misses in one `fetch_many`, each under its fill claim; and keep exactly
//! one refresh per stale key when they race `get`. On the memory store and
//! on Redis.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cacheback::queue::InProcessQueue;
use cacheback::store::CacheStore;
use cacheback::{CacheStatus, Clock, FetchError, Job, JobHandle, ManualClock};
use common::{Backend, Counting, at, manual_engine, store_on, yielding_on};

const LIFETIME: Duration = Duration::from_secs(600);

/// Squares, fetched in batches it records; `fail` makes every fetch fail.
#[derive(Clone, Default)]
struct Squares {
    batches: Arc<Mutex<Vec<Vec<u64>>>>,
    fail: Arc<std::sync::atomic::AtomicBool>,
    lazy: bool,
}

impl Squares {
    fn batches(&self) -> Vec<Vec<u64>> {
        self.batches.lock().unwrap().clone()
    }
}

impl Job for Squares {
    type Args = (u64,);
    type Output = u64;
    async fn fetch(&self, (n,): &(u64,)) -> Result<u64, FetchError> {
        Ok(self.fetch_many(&[(*n,)]).await?.remove(0))
    }
    async fn fetch_many(&self, args: &[(u64,)]) -> Result<Vec<u64>, FetchError> {
        self.batches.lock().unwrap().push(args.iter().map(|(n,)| *n).collect());
        tokio::task::yield_now().await;
        if self.fail.load(Ordering::SeqCst) {
            return Err("SQUARES-FAILED".into());
        }
        Ok(args.iter().map(|(n,)| n * n).collect())
    }
    fn lifetime(&self) -> Duration {
        LIFETIME
    }
    fn fetch_on_miss(&self) -> bool {
        !self.lazy
    }
}

struct Setup {
    squares: JobHandle<Squares>,
    queue: InProcessQueue,
    clock: ManualClock,
    reads: Arc<Counting>,
}

async fn setup_with(backend: Backend, job: Squares) -> Setup {
    let clock = ManualClock::at(at(0));
    let reads = Counting::new(store_on(backend, "many").await);
    let (cache, queue) = manual_engine(Arc::clone(&reads) as Arc<dyn CacheStore>, &clock, &job);
    Setup { squares: cache.job(job), queue, clock, reads }
}

fn values(found: &[Option<Arc<u64>>]) -> Vec<Option<u64>> {
    found.iter().map(|v| v.as_deref().copied()).collect()
}

/// HIT, STALE and MISS keys in one call, one of them asked twice: answered
/// in order, each as `lookup` would, the misses fetched in one batch.
async fn each_answer_is_what_lookup_would_answer(backend: Backend) {
    let Setup { squares, queue, clock, .. } = setup_with(backend, Squares::default()).await;
    squares.get(&(2,)).await.unwrap(); // will be STALE
    clock.advance(LIFETIME + Duration::from_secs(1));
    squares.get(&(3,)).await.unwrap(); // fresh: a HIT
    let before = squares.job().batches().len();

    let found = squares.lookup_many(&[(3,), (2,), (4,), (5,), (4,)]).await.unwrap();
    let statuses: Vec<_> = found.iter().map(|f| (f.status, f.sync_fetch)).collect();
    assert_eq!(
        statuses,
        [
            (CacheStatus::Hit, None),
            (CacheStatus::Stale, Some(false)),
            (CacheStatus::Miss, Some(true)),
            (CacheStatus::Miss, Some(true)),
            (CacheStatus::Miss, Some(true)),
        ]
    );
    let got: Vec<_> = found.iter().map(|f| *f.value.as_deref().unwrap()).collect();
    assert_eq!(got, [9, 4, 16, 25, 16]);
    assert_eq!(squares.job().batches()[before..], [vec![4, 5]], "the misses in one fetch_many, each once");
    assert_eq!(queue.pending(), 1, "the stale key's refresh, queued");
    let again = squares.get_many(&[(4,), (5,)]).await.unwrap();
    assert_eq!(values(&again), [Some(16), Some(25)]);
    assert_eq!(squares.lookup(&(5,)).await.unwrap().status, CacheStatus::Hit, "the misses were stored");
    assert!(squares.get_many(&[]).await.unwrap().is_empty());
}

/// Every key in one read of the store (one `MGET` on Redis), none per key;
/// an empty call reads nothing.
async fn every_key_in_one_read(backend: Backend) {
    let Setup { squares, reads, .. } = setup_with(backend, Squares::default()).await;
    let args: Vec<(u64,)> = (0..100).map(|n| (n,)).collect();
    for arg in &args {
        squares.get(arg).await.unwrap();
    }
    let before = reads.counts();
    let found = squares.lookup_many(&args).await.unwrap();
    assert!(found.iter().all(|f| f.status == CacheStatus::Hit));
    assert_eq!(found[99].value.as_deref(), Some(&9801));
    let after = reads.counts();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1, 0, 1),
        "one read for all, none per key"
    );
    squares.lookup_many(&[]).await.unwrap();
    assert_eq!(reads.counts(), after, "an empty call calls the store for nothing");
}

/// Misses of a job that does not fetch on a miss: empty answers, one refresh
/// queued per key, none twice.
async fn lazy_misses_queue_one_refresh_each(backend: Backend) {
    let Setup { squares, queue, .. } =
        setup_with(backend, Squares { lazy: true, ..Squares::default() }).await;
    let found = squares.get_many(&[(1,), (2,), (1,)]).await.unwrap();
    assert_eq!(values(&found), [None, None, None]);
    assert_eq!(queue.pending(), 2);
    assert_eq!(values(&squares.get_many(&[(1,), (2,)]).await.unwrap()), [None, None]);
    assert_eq!(queue.pending(), 2, "pending: no second refresh");
    queue.run_pending().await;
    assert_eq!(values(&squares.get_many(&[(2,), (1,)]).await.unwrap()), [Some(4), Some(1)]);
}

/// A failed batch fetch fails the call, and leaves no claim behind: the next
/// read fetches at once.
async fn a_failed_fetch_fails_the_call_and_frees_the_keys(backend: Backend) {
    let Setup { squares, .. } = setup_with(backend, Squares::default()).await;
    squares.job().fail.store(true, Ordering::SeqCst);
    let err = squares.get_many(&[(1,), (2,)]).await.unwrap_err();
    assert!(err.to_string().contains("SQUARES-FAILED"), "{err}");
    squares.job().fail.store(false, Ordering::SeqCst);
    let found = tokio::time::timeout(Duration::from_secs(2), squares.get_many(&[(1,), (2,)])).await;
    assert_eq!(values(&found.expect("no claim to wait out").unwrap()), [Some(1), Some(4)]);
}

/// A key another process is filling (it holds the fill claim) is waited for,
/// not fetched again; the call's other misses are fetched meanwhile.
async fn a_key_another_process_fills_is_waited_for(backend: Backend) {
    let Setup { squares, reads, clock, .. } = setup_with(backend, Squares::default()).await;
    let key = squares.key(&(7,)).unwrap();
    let until = clock.now() + 60.0;
    assert!(reads.store.claim(&key, "other-process", clock.now(), until).await.unwrap());
    let reader = {
        let squares = squares.clone();
        tokio::spawn(async move { squares.get_many(&[(6,), (7,)]).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(squares.job().batches(), [vec![6]], "7 is the other process's to fetch");
    // The other process stores its result, then lets go of the claim.
    squares.set(&(7,), 700).await.unwrap();
    reads.store.release(&key, "other-process").await.unwrap();
    assert_eq!(values(&reader.await.unwrap()), [Some(36), Some(700)]);
    assert_eq!(squares.job().batches(), [vec![6]]);
}

/// `get` and `get_many` racing on overlapping stale keys, interleaved between
/// their reads and their compare-and-sets: exactly one refresh per key.
async fn get_and_get_many_race_for_one_refresh_per_key(backend: Backend) {
    let clock = ManualClock::at(at(0));
    let job = Squares::default();
    let (cache, queue) = manual_engine(yielding_on(backend, "many").await, &clock, &job);
    let squares = cache.job(job);
    let keys: Vec<(u64,)> = (0..8).map(|n| (n,)).collect();
    squares.get_many(&keys).await.unwrap();
    clock.advance(LIFETIME + Duration::from_secs(1));
    for _round in 0..5 {
        let many = (0..4).map(|_| {
            let (squares, keys) = (squares.clone(), keys.clone());
            tokio::spawn(async move { squares.get_many(&keys).await.unwrap() })
        });
        let singles = (0..16).map(|n| {
            let squares = squares.clone();
            tokio::spawn(async move { vec![squares.get(&(n % 8,)).await.unwrap()] })
        });
        for reader in many.chain(singles).collect::<Vec<_>>() {
            assert!(reader.await.unwrap().iter().all(Option::is_some), "stale data served");
        }
        assert_eq!(queue.pending(), 8, "one refresh per stale key");
        queue.run_pending().await;
        clock.advance(LIFETIME + Duration::from_secs(1));
    }
}

on_every_store!(
    each_answer_is_what_lookup_would_answer,
    every_key_in_one_read,
    lazy_misses_queue_one_refresh_each,
    a_failed_fetch_fails_the_call_and_frees_the_keys,
    a_key_another_process_fills_is_waited_for,
);

mod racing {
    use super::*;
    on_every_store_mt!(get_and_get_many_race_for_one_refresh_per_key);
}
