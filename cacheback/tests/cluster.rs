//! What only a Redis Cluster asks of the store: `clear` and `item_count` on
//! every primary, the settings' `cluster:`, and the Sidekiq queue's refusal.
//! Everything the store does elsewhere runs on the Cluster through
//! `on_every_store!` (the `cluster::` tests), two engines included.

mod common;

use std::time::Duration;

use cacheback::settings::Settings;
use cacheback::store::{CacheStore, StoredValue};
use common::*;
use serde_json::json;

/// Keys spread over every slot range: `clear` removes this store's items
/// and claims on every primary (only this prefix's), and `item_count`
/// counts them all.
#[tokio::test]
async fn clear_and_item_count_visit_every_primary() {
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
        err.contains("initializers.cacheback.caches.default.cluster") && err.contains("not both"),
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
