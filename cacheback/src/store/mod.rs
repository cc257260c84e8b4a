//! Cache stores: where items live, under named aliases (Django's `CACHES`).
//!
//! One trait, [`CacheStore`], and three stores: [`MemoryStore`] (in-process),
//! [`RedisStore`] (shared by every process), [`NullStore`] (discards writes).
//!
//! A store also arbitrates *refresh claims*: a marker per key, held until a
//! timestamp on the engine's clock, that exactly one reader wins, so a stale
//! item queues exactly one refresh however many readers see it stale at once.
//! Claims follow the same clock as item expiry, so the refresh window of a
//! claim and of the re-stored stale item are one and the same.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::clock::Timestamp;
use crate::error::StoreError;

mod memory;
mod null;
mod redis;

pub use self::memory::{DEFAULT_MAX_CAPACITY, MemoryStore, MemoryStoreBuilder};
pub use self::null::NullStore;
pub use self::redis::{DEFAULT_KEY_PREFIX, RedisStore, RedisStoreBuilder};

/// A value as a store holds it.
///
/// ```
/// use cacheback::store::StoredValue;
/// let v = StoredValue::Encoded(bytes::Bytes::from_static(b"[1.0,[\"a\"]]"));
/// assert!(matches!(v, StoredValue::Encoded(_)));
/// ```
#[derive(Clone)]
pub enum StoredValue {
    /// A decoded item shared by reference (in-process stores): a HIT costs a
    /// reference-count increment, not a decode.
    Shared(Arc<dyn Any + Send + Sync>),
    /// An encoded item (stores outside the process).
    Encoded(Bytes),
}

impl Debug for StoredValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shared(_) => f.write_str("Shared(..)"),
            Self::Encoded(b) => write!(f, "Encoded({} bytes)", b.len()),
        }
    }
}

/// Which [`StoredValue`] variant a store wants to be given.
///
/// ```
/// use cacheback::store::{CacheStore, MemoryStore, Representation};
/// assert_eq!(MemoryStore::new().representation(), Representation::Shared);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// Decoded values behind an `Arc`.
    Shared,
    /// Encoded bytes.
    Encoded,
}

/// How to take a refresh claim.
///
/// ```
/// use cacheback::store::ClaimMode;
/// assert_ne!(ClaimMode::IfFree, ClaimMode::Force);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimMode {
    /// Take it only if nobody holds it (atomic test-and-set).
    IfFree,
    /// Take it whoever holds it (an explicit invalidation).
    Force,
}

/// A named cache backend.
///
/// Implementations must never clear more than their own keys: a Redis database
/// may be shared with queues and other applications.
///
/// ```
/// use cacheback::store::{CacheStore, ClaimMode, MemoryStore};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let (now, until) = (1000.0, 1060.0);
/// assert!(store.claim("k", now, until, ClaimMode::IfFree).await.unwrap());
/// assert!(!store.claim("k", now + 1.0, until, ClaimMode::IfFree).await.unwrap());
/// // Once its time has passed, a claim is free again.
/// assert!(store.claim("k", until + 1.0, until + 61.0, ClaimMode::IfFree).await.unwrap());
/// store.release("k").await.unwrap();
/// assert!(!store.is_claimed("k", now).await.unwrap());
/// # });
/// ```
#[async_trait]
pub trait CacheStore: Send + Sync + Debug + 'static {
    /// The representation [`set`](CacheStore::set) expects.
    fn representation(&self) -> Representation;

    /// Reads an item.
    async fn get(&self, key: &str) -> Result<Option<StoredValue>, StoreError>;

    /// Writes an item, kept for `ttl`.
    async fn set(&self, key: &str, value: StoredValue, ttl: Duration) -> Result<(), StoreError>;

    /// Removes an item.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Takes the refresh claim of `key` until `until`, atomically; returns
    /// whether this call holds it. A claim whose `until` is not after `now` is free.
    async fn claim(
        &self,
        key: &str,
        now: Timestamp,
        until: Timestamp,
        mode: ClaimMode,
    ) -> Result<bool, StoreError>;

    /// Releases the refresh claim of `key`.
    async fn release(&self, key: &str) -> Result<(), StoreError>;

    /// Whether someone holds the refresh claim of `key` at `now`.
    async fn is_claimed(&self, key: &str, now: Timestamp) -> Result<bool, StoreError>;

    /// Removes every item and claim of this store, and nothing else.
    async fn clear(&self) -> Result<(), StoreError>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
