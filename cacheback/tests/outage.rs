//! A Redis that goes away and comes back: reads never fail, and the cache
//! works again without a restart. Runs a private `redis-server` that the test
//! kills, so the shared one is untouched.

mod common;

use std::time::{Duration, Instant};

use cacheback::queue::InProcessQueue;
use cacheback::store::RedisStore;
use cacheback::{CacheStatus, Cacheback};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_a_redis_outage_and_recover_without_restart() {
    let mut redis = PrivateRedis::start_anywhere();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let store = RedisStore::builder(&url).timeout(Duration::from_millis(300)).connect().await.unwrap();
    let queue = InProcessQueue::builder().manual().build();
    let env = fixture(Backend::Memory).env();
    let cache = register_dummies(Cacheback::builder().store("default", store).queue(queue.clone()), &env)
        .clock(env.clock.clone())
        .build()
        .unwrap();
    let job = cache.job(DummyJob(env.clone()));
    let empty = cache.job(EmptyDummyJob(env.clone()));

    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Miss);
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Hit);
    assert_eq!(env.fetches(), 1);

    redis.stop();
    let (logs, _guard) = Logs::capture();
    let found = job.lookup(&foo()).await.expect("an outage is not an error page");
    assert_eq!((found.status, found.sync_fetch), (CacheStatus::Miss, Some(true)));
    assert_eq!(found.value.unwrap().0, "JOB-EXECUTED:foo");
    assert_eq!(env.fetches(), 2, "served by a direct fetch");
    assert!(logs.text().contains("Cache read failed"), "{}", logs.text());
    // A job that does not fetch on a miss answers empty, without blocking.
    assert_eq!(empty.get(&foo()).await.unwrap(), None);
    assert_eq!(queue.pending(), 0, "nothing queued for a store that cannot take the result");

    let _redis = PrivateRedis::start(redis.port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        job.lookup(&foo()).await.unwrap();
        if job.lookup(&foo()).await.unwrap().status == CacheStatus::Hit {
            break;
        }
        assert!(Instant::now() < deadline, "the store did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The store and the job's source down at once (an app whose database is
/// both): a read serves the local copy's last item, stale, rather than an
/// error; without a copy the same read is the fetch's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_and_the_source_down_the_last_local_copy_is_served() {
    let mut redis = PrivateRedis::start_anywhere();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let env = fixture(Backend::Memory).env();
    let engine = |local: bool| {
        let (url, env) = (url.clone(), env.clone());
        async move {
            let store =
                RedisStore::builder(&url).timeout(Duration::from_millis(300)).connect().await.unwrap();
            let mut builder = Cacheback::builder()
                .store("default", store)
                .queue(InProcessQueue::builder().manual().build());
            if local {
                builder =
                    builder.local_cache("default", cacheback::LocalCache::new(Duration::from_millis(100)));
            }
            register_dummies(builder, &env).clock(env.clock.clone()).build().unwrap()
        }
    };
    let (with_copy, without) = (engine(true).await, engine(false).await);
    let (job, bare) = (with_copy.job(DummyJob(env.clone())), without.job(DummyJob(env.clone())));
    let empty = with_copy.job(EmptyDummyJob(env.clone()));
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Miss);
    assert_eq!(bare.lookup(&foo()).await.unwrap().status, CacheStatus::Hit);
    empty.lookup(&foo()).await.unwrap();
    empty.refresh(&foo()).await.unwrap();

    redis.stop();
    env.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await; // past the copy's time to live
    let found = job.lookup(&foo()).await.expect("the last copy, not an error");
    assert_eq!((found.status, found.refresh_failed), (CacheStatus::Stale, true));
    assert_eq!(found.value.unwrap().0, "JOB-EXECUTED:foo");
    // A job that does not fetch on a miss serves its copy too, not its empty value.
    assert!(empty.get(&foo()).await.unwrap().is_some());
    assert!(bare.lookup(&foo()).await.is_err(), "without a copy, the fetch's error");
}
