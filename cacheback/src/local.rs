//! [`LocalCache`]: this process's copy of fresh items in front of a shared store.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::expiring::Expiring;
use crate::item::{self, CachedItem};
use crate::store::{Representation, StoredValue};

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

    /// The copy of `key`, if there is one and it is fresh at `now`.
    pub(crate) fn get<T>(&self, key: &str, now: Timestamp) -> Option<CachedItem<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
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

    /// Records what the store now holds under `key`: a fresh item is copied,
    /// anything else (stale, or the empty placeholder of a MISS being
    /// refreshed) drops the copy.
    pub(crate) fn put<T>(&self, key: &str, item: &CachedItem<T>, now: Timestamp)
    where
        T: serde::Serialize + Send + Sync + 'static,
    {
        if item.expiry <= now || item.data.is_none() {
            self.remove(key);
            return;
        }
        match item::encode(Representation::Shared, item.clone()) {
            Ok(StoredValue::Shared(shared)) => self.items.insert(key, shared, self.ttl),
            _ => self.remove(key),
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
        LocalCache { items: Arc::new(Expiring::new(self.max_capacity)), ttl: self.ttl }
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
        local.put("k", &item(100.0, Some("v")), 50.0);
        assert_eq!(local.get::<String>("k", 99.0), Some(item(100.0, Some("v"))));
        assert_eq!(local.get::<String>("k", 100.0), None, "stale at its expiry");
    }

    #[test]
    fn stale_items_and_placeholders_drop_the_copy() {
        let local = LocalCache::new(Duration::from_secs(60));
        local.put("k", &item(100.0, Some("v")), 50.0);
        local.put("k", &item(40.0, Some("old")), 50.0);
        assert_eq!(local.get::<String>("k", 50.0), None);
        local.put("k", &item(100.0, Some("v")), 50.0);
        local.put("k", &item(100.0, None), 50.0);
        assert_eq!(local.get::<String>("k", 50.0), None);
    }

    #[test]
    fn another_type_under_the_key_is_no_copy() {
        let local = LocalCache::new(Duration::from_secs(60));
        local.put("k", &item(100.0, Some("v")), 50.0);
        assert_eq!(local.get::<u32>("k", 50.0), None);
        assert_eq!(local.get::<String>("k", 50.0), None, "the mismatched copy was dropped");
    }

    #[test]
    fn copies_expire_after_the_time_to_live() {
        let local = LocalCache::new(Duration::from_millis(50));
        local.put("k", &item(f64::MAX, Some("v")), 0.0);
        assert!(local.get::<String>("k", 1.0).is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(local.get::<String>("k", 1.0), None);
    }
}
