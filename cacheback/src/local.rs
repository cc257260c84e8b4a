//! [`LocalCache`]: this process's copy of fresh items in front of a shared store.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::expiring::Expiring;
use crate::item::{self, CachedItem};
use crate::store::{RedisStore, Representation, StoredValue};
use crate::tracking::Event;

/// How long after its time to live a copy is still served when both the
/// store and the job fail (see [`LocalCache`]).
pub const FALLBACK_WINDOW: Duration = Duration::from_secs(300);

/// The default [`LocalCache`] capacity, in items.
pub const DEFAULT_LOCAL_CAPACITY: u64 = 10_000;

/// An in-process copy of the *fresh* items of a store outside the process
/// (Redis), kept for a short `time_to_live`: a HIT on a copy costs neither a
/// round trip nor a decode.
///
/// Attach one to a store alias with
/// [`Builder::local_cache`](crate::Builder::local_cache) (or `local:` under
/// the alias in the settings). Only fresh items are copied and served; a
/// stale, missing or [empty](crate::Job::empty) item is always read from the
/// store, so stale detection, refresh claims and the one-refresh-per-stale-item
/// guarantee are the store's, as without a copy. Writes made through this
/// engine (`set`, refreshes, `invalidate`, `delete`) update the copy at once.
///
/// When the store cannot be read and the job's fetch fails too (the app's
/// database is both, and restarts), a read serves the last copy, stale, if
/// it expired less than [`FALLBACK_WINDOW`] ago, rather than an error.
///
/// The price: a `set`, `invalidate` or `delete` made by *another* process
/// (another web process, or a worker re-storing a value while this process
/// holds a fresh copy) is seen here up to `time_to_live` later. Choose it as
/// the staleness you accept on top of an item's lifetime; a second or less is
/// typical.
///
/// Unless the copy is *coherent*: in front of a Redis store,
/// [`keep_coherent`](Self::keep_coherent) (`coherent: true` under `local:`
/// in the settings) has Redis tell this
/// process of every write of the store's items by any process (server-assisted
/// client-side caching), and each evicts the copy; `time_to_live` remains
/// an upper bound. While Redis cannot tell (its connection is down), the copy
/// is emptied and not served.
///
/// ```
/// use std::time::Duration;
/// use cacheback::LocalCache;
/// let local = LocalCache::builder().time_to_live(Duration::from_millis(500)).max_capacity(50_000).build();
/// assert_eq!(local.time_to_live(), Duration::from_millis(500));
/// ```
#[derive(Clone)]
pub struct LocalCache {
    items: Arc<Expiring<Arc<dyn Any + Send + Sync>>>,
    ttl: Duration,
    coherence: Arc<Coherence>,
}

/// How long an invalidated key is remembered, so that a copy read before
/// its invalidation arrived is not kept after it: longer than any store
/// request may take.
const INVALIDATION_MEMORY: Duration = Duration::from_secs(30);

/// What a tracker (see [`LocalCache`]) keeps up to date.
struct Coherence {
    /// Whether a tracker keeps the copy coherent.
    tracked: AtomicBool,
    /// Whether the copy is served: always without a tracker; with one, only
    /// while Redis can tell of every write.
    serving: AtomicBool,
    /// Counts the invalidations and flushes.
    epoch: AtomicU64,
    /// The epoch of the last flush.
    flushed: AtomicU64,
    /// The epoch of each key's last invalidation, for [`INVALIDATION_MEMORY`].
    invalidated: Expiring<u64>,
}

impl Coherence {
    fn new() -> Self {
        Self {
            tracked: AtomicBool::new(false),
            serving: AtomicBool::new(true),
            epoch: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            invalidated: Expiring::new(DEFAULT_LOCAL_CAPACITY),
        }
    }

    fn next_epoch(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Whether `key` was invalidated, or everything flushed, after `since`.
    fn changed_since(&self, key: &str, since: u64) -> bool {
        self.flushed.load(Ordering::Acquire) > since
            || self.invalidated.get(key).is_some_and(|epoch| epoch > since)
    }
}

impl std::fmt::Debug for LocalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCache")
            .field("time_to_live", &self.ttl)
            .field("entries", &self.items.len())
            .finish()
    }
}

impl LocalCache {
    /// A local cache keeping copies for `time_to_live`, at most
    /// [`DEFAULT_LOCAL_CAPACITY`] of them.
    ///
    /// ```
    /// let local = cacheback::LocalCache::new(std::time::Duration::from_secs(1));
    /// # let _ = local;
    /// ```
    pub fn new(time_to_live: Duration) -> Self {
        Self::builder().time_to_live(time_to_live).build()
    }

    /// Starts configuring a local cache.
    ///
    /// ```
    /// let local = cacheback::LocalCache::builder().build();
    /// assert_eq!(local.time_to_live(), std::time::Duration::from_secs(1));
    /// ```
    pub fn builder() -> LocalCacheBuilder {
        LocalCacheBuilder { ttl: Duration::from_secs(1), max_capacity: DEFAULT_LOCAL_CAPACITY }
    }

    /// How long a copy is served before the store is asked again.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(cacheback::LocalCache::new(Duration::from_secs(2)).time_to_live(), Duration::from_secs(2));
    /// ```
    pub fn time_to_live(&self) -> Duration {
        self.ttl
    }

    /// Drops every copy (the store keeps its items).
    ///
    /// ```
    /// cacheback::LocalCache::new(std::time::Duration::from_secs(1)).clear();
    /// ```
    pub fn clear(&self) {
        self.items.clear();
    }

    /// Whether copies are served now: always, unless the copy is
    /// [coherent](Self::keep_coherent) and Redis cannot
    /// tell of writes at the moment (then every read goes to the store).
    ///
    /// ```
    /// assert!(cacheback::LocalCache::new(std::time::Duration::from_secs(1)).is_serving());
    /// ```
    pub fn is_serving(&self) -> bool {
        self.coherence.serving.load(Ordering::Acquire)
    }

    /// Keeps this copy (the one in front of `store`) coherent: every write
    /// of the store's items by any process evicts it, through Redis's
    /// server-assisted client-side caching (`CLIENT TRACKING` in `BCAST`
    /// mode on a RESP3 connection per server that takes writes: the one
    /// server, the Sentinel group's master, each primary of a Cluster;
    /// followed through failovers). While a tracking connection is down,
    /// the copy is emptied and not served ([`is_serving`](Self::is_serving));
    /// its time to live stays an upper bound. Runs until the copy is
    /// dropped. The invalidation of a [tag](crate::Job::tags) empties the
    /// copy: the items carrying it are not known here.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cacheback::{Cacheback, LocalCache};
    /// use cacheback::store::RedisStore;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = RedisStore::connect("redis://127.0.0.1/").await.unwrap();
    /// let local = LocalCache::new(Duration::from_secs(60));
    /// local.keep_coherent(&store).await.unwrap();
    /// let cache = Cacheback::builder().store("default", store).local_cache("default", local).build().unwrap();
    /// # let _ = cache;
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// When Redis cannot track (before Redis 6, or `CLIENT` refused by an ACL).
    pub async fn keep_coherent(&self, store: &RedisStore) -> Result<(), StoreError> {
        let copy = self.downgrade();
        let sink: crate::tracking::Sink = Box::new(move |event| {
            let Some(local) = copy.upgrade() else { return false };
            match event {
                Event::Tracking => local.resume(),
                Event::Lost => local.suspend(),
                Event::Written(key) if crate::store::is_tag_version_key(key) => local.flush(),
                Event::Written(key) => local.invalidate(key),
                Event::Flushed => local.flush(),
                Event::Checking => {}
            }
            true
        });
        self.track();
        crate::tracking::start(store.tracking_source(), sink).await.map_err(|e| {
            // Nothing keeps it coherent: a copy living its time to live again.
            self.untrack();
            StoreError::with_source(
                format!(
                    "Redis at `{}` cannot keep the local copy coherent (CLIENT TRACKING needs Redis 6 or later)",
                    store.describe()
                ),
                e,
            )
        })
    }

    /// A reference to this copy that does not keep it alive (a tracker's).
    fn downgrade(&self) -> WeakLocal {
        WeakLocal {
            items: Arc::downgrade(&self.items),
            coherence: Arc::downgrade(&self.coherence),
            ttl: self.ttl,
        }
    }

    /// This copy as an operation that starts now sees it: its copies are
    /// kept only if no invalidation of theirs arrives after this.
    pub(crate) fn view(&self) -> LocalView<'_> {
        LocalView { cache: self, since: self.coherence.epoch.load(Ordering::Acquire) }
    }

    /// From now on a tracker keeps this copy coherent: nothing is served
    /// until it [resumes](Self::resume) it.
    fn track(&self) {
        self.coherence.tracked.store(true, Ordering::Release);
        self.suspend();
    }

    /// No tracker keeps this copy coherent after all: it is served again,
    /// each copy living its time to live.
    fn untrack(&self) {
        self.coherence.tracked.store(false, Ordering::Release);
        self.resume();
    }

    /// Redis can no longer tell of writes: every copy goes, none is served.
    fn suspend(&self) {
        self.coherence.serving.store(false, Ordering::Release);
        self.flush();
    }

    /// Redis tells of every write again: copies are kept and served (none
    /// from before).
    fn resume(&self) {
        self.flush();
        self.coherence.serving.store(true, Ordering::Release);
    }

    /// Every copy goes (Redis was flushed, or cannot say what changed).
    fn flush(&self) {
        let epoch = self.coherence.next_epoch();
        self.coherence.flushed.store(epoch, Ordering::Release);
        self.items.clear();
    }

    /// Another write of `key` happened: its copy goes, and a copy read
    /// before now is not kept.
    fn invalidate(&self, key: &str) {
        let epoch = self.coherence.next_epoch();
        self.coherence.invalidated.insert(key, epoch, INVALIDATION_MEMORY);
        self.remove(key);
    }

    /// The copy of `key`, if there is one and it is fresh at `now`.
    pub(crate) fn get<T>(&self, key: &str, now: Timestamp) -> Option<CachedItem<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        if !self.is_serving() {
            return None;
        }
        // An expired copy stays (until evicted or replaced) for `fallback`.
        let (shared, None) = self.items.peek(key)? else {
            return None;
        };
        match item::decode::<T>(key, &StoredValue::Shared(shared)) {
            Ok(item) if item.expiry > now => Some(item),
            Ok(_) => None,
            // Another output type under this key (a deploy changed it): the
            // store decides what the key holds.
            Err(_) => {
                self.remove(key);
                None
            }
        }
    }

    /// The last copy of `key`, expired or not, if it expired less than
    /// [`FALLBACK_WINDOW`] ago: what a read serves when neither the store
    /// nor the job can answer (the store and the job's database both down),
    /// rather than an error.
    pub(crate) fn fallback<T>(&self, key: &str) -> Option<CachedItem<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let (shared, expired_for) = self.items.peek(key)?;
        if expired_for.is_some_and(|age| age > FALLBACK_WINDOW) {
            return None;
        }
        item::decode::<T>(key, &StoredValue::Shared(shared)).ok()
    }

    /// Records what the store held under `key` when an operation that
    /// started at epoch `since` read or wrote it: a fresh item is copied,
    /// anything else (stale, or the empty placeholder of a MISS being
    /// refreshed) drops the copy. On a coherent copy, nothing is copied
    /// once `key` has been invalidated since `since` (the store's answer may
    /// predate that write), nor while the copy is not served.
    fn put<T>(&self, key: &str, item: &CachedItem<T>, now: Timestamp, since: u64)
    where
        T: serde::Serialize + Send + Sync + 'static,
    {
        if item.expiry <= now || item.data.is_none() {
            self.remove(key);
            return;
        }
        let Ok(StoredValue::Shared(shared)) = item::encode(Representation::Shared, item.clone()) else {
            self.remove(key);
            return;
        };
        if !self.coherence.tracked.load(Ordering::Acquire) {
            self.items.insert(key, shared, self.ttl);
            return;
        }
        // Checked under the key's lock, so an invalidation recorded after
        // the check removes the copy after it is written.
        let coherence = &self.coherence;
        let kept = self.items.insert_if(key, shared, self.ttl, |_| {
            coherence.serving.load(Ordering::Acquire) && !coherence.changed_since(key, since)
        });
        if !kept {
            self.remove(key);
        }
    }

    /// Drops the copy of `key`.
    pub(crate) fn remove(&self, key: &str) {
        self.items.remove_if(key, |_| true);
    }
}

/// Configures a [`LocalCache`] (see [`LocalCache::builder`]).
///
/// ```
/// let local = cacheback::LocalCache::builder().max_capacity(100).build();
/// # let _ = local;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct LocalCacheBuilder {
    ttl: Duration,
    max_capacity: u64,
}

impl LocalCacheBuilder {
    /// How long a copy is served before the store is asked again (default 1 s).
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The most copies kept (default [`DEFAULT_LOCAL_CAPACITY`]).
    pub fn max_capacity(mut self, max_capacity: u64) -> Self {
        self.max_capacity = max_capacity;
        self
    }

    /// Builds the local cache.
    pub fn build(self) -> LocalCache {
        LocalCache {
            items: Arc::new(Expiring::new(self.max_capacity)),
            ttl: self.ttl,
            coherence: Arc::new(Coherence::new()),
        }
    }
}

/// A [`LocalCache`] that may have been dropped (see [`LocalCache::downgrade`]).
struct WeakLocal {
    items: std::sync::Weak<Expiring<Arc<dyn Any + Send + Sync>>>,
    coherence: std::sync::Weak<Coherence>,
    ttl: Duration,
}

impl WeakLocal {
    /// The copy, unless it was dropped.
    fn upgrade(&self) -> Option<LocalCache> {
        Some(LocalCache { items: self.items.upgrade()?, coherence: self.coherence.upgrade()?, ttl: self.ttl })
    }
}

/// A [`LocalCache`] as one operation sees it (see [`LocalCache::view`]).
#[derive(Clone, Copy)]
pub(crate) struct LocalView<'a> {
    cache: &'a LocalCache,
    since: u64,
}

impl LocalView<'_> {
    /// See [`LocalCache::get`].
    pub(crate) fn get<T>(self, key: &str, now: Timestamp) -> Option<CachedItem<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        self.cache.get(key, now)
    }

    /// See [`LocalCache::fallback`].
    pub(crate) fn fallback<T>(self, key: &str) -> Option<CachedItem<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        self.cache.fallback(key)
    }

    /// Records what the store holds under `key` (see [`LocalCache::put`]).
    pub(crate) fn put<T>(self, key: &str, item: &CachedItem<T>, now: Timestamp)
    where
        T: serde::Serialize + Send + Sync + 'static,
    {
        self.cache.put(key, item, now, self.since);
    }

    /// Drops the copy of `key`.
    pub(crate) fn remove(self, key: &str) {
        self.cache.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(expiry: Timestamp, data: Option<&str>) -> CachedItem<String> {
        CachedItem::new(expiry, data.map(|d| Arc::new(d.to_owned())), None)
    }

    #[test]
    fn serves_fresh_copies_only() {
        let local = LocalCache::new(Duration::from_secs(60));
        local.view().put("k", &item(100.0, Some("v")), 50.0);
        assert_eq!(local.get::<String>("k", 99.0), Some(item(100.0, Some("v"))));
        assert_eq!(local.get::<String>("k", 100.0), None, "stale at its expiry");
    }

    #[test]
    fn stale_items_and_placeholders_drop_the_copy() {
        let local = LocalCache::new(Duration::from_secs(60));
        local.view().put("k", &item(100.0, Some("v")), 50.0);
        local.view().put("k", &item(40.0, Some("old")), 50.0);
        assert_eq!(local.get::<String>("k", 50.0), None);
        local.view().put("k", &item(100.0, Some("v")), 50.0);
        local.view().put("k", &item(100.0, None), 50.0);
        assert_eq!(local.get::<String>("k", 50.0), None);
    }

    #[test]
    fn another_type_under_the_key_is_no_copy() {
        let local = LocalCache::new(Duration::from_secs(60));
        local.view().put("k", &item(100.0, Some("v")), 50.0);
        assert_eq!(local.get::<u32>("k", 50.0), None);
        assert_eq!(local.get::<String>("k", 50.0), None, "the mismatched copy was dropped");
    }

    /// The interleavings a tracker makes possible, forced: an answer read
    /// before an invalidation that arrives before it is copied is not kept;
    /// nothing is served or kept while tracking is down.
    #[test]
    fn a_coherent_copy_keeps_nothing_older_than_an_invalidation() {
        let local = LocalCache::new(Duration::from_secs(60));
        local.track();
        assert!(!local.is_serving(), "not served until tracking is up");
        local.resume();
        let before = local.view();
        local.invalidate("k");
        before.put("k", &item(100.0, Some("read before the write")), 50.0);
        assert_eq!(local.get::<String>("k", 50.0), None, "the answer predates the invalidation");
        before.put("other", &item(100.0, Some("v")), 50.0);
        assert!(local.get::<String>("other", 50.0).is_some(), "another key's invalidation changes nothing");
        local.view().put("k", &item(100.0, Some("read after")), 50.0);
        assert!(local.get::<String>("k", 50.0).is_some());

        let before = local.view();
        local.suspend();
        assert_eq!(local.get::<String>("other", 50.0), None, "emptied");
        local.view().put("k", &item(100.0, Some("v")), 50.0);
        local.resume();
        assert_eq!(local.get::<String>("k", 50.0), None, "nothing kept while down");
        before.put("k", &item(100.0, Some("read before the loss")), 50.0);
        assert_eq!(local.get::<String>("k", 50.0), None, "nor what was read before it");
    }

    #[test]
    fn copies_expire_after_the_time_to_live() {
        let local = LocalCache::new(Duration::from_millis(50));
        local.view().put("k", &item(f64::MAX, Some("v")), 0.0);
        assert!(local.get::<String>("k", 1.0).is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(local.get::<String>("k", 1.0), None);
    }
}
