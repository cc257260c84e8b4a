use std::time::Duration;

use async_trait::async_trait;

use super::{CacheStore, Representation, StoredValue};
use crate::clock::Timestamp;
use crate::error::StoreError;

/// A store that keeps nothing (Django's `DummyCache`): every read misses.
///
/// Useful to switch caching off per alias. With `verify_cache_write` on (the
/// default), storing a non-empty value in it is an error, as in the original.
/// Claims always succeed, so refreshes are never suppressed.
///
/// ```
/// use std::time::Duration;
/// use cacheback::store::{CacheStore, NullStore, StoredValue};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = NullStore;
/// store.set("k", StoredValue::Encoded("x".into()), Duration::from_secs(1)).await.unwrap();
/// assert!(store.get("k").await.unwrap().is_none());
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NullStore;

#[async_trait]
impl CacheStore for NullStore {
    fn representation(&self) -> Representation {
        Representation::Shared
    }
    async fn get(&self, _key: &str) -> Result<Option<StoredValue>, StoreError> {
        Ok(None)
    }
    fn get_now(&self, _key: &str) -> Option<Result<Option<StoredValue>, StoreError>> {
        Some(Ok(None))
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<StoredValue>>, StoreError> {
        Ok(vec![None; keys.len()])
    }
    async fn set(&self, _key: &str, _value: StoredValue, _ttl: Duration) -> Result<(), StoreError> {
        Ok(())
    }
    async fn delete(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// Nothing is stored, so every reader "writes": each fetches for itself.
    async fn replace(
        &self,
        _key: &str,
        _expected: Option<&StoredValue>,
        _value: StoredValue,
        _ttl: Duration,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn claim(
        &self,
        _key: &str,
        _token: &str,
        _now: Timestamp,
        _until: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn release(&self, _key: &str, _token: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn is_claimed(&self, _key: &str, _now: Timestamp) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn clear(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn item_count(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(0))
    }
}
