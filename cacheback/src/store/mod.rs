//! Cache stores: where items live, under named aliases (Django's `CACHES`).
//!
//! One trait, [`CacheStore`], and four stores: [`MemoryStore`] (in-process),
//! [`RedisStore`] (shared by every process), `DatabaseStore` (shared too, in
//! the app's PostgreSQL or SQLite; feature `sea-orm`), [`NullStore`]
//! (discards writes).
//!
//! A store also arbitrates between readers, atomically:
//!
//! * [`replace`](CacheStore::replace) writes an item only if the store still
//!   holds the one the reader read (compare-and-set). A stale or missing item
//!   is re-stored for its refresh by exactly one reader, however many see it
//!   at once, and a reader whose read predates a landed refresh cannot undo it.
//! * [`claim`](CacheStore::claim) takes a *claim* on a key for a token until a
//!   timestamp on the engine's clock: the fill lease that lets one process
//!   fetch a cold item while the others wait for it. Only the token's holder
//!   [releases](CacheStore::release) it.
//!
//! A store also keeps the versions of [tags](crate::Job::tags), which the
//! engine writes with [`set`](CacheStore::set) as small encoded values
//! (whatever the store's [`Representation`]) under keys of its own
//! (`cacheback.tag:<tag>`), and reads with the items through
//! [`get_many`](CacheStore::get_many). They are not items:
//! [`item_count`](CacheStore::item_count) leaves them out.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::clock::Timestamp;
use crate::error::StoreError;

#[cfg(feature = "sea-orm")]
mod database;
mod memory;
mod null;
mod redis;

#[cfg(feature = "sea-orm")]
pub use self::database::{
    CLAIMS_TABLE, DEFAULT_DATABASE_PREFIX, DEFAULT_DATABASE_TIMEOUT, DatabaseStore, DatabaseStoreBuilder,
    ITEMS_TABLE, Migration, PURGE_INTERVAL, database_schema,
};
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

impl StoredValue {
    /// Whether `self` is the value `other` was read as: the same shared item
    /// (by reference), or the same bytes.
    ///
    /// ```
    /// use cacheback::store::StoredValue;
    /// let a = StoredValue::Encoded(bytes::Bytes::from_static(b"[1.0]"));
    /// assert!(a.same_as(&a.clone()));
    /// assert!(!a.same_as(&StoredValue::Encoded(bytes::Bytes::from_static(b"[2.0]"))));
    /// ```
    pub fn same_as(&self, other: &StoredValue) -> bool {
        match (self, other) {
            (Self::Shared(a), Self::Shared(b)) => Arc::ptr_eq(a, b),
            (Self::Encoded(a), Self::Encoded(b)) => a == b,
            _ => false,
        }
    }
}

/// A named cache backend.
///
/// Implementations must never clear more than their own keys, by their own
/// patterns (not everything under a prefix): a Redis database may be shared
/// with queues, even under the same prefix, and with other applications.
///
/// ```
/// use std::time::Duration;
/// use cacheback::store::{CacheStore, MemoryStore, StoredValue};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let (now, until) = (1000.0, 1060.0);
/// assert!(store.claim("k", "mine", now, until).await.unwrap());
/// assert!(!store.claim("k", "theirs", now + 1.0, until).await.unwrap());
/// store.release("k", "theirs").await.unwrap(); // not theirs to release
/// assert!(store.is_claimed("k", now).await.unwrap());
/// // Once its time has passed, a claim is free again.
/// assert!(store.claim("k", "theirs", until + 1.0, until + 61.0).await.unwrap());
/// store.release("k", "theirs").await.unwrap();
/// assert!(!store.is_claimed("k", now).await.unwrap());
///
/// // Compare-and-set: only the first of two readers of the same value writes.
/// let ttl = Duration::from_secs(60);
/// let first = StoredValue::Encoded("[1.0]".into());
/// assert!(store.replace("item", None, first, ttl).await.unwrap());
/// let read = store.get("item").await.unwrap().unwrap();
/// assert!(store.replace("item", Some(&read), StoredValue::Encoded("[2.0]".into()), ttl).await.unwrap());
/// assert!(!store.replace("item", Some(&read), StoredValue::Encoded("[3.0]".into()), ttl).await.unwrap());
/// # });
/// ```
#[async_trait]
pub trait CacheStore: Send + Sync + Debug + 'static {
    /// The representation [`set`](CacheStore::set) expects.
    fn representation(&self) -> Representation;

    /// Reads an item.
    async fn get(&self, key: &str) -> Result<Option<StoredValue>, StoreError>;

    /// Reads an item at once, without a future, if this store can: an
    /// in-process store never waits to read, and answering here spares every
    /// read the boxed future of [`get`](Self::get). `None` (the default)
    /// means the read must be awaited through `get`; a store that answers
    /// answers as `get` would.
    ///
    /// ```
    /// use cacheback::store::{CacheStore, MemoryStore};
    /// assert!(matches!(MemoryStore::new().get_now("k"), Some(Ok(None))));
    /// ```
    fn get_now(&self, key: &str) -> Option<Result<Option<StoredValue>, StoreError>> {
        let _ = key;
        None
    }

    /// Reads several items at once: the answers in the order of `keys`. The
    /// default reads them one [`get`](Self::get) after another; a store with
    /// a multi-key read overrides it ([`RedisStore`]: one `MGET`). Bulk reads
    /// ([`JobHandle::get_many`](crate::JobHandle::get_many)) and tagged items
    /// (an item with the versions of its tags) read through it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheback::store::{CacheStore, MemoryStore, StoredValue};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.set("b", StoredValue::Encoded("[1.0]".into()), Duration::from_secs(60)).await.unwrap();
    /// let got = store.get_many(&["a", "b"]).await.unwrap();
    /// assert!(got[0].is_none() && got[1].is_some());
    /// # });
    /// ```
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<StoredValue>>, StoreError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }

    /// Writes an item, kept for `ttl`.
    async fn set(&self, key: &str, value: StoredValue, ttl: Duration) -> Result<(), StoreError>;

    /// Writes an item, kept for `ttl`, only if the store holds `expected`
    /// under `key` ([the same](StoredValue::same_as) value, or nothing for
    /// `None`), in one atomic step; returns whether it wrote.
    async fn replace(
        &self,
        key: &str,
        expected: Option<&StoredValue>,
        value: StoredValue,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Removes an item.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Takes the claim of `key` for `token` until `until`, atomically, unless
    /// another claim is held past `now`; returns whether `token` holds it.
    async fn claim(
        &self,
        key: &str,
        token: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Releases the claim of `key` if `token` holds it; another holder's
    /// claim stays.
    async fn release(&self, key: &str, token: &str) -> Result<(), StoreError>;

    /// Whether someone holds the claim of `key` at `now`.
    async fn is_claimed(&self, key: &str, now: Timestamp) -> Result<bool, StoreError>;

    /// Removes every item and claim of this store, and nothing else: not a
    /// queue's keys under the same prefix, not another prefix's keys.
    async fn clear(&self) -> Result<(), StoreError>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// How many items the store holds, where it can tell (claims are not
    /// items); `None` when it cannot. The default cannot. For operators
    /// (`cargo loco task cacheback command:stats`), so it may be approximate
    /// and may cost a scan of the store's keys.
    ///
    /// ```
    /// use cacheback::store::{CacheStore, NullStore};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// assert_eq!(NullStore.item_count().await.unwrap(), Some(0));
    /// # });
    /// ```
    async fn item_count(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
}

/// Where a store keeps a tag's version (see [`Job::tags`](crate::Job::tags)):
/// in its items' namespace, under a name no derived key takes (those are
/// `<job name>:<hex>`, and no job is named `cacheback.tag`).
const TAG_VERSION_PREFIX: &str = "cacheback.tag:";

/// The key of `tag`'s version.
pub(crate) fn tag_version_key(tag: &str) -> String {
    let mut key = String::with_capacity(TAG_VERSION_PREFIX.len() + tag.len());
    key.push_str(TAG_VERSION_PREFIX);
    key.push_str(tag);
    key
}

/// Whether `key` (a key of a store's items) is a tag's version, not an item.
pub(crate) fn is_tag_version_key(key: &str) -> bool {
    key.starts_with(TAG_VERSION_PREFIX)
}

/// The longest a claim's record is kept: a year. A claim's record lives as
/// long as the claim (until the refresh timeout passes), and this bound is
/// only reached by a timeout beyond any real refresh (`Duration::MAX`, an
/// infinite or huge computed time), which would otherwise overflow a
/// `Duration` or the store's expiry.
pub(crate) const MAX_CLAIM_TTL: Duration = Duration::from_secs(365 * 86_400);

/// How long to keep the record of a claim taken at `now` and held `until`:
/// at least a millisecond, at most [`MAX_CLAIM_TTL`]; never a panic, whatever
/// the times (infinite, NaN, huge).
pub(crate) fn claim_ttl(now: Timestamp, until: Timestamp) -> Duration {
    let secs = (until - now).max(0.001);
    Duration::try_from_secs_f64(secs).map_or(MAX_CLAIM_TTL, |ttl| ttl.min(MAX_CLAIM_TTL))
}
