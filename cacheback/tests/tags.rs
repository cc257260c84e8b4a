//! Tags: `Cacheback::invalidate_tag` makes every item carrying a tag stale,
//! in every engine sharing the store, with one write per store however many
//! items carry it; a tag-stale item takes the STALE path (exactly one
//! refresh); an invalidation during a fetch leaves its item stale, and an
//! item fetched after it is fresh. On the memory store and on Redis.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cacheback::function::FunctionJob;
use cacheback::queue::InProcessQueue;
use cacheback::store::CacheStore;
use cacheback::{CacheStatus, Cacheback, FetchError, Job, JobHandle, LocalCache, ManualClock};
use common::{Backend, Counting, at, manual_engine, store_on, yielding_on};

const LIFETIME: Duration = Duration::from_secs(600);

/// A user's profile, tagged `users` and `user:<id>`; its fetch returns the
/// id and an ordinal, and may wait at a gate.
#[derive(Clone, Default)]
struct Profile {
    fetches: Arc<AtomicU64>,
    gate: Option<Arc<FetchGate>>,
    threshold: Option<Duration>,
}

/// Stops the next fetch until the test lets it go.
#[derive(Default)]
struct FetchGate {
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl FetchGate {
    /// Returns once a fetch waits at the gate (failing the test past 10 s).
    async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.reached.notified())
            .await
            .expect("a fetch reached the gate");
    }
}

impl Job for Profile {
    type Args = (u32,);
    type Output = (u32, u64);
    async fn fetch(&self, (id,): &(u32,)) -> Result<(u32, u64), FetchError> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(gate) = &self.gate {
            gate.reached.notify_one();
            gate.release.notified().await;
        }
        Ok((*id, n))
    }
    fn lifetime(&self) -> Duration {
        LIFETIME
    }
    fn fetch_on_stale_threshold(&self) -> Option<Duration> {
        self.threshold
    }
    fn tags(&self, (id,): &(u32,)) -> Vec<String> {
        vec!["users".to_owned(), format!("user:{id}")]
    }
}

struct Setup {
    cache: Cacheback,
    profiles: JobHandle<Profile>,
    queue: InProcessQueue,
    clock: ManualClock,
}

async fn setup_with(backend: Backend, job: Profile) -> Setup {
    let clock = ManualClock::at(at(0));
    let (cache, queue) = manual_engine(store_on(backend, "tags").await, &clock, &job);
    Setup { profiles: cache.job(job), cache, queue, clock }
}

async fn setup(backend: Backend) -> Setup {
    setup_with(backend, Profile::default()).await
}

/// An invalidation makes exactly the items carrying the tag stale; their
/// refreshes make them fresh again, with new data.
async fn invalidating_a_tag_makes_its_items_stale(backend: Backend) {
    let Setup { cache, profiles, queue, clock } = setup(backend).await;
    assert_eq!(*profiles.get(&(1,)).await.unwrap().unwrap(), (1, 1));
    assert_eq!(*profiles.get(&(2,)).await.unwrap().unwrap(), (2, 2));
    clock.advance(Duration::from_secs(10));

    cache.invalidate_tag("user:1").await.unwrap();
    let one = profiles.lookup(&(1,)).await.unwrap();
    assert_eq!((one.status, one.sync_fetch, *one.value.unwrap()), (CacheStatus::Stale, Some(false), (1, 1)));
    assert_eq!(profiles.lookup(&(2,)).await.unwrap().status, CacheStatus::Hit, "another user's tag");
    assert_eq!(queue.pending(), 1);
    assert_eq!(profiles.lookup(&(1,)).await.unwrap().status, CacheStatus::Hit, "pending: no second refresh");
    assert_eq!(queue.pending(), 1);
    queue.run_pending().await;
    let one = profiles.lookup(&(1,)).await.unwrap();
    assert_eq!((one.status, *one.value.unwrap()), (CacheStatus::Hit, (1, 3)), "refreshed");

    cache.invalidate_tag("users").await.unwrap();
    assert_eq!(profiles.lookup(&(1,)).await.unwrap().status, CacheStatus::Stale);
    assert_eq!(profiles.lookup(&(2,)).await.unwrap().status, CacheStatus::Stale);
    assert_eq!(queue.pending(), 2);
    queue.run_pending().await;
    assert_eq!(profiles.lookup(&(2,)).await.unwrap().status, CacheStatus::Hit);
    // A tag nothing carries changes nothing.
    cache.invalidate_tag("posts").await.unwrap();
    assert_eq!(profiles.lookup(&(1,)).await.unwrap().status, CacheStatus::Hit);
}

/// Many readers of a tag-stale item at once (interleaved between their read
/// and their compare-and-set): every one is served the stale data, and one
/// refresh is queued.
async fn many_readers_of_a_tag_stale_item_queue_one_refresh(backend: Backend) {
    let clock = ManualClock::at(at(0));
    let job = Profile::default();
    let (cache, queue) = manual_engine(yielding_on(backend, "tags").await, &clock, &job);
    let profiles = cache.job(job);
    profiles.get(&(1,)).await.unwrap();
    cache.invalidate_tag("users").await.unwrap();
    let reads = (0..32).map(|_| profiles.lookup(&(1,)));
    for found in futures::future::join_all(reads).await {
        let found = found.unwrap();
        assert_ne!(found.status, CacheStatus::Miss);
        assert_eq!(*found.value.unwrap(), (1, 1), "the stale data, served");
    }
    assert_eq!(queue.pending(), 1, "exactly one refresh");
}

/// An invalidation while a fetch runs leaves what it stores stale (it
/// started from the old rows); a fetch that starts after it is fresh.
async fn an_invalidation_during_a_fetch_leaves_its_item_stale(backend: Backend) {
    let gate = Arc::new(FetchGate::default());
    let Setup { cache, profiles, queue, clock } =
        setup_with(backend, Profile { gate: Some(Arc::clone(&gate)), ..Profile::default() }).await;
    let reader = {
        let profiles = profiles.clone();
        tokio::spawn(async move { profiles.get(&(1,)).await.unwrap() })
    };
    gate.reached().await;
    cache.invalidate_tag("user:1").await.unwrap();
    gate.release.notify_one();
    assert_eq!(*reader.await.unwrap().unwrap(), (1, 1));
    clock.advance(Duration::from_secs(1));
    let found = profiles.lookup(&(1,)).await.unwrap();
    assert_eq!(found.status, CacheStatus::Stale, "fetched from before the invalidation");

    let worker = tokio::spawn(async move { queue.run_pending().await });
    gate.reached().await;
    gate.release.notify_one();
    worker.await.unwrap();
    let found = profiles.lookup(&(1,)).await.unwrap();
    assert_eq!((found.status, *found.value.unwrap()), (CacheStatus::Hit, (1, 2)), "fetched after it: fresh");
}

/// One write per store, however many items carry the tag; and a HIT on a
/// tagged item is one read of the store (the item with its tags' versions).
async fn an_invalidation_is_one_write_whatever_the_number_of_items(backend: Backend) {
    let clock = ManualClock::at(at(0));
    let job = Profile::default();
    let counted = Counting::new(store_on(backend, "tags").await);
    let (cache, _queue) = manual_engine(Arc::clone(&counted) as Arc<dyn CacheStore>, &clock, &job);
    let profiles = cache.job(job);
    let mut costs = Vec::new();
    for items in [1, 200] {
        for id in 0..items {
            profiles.get(&(id,)).await.unwrap();
        }
        let before = counted.counts().0;
        cache.invalidate_tag("users").await.unwrap();
        costs.push(counted.counts().0 - before);
    }
    assert_eq!(costs, [1, 1], "store calls of one invalidation, with 1 and 200 tagged items");

    profiles.refresh(&(7,)).await.unwrap();
    let before = counted.counts();
    assert_eq!(profiles.lookup(&(7,)).await.unwrap().status, CacheStatus::Hit);
    let after = counted.counts();
    let delta = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    assert_eq!(delta, (1, 0, 1), "a HIT: one get_many (the item and its tags' versions), nothing else");
}

/// Engines sharing a store share its tags: an invalidation through one makes
/// the item stale in the other, and the other's local copy is not consulted
/// past its own time to live; the invalidating engine drops its local copies.
async fn every_engine_on_the_store_sees_an_invalidation(backend: Backend) {
    let clock = ManualClock::at(at(0));
    let shared = store_on(backend, "tags").await;
    let job = Profile::default();
    let (a, _qa) = manual_engine(Arc::clone(&shared), &clock, &job);
    let (b, qb) = manual_engine(shared, &clock, &job);
    let (pa, pb) = (a.job(job.clone()), b.job(job));
    pa.get(&(1,)).await.unwrap();
    assert_eq!(pb.lookup(&(1,)).await.unwrap().status, CacheStatus::Hit);
    a.invalidate_tag("user:1").await.unwrap();
    assert_eq!(pb.lookup(&(1,)).await.unwrap().status, CacheStatus::Stale);
    assert_eq!(qb.pending(), 1);

    let local = LocalCache::new(Duration::from_secs(60));
    let job = Profile::default();
    let cache = Cacheback::builder()
        .store_arc("default", store_on(backend, "tags").await)
        .local_cache("default", local)
        .queue(InProcessQueue::builder().manual().build())
        .clock(clock.clone())
        .build()
        .unwrap();
    let profiles = cache.job(job);
    profiles.get(&(1,)).await.unwrap();
    assert_eq!(profiles.lookup(&(1,)).await.unwrap().status, CacheStatus::Hit);
    cache.invalidate_tag("users").await.unwrap();
    assert_eq!(
        profiles.lookup(&(1,)).await.unwrap().status,
        CacheStatus::Stale,
        "this process's local copy is dropped"
    );
}

/// A tag-stale item is stale since the invalidation: `fetch_on_stale_threshold`
/// counts from then (the item's own expiry is still ahead).
async fn a_tag_stale_item_is_stale_since_the_invalidation(backend: Backend) {
    let job = Profile { threshold: Some(LIFETIME + Duration::from_secs(10)), ..Profile::default() };
    let Setup { cache, profiles, clock, .. } = setup_with(backend, job).await;
    profiles.get(&(1,)).await.unwrap();
    profiles.get(&(2,)).await.unwrap();
    cache.invalidate_tag("users").await.unwrap();
    clock.advance(Duration::from_secs(5));
    let one = profiles.lookup(&(1,)).await.unwrap();
    assert_eq!((one.status, one.sync_fetch), (CacheStatus::Stale, Some(false)), "5 s stale: served");
    clock.advance(Duration::from_secs(15));
    let two = profiles.lookup(&(2,)).await.unwrap();
    assert_eq!((two.status, two.sync_fetch), (CacheStatus::Stale, Some(true)), "20 s stale: fetched");
    assert_eq!(*two.value.unwrap(), (2, 3));
}

/// Static tags (`with_tags`, the attribute's `tags = [..]`) tag every item
/// of a job whatever its arguments.
async fn static_tags_tag_every_item(backend: Backend) {
    async fn shout(word: String) -> Result<String, FetchError> {
        Ok(word.to_uppercase())
    }
    let clock = ManualClock::at(at(0));
    let cache = Cacheback::builder()
        .store_arc("default", store_on(backend, "tags").await)
        .queue(InProcessQueue::builder().manual().build())
        .clock(clock)
        .build()
        .unwrap();
    let shouts = cache.job(FunctionJob::new(shout).with_tags(["words"]));
    shouts.get(&("a".to_owned(),)).await.unwrap();
    shouts.get(&("b".to_owned(),)).await.unwrap();
    cache.invalidate_tag("words").await.unwrap();
    for word in ["a", "b"] {
        assert_eq!(shouts.lookup(&(word.to_owned(),)).await.unwrap().status, CacheStatus::Stale);
    }
}

on_every_store!(
    invalidating_a_tag_makes_its_items_stale,
    many_readers_of_a_tag_stale_item_queue_one_refresh,
    an_invalidation_during_a_fetch_leaves_its_item_stale,
    an_invalidation_is_one_write_whatever_the_number_of_items,
    every_engine_on_the_store_sees_an_invalidation,
    a_tag_stale_item_is_stale_since_the_invalidation,
    static_tags_tag_every_item,
);
