//! A coherent local copy (`LocalCache::keep_coherent`): another engine's
//! writes evict this one's copies at once, on one Redis, a Cluster and a
//! Sentinel group's master; a copy is neither kept nor served while Redis
//! cannot tell of writes.

mod common;

use std::time::{Duration, Instant};

use cacheback::settings::Settings;
use cacheback::store::RedisStore;
use cacheback::{Cacheback, LocalCache};
use common::*;
use serde_json::json;

/// Far longer than any test waits: a copy these tests see replaced was
/// evicted by Redis's push, not expired.
const LONG: Duration = Duration::from_secs(600);

/// How long a write may take to reach the other engine's copy in these
/// tests (the bench measures the real figure: a millisecond or so).
const SEEN_WITHIN: Duration = Duration::from_secs(5);

/// Reads `param` through `engine` until it answers `expected`.
async fn sees(engine: &Fixture, param: &(String,), expected: Option<&str>) -> Duration {
    let started = Instant::now();
    loop {
        let got = engine.dummy().get(param).await.unwrap();
        if got.as_deref().map(|(value, _)| value.as_str()) == expected {
            return started.elapsed();
        }
        assert!(started.elapsed() < SEEN_WITHIN, "still {got:?}, not {expected:?}, after {SEEN_WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn value(text: &str) -> (String, f64) {
    (text.to_owned(), 0.0)
}

on_every_redis!(another_engines_writes_evict_the_copy);

/// Two engines on one store, each with a coherent copy living ten minutes:
/// what one sets, invalidates or deletes the other sees at once.
async fn another_engines_writes_evict_the_copy(backend: Backend) {
    let a = fixture(backend).coherent_local(LONG).build().await;
    let b = fixture(backend).coherent_local(LONG).prefix(&a.prefix).build().await;
    let param = ("coherent".to_owned(),);
    a.dummy().set(&param, value("one")).await.unwrap();
    sees(&b, &param, Some("one")).await;
    assert!(b.cache.local_cache("default").unwrap().is_serving());

    a.dummy().set(&param, value("two")).await.unwrap();
    sees(&b, &param, Some("two")).await;
    a.dummy().delete(&param).await.unwrap();
    // A MISS: the fetch runs (the dummy job's value), on the other engine.
    sees(&b, &param, Some("JOB-EXECUTED:coherent")).await;
    b.dummy().set(&param, value("three")).await.unwrap();
    sees(&a, &param, Some("three")).await;
    a.cache.store("default").unwrap().clear().await.unwrap();
}

/// An engine on a Redis of the test's own, with a coherent copy.
async fn engine_on(port: u16, prefix: &str) -> (Cacheback, Env) {
    let store = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
        .key_prefix(prefix)
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let local = LocalCache::new(LONG);
    local.keep_coherent(&store).await.unwrap();
    let env = fixture(Backend::Memory).env();
    let builder =
        Cacheback::builder().store("default", store).local_cache("default", local).clock(env.clock.clone());
    (register_dummies(builder, &env).build().unwrap(), env)
}

/// Redis goes away: the copy is emptied and not served (a read goes to
/// the store, and without it to the job), then served again once Redis is
/// back and tracking, without anything from before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_is_not_served_while_tracking_is_down() {
    let mut redis = PrivateRedis::start_anywhere();
    let (cache, env) = engine_on(redis.port, "coherent:").await;
    let job = cache.job(DummyJob(env.clone()));
    let local = cache.local_cache("default").unwrap().clone();
    let param = ("down".to_owned(),);
    job.set(&param, value("copied")).await.unwrap();
    assert_eq!(job.get(&param).await.unwrap().unwrap().0, "copied");

    redis.stop();
    let started = Instant::now();
    while local.is_serving() {
        assert!(started.elapsed() < SEEN_WITHIN, "the copy is still served with Redis gone");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answered = job.get(&param).await.unwrap().unwrap();
    assert_eq!(answered.0, "JOB-EXECUTED:down", "served by the job, not the copy");

    let redis = PrivateRedis::start(redis.port);
    let started = Instant::now();
    while !local.is_serving() {
        assert!(started.elapsed() < SEEN_WITHIN, "the copy is not served again with Redis back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The restarted Redis is empty: a MISS, filled by the job, then copied.
    assert_eq!(job.get(&param).await.unwrap().unwrap().0, "JOB-EXECUTED:down");
    drop(redis);
}

/// A copy that cannot be made coherent (its Redis gone by then) says so,
/// and stays what it was: served, each copy living its time to live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_cannot_be_made_coherent_is_still_served() {
    let mut redis = PrivateRedis::start_anywhere();
    let store = RedisStore::builder(format!("redis://127.0.0.1:{}", redis.port))
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    redis.stop();
    let local = LocalCache::new(LONG);
    let err = local.keep_coherent(&store).await.unwrap_err().to_string();
    assert!(err.contains("cannot keep the local copy coherent"), "{err}");
    assert!(local.is_serving(), "the copy is served as one living its time to live");
}

/// `CLIENT KILL` of the tracking connections: the copy is emptied, tracking
/// comes back, and a write made around the cut is seen by the other engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_tracking_connection_comes_back_coherent() {
    let a = fixture(Backend::Redis).coherent_local(LONG).build().await;
    let b = fixture(Backend::Redis).coherent_local(LONG).prefix(&a.prefix).build().await;
    let param = ("killed".to_owned(),);
    a.dummy().set(&param, value("before")).await.unwrap();
    sees(&b, &param, Some("before")).await;

    let mut conn = ::redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
    let list: String = ::redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
    let ids: Vec<&str> = list
        .lines()
        .filter(|line| line.contains("name=cacheback-tracking "))
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .collect();
    assert!(ids.len() >= 2, "both engines track: {list}");
    for id in &ids {
        let _: () = ::redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query(&mut conn).unwrap();
    }
    a.dummy().set(&param, value("around the cut")).await.unwrap();
    sees(&b, &param, Some("around the cut")).await;
    let local = b.cache.local_cache("default").unwrap();
    let started = Instant::now();
    while !local.is_serving() {
        assert!(started.elapsed() < SEEN_WITHIN, "tracking did not come back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.dummy().set(&param, value("after")).await.unwrap();
    sees(&b, &param, Some("after")).await;
    a.cache.store("default").unwrap().clear().await.unwrap();
}

/// `coherent: true` under `local:` in the settings; refused in front of a
/// database store, naming the key.
#[tokio::test]
async fn settings_make_the_copy_coherent() {
    let settings = Settings::from_json(json!({
        "caches": { "default": {
            "backend": "redis", "url": redis_url(), "key_prefix": unique_prefix("settings"),
            "local": { "ttl_ms": 60_000, "coherent": true },
        } },
    }))
    .unwrap();
    let cache = settings.builder().await.unwrap().build().unwrap();
    assert!(cache.local_cache("default").unwrap().is_serving());

    #[cfg(feature = "sea-orm")]
    {
        let database = Settings::from_json(json!({
            "caches": { "default": {
                "backend": "database", "url": sqlite_url("coherent-settings"), "create_tables": true,
                "local": { "ttl_ms": 1000, "coherent": true },
            } },
        }))
        .unwrap();
        let err = database.builder().await.unwrap_err().to_string();
        assert!(
            err.contains("initializers.cacheback.caches.default.local.coherent") && err.contains("Redis"),
            "{err}"
        );
    }
}
