//! What only a Redis Cluster asks of the store: `clear` and `item_count` on
//! every primary, the settings' `cluster:`, and the Sidekiq queue's refusal.
//! Everything the store does elsewhere runs on the Cluster through
//! `on_every_store!` (the `cluster::` tests), two engines included.

mod common;

use std::time::Duration;

use cacheback::Clock;
use cacheback::settings::Settings;
use cacheback::store::{CacheStore, StoredValue};
use common::*;
use serde_json::json;

/// The failover test changes the Cluster's topology: the others of this
/// file run before or after it, not during.
static TOPOLOGY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Keys spread over every slot range: `clear` removes this store's items
/// and claims on every primary (only this prefix's), and `item_count`
/// counts them all.
#[tokio::test]
async fn clear_and_item_count_visit_every_primary() {
    let _topology = TOPOLOGY.read().await;
    let (prefix, other) = (unique_prefix("cluster"), unique_prefix("cluster-other"));
    let (store, neighbour) = (cluster_store(&prefix).await, cluster_store(&other).await);
    let value = || StoredValue::Encoded("[1.0]".into());
    for i in 0..60 {
        store.set(&format!("k{i}"), value(), Duration::from_secs(60)).await.unwrap();
    }
    assert!(store.claim("k0", "token", 1.0, 100.0).await.unwrap());
    neighbour.set("k0", value(), Duration::from_secs(60)).await.unwrap();
    let mut primaries = std::collections::BTreeSet::new();
    for node in redis_cluster_nodes() {
        let info: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut redis::Client::open(node.as_str()).unwrap().get_connection().unwrap())
            .unwrap();
        primaries.extend(
            info.lines().filter(|l| l.contains("master")).map(|l| l.split(' ').next().unwrap().to_owned()),
        );
    }
    assert!(primaries.len() >= 3, "a cluster of three primaries: {primaries:?}");

    assert_eq!(store.item_count().await.unwrap(), Some(60));
    store.clear().await.unwrap();
    assert_eq!(store.item_count().await.unwrap(), Some(0));
    assert!(store.get("k7").await.unwrap().is_none());
    assert!(!store.is_claimed("k0", 2.0).await.unwrap(), "its claims went too");
    assert!(neighbour.get("k0").await.unwrap().is_some(), "another prefix's items stay");
    neighbour.clear().await.unwrap();
}

/// `cluster:` in the settings, as a comma-separated string (what an
/// environment variable holds); `url` and `cluster` together are refused.
#[tokio::test]
async fn settings_put_a_store_on_the_cluster() {
    let _topology = TOPOLOGY.read().await;
    let nodes = redis_cluster_nodes().join(",");
    let settings = Settings::from_json(json!({
        "caches": { "default": { "backend": "redis", "cluster": nodes, "key_prefix": unique_prefix("settings") } },
    }))
    .unwrap();
    let cache = settings.builder().await.unwrap().build().unwrap();
    let store = cache.store("default").unwrap();
    store.set("k", StoredValue::Encoded("[1.0]".into()), Duration::from_secs(60)).await.unwrap();
    assert!(format!("{store:?}").contains("cluster"), "{store:?}");
    store.clear().await.unwrap();

    let both = Settings::from_json(json!({
        "caches": { "default": { "backend": "redis", "url": redis_url(), "cluster": nodes } },
    }))
    .unwrap();
    let err = both.builder().await.unwrap_err().to_string();
    assert!(
        err.contains("initializers.cacheback.caches.default.cluster") && err.contains("give one of"),
        "{err}"
    );
    let neither = Settings::from_json(json!({ "caches": { "default": { "backend": "redis" } } })).unwrap();
    let err = neither.builder().await.unwrap_err().to_string();
    assert!(err.contains("initializers.cacheback.caches.default.url"), "{err}");
}

/// The Sidekiq queue refuses a Cluster, saying why: asked for in the
/// settings, or pointed at one of its nodes.
#[tokio::test]
async fn the_sidekiq_queue_refuses_a_cluster() {
    let _topology = TOPOLOGY.read().await;
    let nodes = redis_cluster_nodes();
    let asked = Settings::from_json(json!({
        "task_queue": "sidekiq",
        "sidekiq": { "url": redis_url(), "cluster": nodes.join(",") },
    }))
    .unwrap();
    let err = asked.builder().await.unwrap_err().to_string();
    assert!(
        err.contains("initializers.cacheback.sidekiq.cluster") && err.contains("Sidekiq's own rule"),
        "{err}"
    );

    let pointed =
        Settings::from_json(json!({ "task_queue": "sidekiq", "sidekiq": { "url": nodes[0] } })).unwrap();
    let err = pointed.builder().await.unwrap_err().to_string();
    assert!(
        err.contains("initializers.cacheback.sidekiq.url") && err.contains("node of a Redis Cluster"),
        "{err}"
    );
}

/// The node serving `key`'s slot: its address, id, process id, and what
/// restarting it needs (its `dir` and `cluster-config-file`).
struct Serving {
    port: u16,
    pid: u32,
    dir: String,
    config_file: String,
}

fn serving(key: &str) -> Serving {
    let seed = redis::Client::open(redis_cluster_nodes()[0].as_str()).unwrap();
    let mut conn = seed.get_connection().unwrap();
    let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut conn).unwrap();
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).unwrap();
    let line = nodes
        .lines()
        .find(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            fields[2].contains("master")
                && !fields[2].contains("fail")
                && fields[8..].iter().any(|range| {
                    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                    lo.parse::<u16>().is_ok_and(|lo| lo <= slot)
                        && hi.parse::<u16>().is_ok_and(|hi| slot <= hi)
                })
        })
        .unwrap_or_else(|| panic!("no primary serves slot {slot}:\n{nodes}"));
    let address = line.split(' ').nth(1).unwrap().split('@').next().unwrap();
    let port: u16 = address.rsplit_once(':').unwrap().1.parse().unwrap();
    let mut node = redis::Client::open(format!("redis://{address}")).unwrap().get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("server").query(&mut node).unwrap();
    let pid = info.lines().find_map(|l| l.strip_prefix("process_id:")).unwrap().trim().parse().unwrap();
    let mut get = |name: &str| -> String {
        let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(&mut node).unwrap();
        pair[1].clone()
    };
    Serving { port, pid, dir: get("dir"), config_file: get("cluster-config-file") }
}

/// A primary killed (SIGKILL) under a stream of reads and stale refreshes
/// (two engines, live in-process queues): no reader gets an error meanwhile
/// (reads are served without the cache, refreshes that cannot land are
/// logged), and refreshes land again once the primary's replica has been
/// promoted; the time that takes is printed. The node is then restarted and
/// rejoins as a replica, so the Cluster has three primaries with a replica
/// each again for the tests that follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_under_reads_and_refreshes() {
    use cacheback::queue::InProcessQueue;
    let _topology = TOPOLOGY.write().await;
    // Each with a coherent copy, which must follow the promotion.
    let long = Duration::from_secs(600);
    let a = fixture(Backend::Cluster).queue(InProcessQueue::new()).coherent_local(long).build().await;
    let b = fixture(Backend::Cluster)
        .queue(InProcessQueue::new())
        .coherent_local(long)
        .prefix(&a.prefix)
        .build()
        .await;
    // A key whose primary is not the first seed node, which the tests after
    // this one connect through first.
    let first_seed: u16 = redis_cluster_nodes()[0].rsplit_once(':').unwrap().1.parse().unwrap();
    let (param, victim) = (0..)
        .map(|i| (format!("foo{i}"),))
        .map(|param| {
            let key = a.dummy().key(&param).unwrap();
            let victim = serving(&format!("{}default:item:{key}", a.prefix));
            (param, victim)
        })
        .find(|(_, victim)| victim.port != first_seed)
        .unwrap();
    a.dummy().refresh(&param).await.unwrap();
    // Another key on the same primary, read through both copies.
    let shared = (1..)
        .map(|i| (format!("shared{i}"),))
        .find(|shared| {
            let key = a.dummy().key(shared).unwrap();
            serving(&format!("{}default:item:{key}", a.prefix)).port == victim.port
        })
        .unwrap();
    a.dummy().set(&shared, ("before".to_owned(), 0.0)).await.unwrap();
    assert_eq!(b.dummy().get(&shared).await.unwrap().unwrap().0, "before");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = [a.dummy(), b.dummy()]
        .into_iter()
        .map(|job| {
            let (stop, clock, param) = (stop.clone(), a.clock().clone(), param.clone());
            tokio::spawn(async move {
                let mut errors = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    clock.advance(Duration::from_secs(601)); // every read finds it stale
                    if let Err(err) = job.lookup(&param).await {
                        errors.push(err.to_string());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                errors
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = std::time::Instant::now();
    let at_kill = a.clock().now();
    std::process::Command::new("kill").args(["-KILL", &victim.pid.to_string()]).status().unwrap();

    // Refreshes land again: the stored item was fetched after the kill.
    let landed = loop {
        if let Ok(Some(item)) = a.dummy().raw_get(&param).await
            && item.fetched_at.is_some_and(|at| at > at_kill + 601.0)
        {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "no refresh landed after the failover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The other engine's copy hears of writes on the promoted replica.
    let coherent = copies_follow_the_failover(&a, &b, &shared, killed).await;
    eprintln!(
        "cluster failover: refreshes land again {} ms after the primary was killed, the other copy is coherent after {} ms",
        landed.as_millis(),
        coherent.as_millis()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for reader in readers {
        let errors = reader.await.unwrap();
        assert!(errors.is_empty(), "a reader got an error: {errors:?}");
    }

    // The killed node comes back as a replica (scripts/test stops it by port).
    std::process::Command::new("redis-server")
        .args(["--port", &victim.port.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
        .args(["--cluster-config-file", &victim.config_file, "--cluster-node-timeout", "2000"])
        .args(["--save", "", "--appendonly", "no", "--dir", &victim.dir, "--daemonize", "yes"])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let role = redis::Client::open(format!("redis://127.0.0.1:{}", victim.port))
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("ROLE").query::<redis::Value>(&mut c));
        if matches!(role, Ok(redis::Value::Array(ref parts)) if matches!(parts.first(), Some(redis::Value::BulkString(b)) if b == b"slave"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the killed node did not rejoin as a replica: {role:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
