//! Adaptive lifetimes and conditional refreshes (issue 18, §4):
//! `Job::lifetime_for` chooses an item's freshness from its value, and
//! `Job::refetch` may find the stale data not modified (an HTTP 304), which
//! keeps it (its bytes untouched) with a renewed expiry, for synchronous and
//! queued refreshes alike.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use cacheback::store::StoredValue;
use cacheback::{CacheStatus, Clock, FetchError, Job, Refetched};
use common::*;

on_every_store!(
    lifetime_for_chooses_the_freshness_of_fetched_and_set_items,
    not_modified_keeps_the_data_and_renews_its_expiry,
    a_queued_refresh_refetches_too,
    modified_data_is_stored_as_a_fetch,
);

/// A document at a version, as an HTTP source with an ETag would serve it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Doc {
    etag: u32,
    body: String,
}

#[derive(Clone, Default)]
struct Source {
    version: Arc<AtomicU32>,
    fetches: Arc<AtomicUsize>,
    refetches: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
}

/// Fresh for a minute; a document whose body is empty for 5 s only.
#[derive(Clone)]
struct Docs(Source);

impl Job for Docs {
    type Args = (String,);
    type Output = Doc;
    async fn fetch(&self, (name,): &(String,)) -> Result<Doc, FetchError> {
        self.0.fetches.fetch_add(1, Ordering::SeqCst);
        let etag = self.0.version.load(Ordering::SeqCst);
        Ok(Doc { etag, body: if name.is_empty() { String::new() } else { format!("{name} v{etag}") } })
    }
    async fn refetch(&self, args: &(String,), stale: &Doc) -> Result<Refetched<Doc>, FetchError> {
        self.0.refetches.fetch_add(1, Ordering::SeqCst);
        if stale.etag == self.0.version.load(Ordering::SeqCst) {
            self.0.not_modified.fetch_add(1, Ordering::SeqCst);
            return Ok(Refetched::NotModified);
        }
        self.fetch(args).await.map(Refetched::Modified)
    }
    fn lifetime(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn lifetime_for(&self, _: &(String,), doc: &Doc) -> Duration {
        if doc.body.is_empty() { Duration::from_secs(5) } else { self.lifetime() }
    }
}

fn name(s: &str) -> (String,) {
    (s.to_owned(),)
}

async fn lifetime_for_chooses_the_freshness_of_fetched_and_set_items(backend: Backend) {
    let fx = fixture(backend).build().await;
    let docs = fx.cache.job(Docs(Source::default()));
    let empty = docs.lookup(&name("")).await.unwrap();
    assert_eq!(empty.expiry.unwrap(), fx.clock().now() + 5.0, "an empty body: 5 s");
    let full = docs.lookup(&name("a")).await.unwrap();
    assert_eq!(full.expiry.unwrap(), fx.clock().now() + 60.0, "the lifetime otherwise");
    docs.set(&name("b"), Doc { etag: 0, body: String::new() }).await.unwrap();
    assert_eq!(docs.raw_get(&name("b")).await.unwrap().unwrap().expiry, fx.clock().now() + 5.0, "set too");

    fx.clock().advance(Duration::from_secs(6));
    assert_eq!(docs.lookup(&name("")).await.unwrap().status, CacheStatus::Stale);
    assert_eq!(docs.lookup(&name("a")).await.unwrap().status, CacheStatus::Hit);
}

/// The refresh of a stale item whose source has not changed: no fetch, the
/// data kept as stored (in an encoding store its very bytes, which a re-encoding would
/// have normalised; in memory the same `Arc`), fresh again from now.
async fn not_modified_keeps_the_data_and_renews_its_expiry(backend: Backend) {
    let fx = fixture(backend).build().await;
    let source = Source::default();
    let docs = fx.cache.job(Docs(source.clone()));
    let key = docs.key(&name("a")).unwrap();
    let store = fx.cache.store("default").unwrap();
    let stale_at = fx.clock().now() - 1.0;
    if store.representation() == cacheback::store::Representation::Encoded {
        // Spacing and field order serde would not write.
        let planted = format!(r#"[{stale_at:?},{{"body":"a v0",  "etag":0}},{{"fetched_at":1.0}}]"#);
        store
            .set(&key, StoredValue::Encoded(planted.into_bytes().into()), Duration::from_secs(600))
            .await
            .unwrap();
    } else {
        docs.store_raw(&key, stale_at, Some(Doc { etag: 0, body: "a v0".into() })).await.unwrap();
    }
    let before = docs.raw_get(&name("a")).await.unwrap().unwrap();

    let refreshed = docs.refresh(&name("a")).await.unwrap();
    assert_eq!(*refreshed, Doc { etag: 0, body: "a v0".into() });
    assert_eq!(source.fetches.load(Ordering::SeqCst), 0, "no fetch");
    assert_eq!(source.not_modified.load(Ordering::SeqCst), 1);
    let after = docs.raw_get(&name("a")).await.unwrap().unwrap();
    assert_eq!(after.expiry, fx.clock().now() + 60.0, "its expiry renewed");
    assert_eq!(after.fetched_at, Some(fx.clock().now()), "and its fetch time: it was just confirmed");
    match store.get(&key).await.unwrap().unwrap() {
        StoredValue::Encoded(bytes) => {
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            assert!(text.contains(r#"{"body":"a v0",  "etag":0}"#), "the data's bytes as they were: {text}");
        }
        StoredValue::Shared(_) => {
            assert!(
                Arc::ptr_eq(before.data.as_ref().unwrap(), after.data.as_ref().unwrap()),
                "the same data"
            );
        }
    }
    assert_eq!(docs.lookup(&name("a")).await.unwrap().status, CacheStatus::Hit);
}

async fn a_queued_refresh_refetches_too(backend: Backend) {
    let source = Source::default();
    let s = source.clone();
    let fx = fixture(backend).build().await;
    let docs = fx.cache.job(Docs(source.clone()));
    docs.get(&name("a")).await.unwrap();
    fx.clock().advance(Duration::from_secs(61));
    let stale = docs.lookup(&name("a")).await.unwrap();
    assert_eq!((stale.status, stale.sync_fetch), (CacheStatus::Stale, Some(false)));
    // The fixture's engine has no factory for Docs: run the queued payload
    // on an engine that has.
    let worker = cacheback::Cacheback::builder()
        .store_arc("default", fx.cache.store("default").unwrap().clone())
        .clock(fx.clock().clone())
        .register(move |_| Ok(Docs(s.clone())))
        .build()
        .unwrap();
    let payload = fx.queue.pending_payloads().remove(0);
    assert_eq!(worker.perform(&payload).await.unwrap(), cacheback::queue::RefreshOutcome::Refreshed);
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1, "only the first fetch");
    assert_eq!(source.not_modified.load(Ordering::SeqCst), 1, "the worker refetched: not modified");
    assert_eq!(docs.lookup(&name("a")).await.unwrap().status, CacheStatus::Hit);
}

async fn modified_data_is_stored_as_a_fetch(backend: Backend) {
    let fx = fixture(backend).build().await;
    let source = Source::default();
    let docs = fx.cache.job(Docs(source.clone()));
    assert_eq!(docs.get(&name("a")).await.unwrap().unwrap().body, "a v0");
    source.version.store(1, Ordering::SeqCst);
    fx.clock().advance(Duration::from_secs(61));
    assert_eq!(docs.refresh(&name("a")).await.unwrap().body, "a v1");
    assert_eq!(source.refetches.load(Ordering::SeqCst), 1);
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2, "the first fetch and the refetch's");
    assert_eq!(docs.get(&name("a")).await.unwrap().unwrap().body, "a v1");
}
