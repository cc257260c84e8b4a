use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::ops::compute::{CompResult, Op};
use moka::sync::Cache;

use super::{CacheStore, Representation, StoredValue};
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::expiring::Expiring;

/// The default [`MemoryStore`] capacity, in items.
pub const DEFAULT_MAX_CAPACITY: u64 = 10_000;

/// moka's expiry for claims, which carry their own TTL: each write sets it anew.
struct ByOwnTtl;

impl Expiry<String, Claim> for ByOwnTtl {
    fn expire_after_create(&self, _: &String, claim: &Claim, _: Instant) -> Option<Duration> {
        Some(claim.ttl)
    }
    fn expire_after_update(
        &self,
        _: &String,
        claim: &Claim,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(claim.ttl)
    }
}

/// A claim: held by `token` until `until` on the engine's clock. The entry's
/// own TTL (the same span in real time) only garbage-collects it.
#[derive(Clone)]
struct Claim {
    token: String,
    until: Timestamp,
    ttl: Duration,
}

/// An in-process store: bounded, a TTL per item, values shared by reference
/// (a HIT never decodes, nor waits: it is answered by
/// [`get_now`](CacheStore::get_now)).
///
/// Items are kept in [quick_cache](https://docs.rs/quick_cache), whose reads
/// do no housekeeping; claims in [moka](https://docs.rs/moka), unbounded (a
/// claim is never evicted while held) and as few as the fills under way.
///
/// Each process has its own; use [`RedisStore`](super::RedisStore) to share a
/// cache between a web process and its workers.
///
/// ```
/// use cacheback::store::MemoryStore;
/// let store = MemoryStore::builder().max_capacity(50_000).build();
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    items: Arc<Expiring<StoredValue>>,
    claims: Cache<String, Claim>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("items", &self.items.len()).finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store holding up to [`DEFAULT_MAX_CAPACITY`] items.
    ///
    /// ```
    /// let store = cacheback::store::MemoryStore::new();
    /// # let _ = store;
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a store.
    ///
    /// ```
    /// let store = cacheback::store::MemoryStore::builder().max_capacity(10).build();
    /// # let _ = store;
    /// ```
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder { max_capacity: DEFAULT_MAX_CAPACITY }
    }
}

/// Builds a [`MemoryStore`].
///
/// ```
/// let store = cacheback::store::MemoryStore::builder().max_capacity(100).build();
/// # let _ = store;
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder {
    max_capacity: u64,
}

impl MemoryStoreBuilder {
    /// The most items kept; the least useful are evicted first.
    #[must_use]
    pub fn max_capacity(mut self, items: u64) -> Self {
        self.max_capacity = items;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            items: Arc::new(Expiring::new(self.max_capacity)),
            claims: Cache::builder().expire_after(ByOwnTtl).build(),
        }
    }
}

#[async_trait]
impl CacheStore for MemoryStore {
    fn representation(&self) -> Representation {
        Representation::Shared
    }

    async fn get(&self, key: &str) -> Result<Option<StoredValue>, StoreError> {
        Ok(self.items.get(key))
    }

    fn get_now(&self, key: &str) -> Option<Result<Option<StoredValue>, StoreError>> {
        Some(Ok(self.items.get(key)))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<StoredValue>>, StoreError> {
        Ok(keys.iter().map(|key| self.items.get(key)).collect())
    }

    async fn set(&self, key: &str, value: StoredValue, ttl: Duration) -> Result<(), StoreError> {
        self.items.insert(key, value, ttl);
        Ok(())
    }

    async fn replace(
        &self,
        key: &str,
        expected: Option<&StoredValue>,
        value: StoredValue,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.items.insert_if(key, value, ttl, |current| match (current, expected) {
            (None, None) => true,
            (Some(current), Some(expected)) => current.same_as(expected),
            _ => false,
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.items.remove_if(key, |_| true);
        Ok(())
    }

    async fn claim(
        &self,
        key: &str,
        token: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let claim = Claim { token: token.to_owned(), until, ttl: super::claim_ttl(now, until) };
        let result = self.claims.entry_by_ref(key).and_compute_with(|held| match held {
            Some(held) if held.value().until > now => Op::Nop,
            _ => Op::Put(claim),
        });
        Ok(matches!(result, CompResult::Inserted(_) | CompResult::ReplacedWith(_)))
    }

    async fn release(&self, key: &str, token: &str) -> Result<(), StoreError> {
        self.claims.entry_by_ref(key).and_compute_with(|held| match held {
            Some(held) if held.value().token == token => Op::Remove,
            _ => Op::Nop,
        });
        Ok(())
    }

    async fn is_claimed(&self, key: &str, now: Timestamp) -> Result<bool, StoreError> {
        Ok(self.claims.get(key).is_some_and(|claim| claim.until > now))
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.items.clear();
        self.claims.invalidate_all();
        Ok(())
    }

    async fn item_count(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.items.purge(|key| !super::is_tag_version_key(key))))
    }
}
