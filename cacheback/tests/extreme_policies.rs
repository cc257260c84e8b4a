//! Policies and stored times at the ends of their range never panic:
//! `Duration::MAX` lifetimes, refresh timeouts and cache TTLs (computed claim
//! TTLs past any `Duration`), and a stored expiry of `-1e308` (a stale delta
//! past any `Duration`), on the memory store and on Redis.

mod common;

use std::time::Duration;

use cacheback::queue::InProcessQueue;
use cacheback::store::{CacheStore, StoredValue};
use cacheback::{CacheStatus, Cacheback, FetchError, Job};
use common::*;

/// A job whose every time policy is `Duration::MAX` and whose stale items are
/// fetched in the request when `sync_stale`.
#[derive(Clone, Copy)]
struct Forever {
    sync_stale: bool,
}

impl Job for Forever {
    type Args = (u32,);
    type Output = String;
    async fn fetch(&self, (n,): &(u32,)) -> Result<String, FetchError> {
        Ok(format!("value {n}"))
    }
    fn lifetime(&self) -> Duration {
        Duration::MAX
    }
    fn refresh_timeout(&self) -> Duration {
        Duration::MAX
    }
    fn cache_ttl(&self) -> Duration {
        Duration::MAX
    }
    fn max_stale_age(&self) -> Option<Duration> {
        Some(Duration::MAX)
    }
    fn stale_if_error(&self) -> Option<Duration> {
        Some(Duration::MAX)
    }
    fn fetch_on_stale_threshold(&self) -> Option<Duration> {
        self.sync_stale.then_some(Duration::MAX)
    }
}

async fn engine(backend: Backend) -> (Cacheback, std::sync::Arc<dyn CacheStore>) {
    let store: std::sync::Arc<dyn CacheStore> = store_on(backend, "extreme").await;
    let cache = Cacheback::builder()
        .store_arc("default", store.clone())
        .queue(InProcessQueue::new())
        .build()
        .unwrap();
    (cache, store)
}

async fn duration_max_policies(backend: Backend) {
    let (cache, _) = engine(backend).await;
    for sync_stale in [false, true] {
        let job = cache.job(Forever { sync_stale });
        let n = u32::from(sync_stale);
        let miss = job.lookup(&(n,)).await.unwrap();
        assert_eq!(
            (miss.status, miss.value.as_deref().map(String::as_str)),
            (CacheStatus::Miss, Some(format!("value {n}").as_str()))
        );
        let hit = job.lookup(&(n,)).await.unwrap();
        assert_eq!(hit.status, CacheStatus::Hit, "cached for ever");
        // Stale now: invalidated with a refresh timeout of Duration::MAX.
        job.invalidate(&(n,)).await.unwrap();
        job.refresh(&(n,)).await.unwrap();
        assert_eq!(job.lookup(&(n,)).await.unwrap().status, CacheStatus::Hit);
    }
}

async fn an_expiry_at_the_far_past(backend: Backend) {
    let (cache, store) = engine(backend).await;
    for sync_stale in [false, true] {
        let job = cache.job(Forever { sync_stale });
        let n = 10 + u32::from(sync_stale);
        let key = job.key(&(n,)).unwrap();
        let item = br#"[-1e308,"ancient",{"fetched_at":-1e308}]"#;
        store
            .set(&key, StoredValue::Encoded(bytes::Bytes::from_static(item)), Duration::from_secs(60))
            .await
            .unwrap();
        let found = job.lookup(&(n,)).await.unwrap();
        assert_eq!(found.status, CacheStatus::Stale);
    }
}

on_every_store!(duration_max_policies, an_expiry_at_the_far_past);
