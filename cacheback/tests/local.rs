//! A `LocalCache` in front of a real Redis: fresh HITs are served from this
//! process's copy; stale and missing items, refresh claims and writes by other
//! processes still go through Redis.

mod common;

use std::time::Duration;

use cacheback::settings::Settings;
use cacheback::{CacheStatus, Cacheback, Error, LocalCache};
use common::*;
use futures::future::join_all;

const LONG: Duration = Duration::from_secs(60);

/// The copy answers a fresh HIT without asking Redis: the item deleted behind
/// the engine's back is still served, and Redis indeed no longer has it.
#[tokio::test]
async fn a_fresh_hit_is_served_from_the_local_copy() {
    let fx = fixture(Backend::Redis).local(LONG).build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    let key = job.key(&foo()).unwrap();
    fx.cache.store("default").unwrap().delete(&key).await.unwrap();
    assert!(!fx.contains("default", &key).await);

    let found = job.lookup(&foo()).await.unwrap();
    assert_eq!(found.status, CacheStatus::Hit);
    assert_eq!(found.value.unwrap().1, at(0));
    assert_eq!(fx.env.fetches(), 1, "no fetch: the HIT came from the copy");
}

/// Without a copy the same deletion is a MISS (the test above can fail).
#[tokio::test]
async fn without_a_local_cache_every_read_asks_redis() {
    let fx = fixture(Backend::Redis).build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    fx.cache.store("default").unwrap().delete(&job.key(&foo()).unwrap()).await.unwrap();
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Miss);
}

/// Another process's write is seen once the copy's time to live has passed.
#[tokio::test]
async fn another_processs_write_is_seen_after_the_time_to_live() {
    let ttl = Duration::from_millis(300);
    let a = fixture(Backend::Redis).local(ttl).build().await;
    let b = fixture(Backend::Redis).prefix(&a.prefix).build().await;
    a.dummy().get(&foo()).await.unwrap();

    b.dummy().set(&foo(), ("from b".to_owned(), 1.0)).await.unwrap();
    assert_eq!(
        a.dummy().get(&foo()).await.unwrap().unwrap().0,
        "JOB-EXECUTED:foo",
        "the copy, within its TTL"
    );

    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(a.dummy().get(&foo()).await.unwrap().unwrap().0, "from b");
}

/// This engine's own writes update its copy at once.
#[tokio::test]
async fn own_writes_update_the_copy() {
    let fx = fixture(Backend::Redis).local(LONG).build().await;
    let job = fx.dummy();
    job.get(&foo()).await.unwrap();

    job.set(&foo(), ("set".to_owned(), 1.0)).await.unwrap();
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "set");

    job.delete(&foo()).await.unwrap();
    let found = job.lookup(&foo()).await.unwrap();
    assert_eq!(found.status, CacheStatus::Miss, "deleted here, so not served from the copy");
    assert_eq!(fx.env.fetches(), 2);
}

/// A stale copy is never served: the read goes to Redis, which says STALE,
/// and the refresh it queues is the only one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_item_is_read_from_redis_and_refreshed_once() {
    let fx = fixture(Backend::Redis).local(LONG).build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    fx.clock().advance(Duration::from_secs(601));

    let tasks = (0..64).map(|_| {
        let job = job.clone();
        tokio::spawn(async move { job.lookup(&foo()).await.unwrap() })
    });
    let found: Vec<_> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert!(found.iter().any(|f| f.status == CacheStatus::Stale));
    assert!(found.iter().all(|f| f.value.as_ref().unwrap().1 == at(0)));
    assert_eq!(fx.queue.pending(), 1, "exactly one refresh queued");

    assert_eq!(fx.queue.run_pending().await, 1);
    let fresh = job.lookup(&foo()).await.unwrap();
    assert_eq!((fresh.status, fresh.value.unwrap().1), (CacheStatus::Hit, at(0) + 601.0));
}

/// Two processes, each with a copy, still queue exactly one refresh of a stale item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_with_local_copies_queue_exactly_one_refresh() {
    let a = fixture(Backend::Redis).local(LONG).build().await;
    let b = fixture(Backend::Redis).local(LONG).prefix(&a.prefix).build().await;
    a.dummy().refresh(&foo()).await.unwrap();
    b.dummy().get(&foo()).await.unwrap();
    a.clock().advance(Duration::from_secs(601));
    b.clock().set(a.cache.now());

    let lookups = |fx: &Fixture| {
        let job = fx.dummy();
        join_all((0..32).map(move |_| {
            let job = job.clone();
            tokio::spawn(async move { job.lookup(&foo()).await.unwrap() })
        }))
    };
    let (found_a, found_b) = tokio::join!(lookups(&a), lookups(&b));
    assert!(found_a.into_iter().chain(found_b).all(|f| f.unwrap().value.unwrap().1 == at(0)));
    assert_eq!(a.queue.pending() + b.queue.pending(), 1, "exactly one refresh between both processes");
}

/// The empty placeholder of a MISS is not copied: once another process fills
/// the item, it is served at once.
#[tokio::test]
async fn a_miss_placeholder_is_not_copied() {
    let a = fixture(Backend::Redis).local(LONG).build().await;
    let b = fixture(Backend::Redis).prefix(&a.prefix).build().await;
    assert!(a.empty().get(&foo()).await.unwrap().is_none());
    assert_eq!(a.queue.pending(), 1);

    b.empty().refresh(&foo()).await.unwrap();
    assert_eq!(a.empty().get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
}

#[tokio::test]
async fn a_local_cache_needs_a_store_under_its_alias() {
    let err = Cacheback::builder().local_cache("shared", LocalCache::new(LONG)).build().unwrap_err();
    assert!(matches!(err, Error::UnknownCacheAlias { ref alias, .. } if alias == "shared"), "{err}");
}

#[tokio::test]
async fn settings_put_a_local_cache_in_front_of_redis() {
    let settings = Settings::from_json(serde_json::json!({
        "caches": { "default": {
            "backend": "redis",
            "url": redis_url(),
            "key_prefix": unique_prefix("local-settings"),
            "local": { "ttl_ms": 250, "max_capacity": 100 },
        } },
    }))
    .unwrap();
    let cache = settings.builder().await.unwrap().build().unwrap();
    assert_eq!(cache.local_cache("default").unwrap().time_to_live(), Duration::from_millis(250));

    let off = Settings::from_json(serde_json::json!({
        "caches": { "default": { "backend": "redis", "url": redis_url(), "local": { "ttl_ms": 0 } } },
    }))
    .unwrap();
    assert!(off.builder().await.unwrap().build().unwrap().local_cache("default").is_none(), "0 turns it off");

    let err = Settings::from_json(serde_json::json!({
        "caches": { "default": { "backend": "redis", "url": redis_url(), "local": { "ttl": 250 } } },
    }))
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("initializers.cacheback.caches.default") && message.contains("`ttl_ms`"),
        "{message}"
    );
    let err = Settings::from_json(serde_json::json!({
        "caches": { "default": { "backend": "memory", "local": { "ttl_ms": 250 } } },
    }))
    .unwrap_err();
    assert!(err.to_string().contains("local"), "an in-process store takes no local cache: {err}");
}

#[tokio::test]
async fn a_local_copy_lifetime_over_an_hour_is_a_settings_error_not_a_panic() {
    for ttl_ms in [3_600_001, u64::MAX] {
        let settings = Settings::from_json(serde_json::json!({
            "caches": { "default": { "backend": "redis", "url": redis_url(), "local": { "ttl_ms": ttl_ms } } },
        }))
        .unwrap();
        let err = settings.builder().await.unwrap_err();
        assert!(
            matches!(&err, Error::Config { key, .. } if key == "initializers.cacheback.caches.default.local.ttl_ms"),
            "{err}"
        );
    }
    // Built by hand, a huge time-to-live is taken (a copy kept until evicted), not a panic.
    let local = LocalCache::new(Duration::MAX);
    assert_eq!(local.time_to_live(), Duration::MAX);
}

#[derive(Clone)]
struct TaggedDummyJob(Env);

impl cacheback::Job for TaggedDummyJob {
    type Args = (String,);
    type Output = (String, f64);
    async fn fetch(&self, (param,): &(String,)) -> Result<(String, f64), cacheback::FetchError> {
        self.0.fetch(param).await
    }
    fn tags(&self, _: &(String,)) -> Vec<String> {
        vec!["things".to_owned()]
    }
}

/// A tagged item's fresh HIT is served from the copy too: no read of the
/// item nor of its tag's version (invalidating the tag drops this process's
/// copies).
#[tokio::test]
async fn a_tagged_fresh_hit_is_served_from_the_local_copy() {
    let env = fixture(Backend::Memory).env();
    let counting = Counting::new(store_on(Backend::Redis, "local-tagged").await);
    let cache = Cacheback::builder()
        .store_arc("default", counting.clone())
        .local_cache("default", LocalCache::new(LONG))
        .clock(env.clock.clone())
        .build()
        .unwrap();
    let job = cache.job(TaggedDummyJob(env.clone()));
    job.refresh(&foo()).await.unwrap();
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Hit);
    let before = counting.counts();
    for _ in 0..10 {
        assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Hit);
    }
    assert_eq!(counting.counts(), before, "no store call for ten HITs");
    assert_eq!(env.fetches(), 1);
}

/// When a hot key's copy lapses, its concurrent readers in this process
/// share one store read (rather than a burst of identical reads each
/// `ttl_ms`), and all get the item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_of_a_lapsed_copy_share_one_store_read() {
    let env = fixture(Backend::Memory).env();
    let counting =
        Counting::with_read_delay(store_on(Backend::Redis, "lapsed").await, Duration::from_millis(100));
    let cache = Cacheback::builder()
        .store_arc("default", counting.clone())
        .local_cache("default", LocalCache::new(Duration::from_millis(20)))
        .clock(env.clock.clone())
        .build()
        .unwrap();
    let job = cache.job(DummyJob(env.clone()));
    job.refresh(&foo()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await; // the copy lapses
    let (_, gets_before, _) = counting.counts();
    let readers = (0..32).map(|_| {
        let job = job.clone();
        tokio::spawn(async move { job.lookup(&foo()).await.unwrap() })
    });
    for found in join_all(readers).await {
        let found = found.unwrap();
        assert_eq!((found.status, found.value.unwrap().0.as_str()), (CacheStatus::Hit, "JOB-EXECUTED:foo"));
    }
    let (_, gets, _) = counting.counts();
    assert_eq!(gets - gets_before, 1, "one store read for 32 readers");
}
