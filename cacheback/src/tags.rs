//! Tags: a group of items made stale at once, in O(1), by
//! [`Cacheback::invalidate_tag`](crate::Cacheback::invalidate_tag).
//!
//! Symfony's `TagAwareAdapter` scheme, on any [`CacheStore`]: each tag has a
//! *version*, an entry of the store under [`tag_version_key`] (the format is the
//! store's: `cacheback.tag:<tag>`); an item is stored
//! with the versions its tags had when its fetch started; an item whose
//! versions are not the current ones is stale, since its tag was
//! invalidated, and takes the normal STALE path. An invalidation writes one
//! new version per store, however many items carry the tag, and an item is
//! read with its tags' versions in one [`get_many`](CacheStore::get_many)
//! (one `MGET` on Redis).
//!
//! A version is `"<time> <unique hex>"`: the time (on the engine's clock) is
//! when the tag was invalidated, so a tag-stale item is stale *since then*
//! (what `fetch_on_stale_threshold` counts from); the hex makes every
//! version new, so a version the store lost (evicted, cleared) and then
//! wrote again can never match one an item was stored with. A tag never
//! invalidated has no version, and an item stored meanwhile records none.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::clock::Timestamp;
use crate::engine::Cacheback;
use crate::error::Error;
use crate::item::{CachedItem, TagVersions};
use crate::store::{CacheStore, MAX_CLAIM_TTL, StoredValue, tag_version_key};

/// How long the store keeps a tag's version: a year, renewed by each
/// invalidation. A version that expires makes the items stored with it
/// stale once, which is safe.
pub(crate) const VERSION_TTL: Duration = MAX_CLAIM_TTL;

/// A new version of a tag invalidated at `now`.
pub(crate) fn new_version(now: Timestamp) -> StoredValue {
    StoredValue::Encoded(Bytes::from(format!("{now} {}", crate::id::unique_hex(8))))
}

/// The versions of `tags` (in order) as read from the store, for an item
/// stored now: the ones that have a version.
pub(crate) fn versions_of(tags: &[String], read: &[Option<StoredValue>]) -> Option<TagVersions> {
    let versions: Vec<(Box<str>, Box<str>)> = tags
        .iter()
        .zip(read)
        .filter_map(|(tag, version)| Some((tag.as_str().into(), text(version.as_ref()?)?.into())))
        .collect();
    (!versions.is_empty()).then(|| versions.into())
}

/// Reads the versions of `tags` from `store`, in one call; `None` for tags
/// without one. An unreadable store gives none: an item stored with no
/// versions is stale at the next read if any of its tags has one, which is
/// the safe side.
pub(crate) async fn read_versions(store: &dyn CacheStore, tags: &[String]) -> Option<TagVersions> {
    if tags.is_empty() {
        return None;
    }
    let keys: Vec<String> = tags.iter().map(|tag| tag_version_key(tag)).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    match store.get_many(&keys).await {
        Ok(read) => versions_of(tags, &read),
        Err(err) => {
            tracing::warn!(target: "cacheback", error = %err, "Unable to read tag versions; storing the item without them");
            None
        }
    }
}

/// `item` as its tags make it: unchanged if every tag in `tags` has the
/// version the item was stored with (in `read`, in the order of `tags`);
/// otherwise stale since the latest invalidation that it missed (its expiry
/// brought back to then, never later than it was), and carrying the current
/// versions, so that its re-store for a refresh is fresh again until the
/// refresh lands or times out. The placeholder of a MISS being refreshed
/// is left as it is: what it waits for is a fetch.
pub(crate) fn checked<T>(
    mut item: CachedItem<T>,
    tags: &[String],
    read: &[Option<StoredValue>],
    now: Timestamp,
) -> CachedItem<T> {
    if item.data.is_none() {
        return item;
    }
    let mut stale_since: Option<Timestamp> = None;
    for (tag, current) in tags.iter().zip(read) {
        let current = current.as_ref().and_then(text);
        let stored = item.tags.as_deref().and_then(|versions| {
            versions.iter().find(|(name, _)| **name == **tag).map(|(_, version)| &**version)
        });
        if current == stored {
            continue;
        }
        // A version lost by the store (no current one) went at an unknown
        // time: count it from now.
        let at = current.and_then(invalidated_at).unwrap_or(now).min(now);
        stale_since = Some(stale_since.map_or(at, |since| since.max(at)));
    }
    if let Some(since) = stale_since {
        // Stale now, even when invalidated this very instant.
        item.expiry = item.expiry.min(since).min(now.next_down());
        item.tags = versions_of(tags, read);
    }
    item
}

impl Cacheback {
    /// Makes every item carrying `tag` stale (see [`Job::tags`](crate::Job::tags)),
    /// in every store and in every process sharing one, without looking for
    /// the items: one write of the tag's new version per store, however many
    /// items carry it. An item read afterwards takes the STALE path (served
    /// while exactly one refresh is queued; `fetch_on_stale_threshold` counts
    /// from now, `max_stale_age` from its fetch); an item whose fetch starts
    /// afterwards is fresh. This process's local copies are dropped; another
    /// process's may serve the old data for up to their `ttl_ms`.
    ///
    /// Every store is written even if one fails; the first failure is
    /// returned.
    ///
    /// ```
    /// use cacheback::{Cacheback, CacheStatus, FetchError, Job};
    /// # struct Articles;
    /// # impl Job for Articles {
    /// #     type Args = ();
    /// #     type Output = Vec<String>;
    /// #     async fn fetch(&self, _: &()) -> Result<Vec<String>, FetchError> { Ok(vec![]) }
    /// #     fn tags(&self, _: &()) -> Vec<String> { vec!["articles".into()] }
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = Cacheback::builder().build().unwrap();
    /// let articles = cache.job(Articles); // tagged "articles"
    /// articles.get(&()).await.unwrap();
    /// cache.invalidate_tag("articles").await.unwrap();
    /// let found = articles.lookup(&()).await.unwrap();
    /// assert_eq!((found.status, found.sync_fetch), (CacheStatus::Stale, Some(false)));
    /// # });
    /// ```
    pub async fn invalidate_tag(&self, tag: &str) -> Result<(), Error> {
        let (key, mut first_error, mut written) = (tag_version_key(tag), None, Vec::new());
        for alias in self.aliases() {
            let store = Arc::clone(self.store(&alias)?);
            if let Some(local) = self.local_cache(&alias) {
                local.clear();
            }
            // Two aliases on one store: one write.
            if written.iter().any(|done| Arc::ptr_eq(done, &store)) {
                continue;
            }
            let version = new_version(self.now());
            match store.set(&key, version, VERSION_TTL).await {
                Ok(()) => written.push(store),
                Err(source) => {
                    tracing::error!(target: "cacheback", %alias, %tag, error = %source, "Unable to invalidate the tag");
                    first_error.get_or_insert(Error::StoreAdmin { alias, op: "invalidate a tag of", source });
                }
            }
        }
        tracing::info!(target: "cacheback", %tag, stores = written.len(), "Tag invalidated");
        first_error.map_or(Ok(()), Err)
    }
}

/// A version as text; `None` for bytes that are not (not written by
/// cacheback), which match nothing.
fn text(version: &StoredValue) -> Option<&str> {
    match version {
        StoredValue::Encoded(bytes) => std::str::from_utf8(bytes).ok(),
        StoredValue::Shared(_) => None,
    }
}

/// When a version was written: its first word.
fn invalidated_at(version: &str) -> Option<Timestamp> {
    version.split(' ').next()?.parse().ok().filter(|t: &f64| t.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(versions: &[Option<&str>]) -> Vec<Option<StoredValue>> {
        versions.iter().map(|v| v.map(|v| StoredValue::Encoded(Bytes::from(v.to_owned())))).collect()
    }

    fn item(versions: Option<TagVersions>) -> CachedItem<u32> {
        CachedItem { tags: versions, ..CachedItem::new(100.0, Some(Arc::new(1)), Some(40.0)) }
    }

    #[test]
    fn an_item_is_fresh_while_its_tags_keep_the_versions_it_was_stored_with() {
        let tags = ["a".to_owned(), "b".to_owned()];
        let at_store = read(&[Some("10 x"), None]);
        let stored = item(versions_of(&tags, &at_store));
        assert_eq!(checked(stored.clone(), &tags, &at_store, 50.0), stored);
        // Never invalidated, before and after.
        assert_eq!(checked(item(None), &tags, &read(&[None, None]), 50.0), item(None));
    }

    #[test]
    fn a_new_version_makes_it_stale_since_the_invalidation_with_the_new_versions() {
        let tags = ["a".to_owned(), "b".to_owned()];
        let stored = item(versions_of(&tags, &read(&[Some("10 x"), None])));
        let now = read(&[Some("10 x"), Some("45.5 y")]);
        let found = checked(stored, &tags, &now, 50.0);
        assert_eq!(found.expiry, 45.5);
        assert_eq!(found.tags, versions_of(&tags, &now), "re-stored, it is fresh again");
        assert_eq!(checked(found.clone(), &tags, &now, 51.0), found);
    }

    #[test]
    fn a_lost_or_foreign_version_is_stale_from_now_and_never_later_than_the_expiry() {
        let tags = ["a".to_owned()];
        let stored = item(versions_of(&tags, &read(&[Some("10 x")])));
        let just_now = 50.0_f64.next_down();
        assert_eq!(checked(stored.clone(), &tags, &read(&[None]), 50.0).expiry, just_now);
        assert_eq!(checked(stored.clone(), &tags, &read(&[Some("garbage")]), 50.0).expiry, just_now);
        assert_eq!(checked(stored.clone(), &tags, &read(&[Some("1e400 z")]), 50.0).expiry, just_now);
        // An invalidation "in the future" (another clock), or this instant, counts from now.
        assert_eq!(checked(stored.clone(), &tags, &read(&[Some("70 z")]), 50.0).expiry, just_now);
        assert_eq!(checked(stored.clone(), &tags, &read(&[Some("50 z")]), 50.0).expiry, just_now);
        // Already stale by its expiry: stays so.
        assert_eq!(checked(stored, &tags, &read(&[Some("150 z")]), 120.0).expiry, 100.0);
    }

    #[test]
    fn every_version_is_new() {
        let (a, b) = (new_version(5.0), new_version(5.0));
        assert!(!a.same_as(&b));
        assert_eq!(text(&a).and_then(invalidated_at), Some(5.0));
        assert!(crate::store::is_tag_version_key(&tag_version_key("users")));
        assert!(!crate::store::is_tag_version_key("app::Job:0123"));
    }
}
