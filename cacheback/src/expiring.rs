//! [`Expiring`]: a bounded in-process map whose entries expire, read without
//! housekeeping: what [`MemoryStore`](crate::store::MemoryStore) keeps its
//! items in and [`LocalCache`](crate::LocalCache) its copies.
//!
//! On [quick_cache](https://docs.rs/quick_cache) rather than moka, for the
//! HIT: a moka read records itself in a log that every 64th reader drains on
//! its own thread (a 4 µs read, measured by `cargo bench -p cacheback --bench
//! hit`, against 0.1 µs for the others), where a quick_cache read takes a
//! shard's read lock and sets a flag, and eviction is paid by writes. What
//! quick_cache lacks is an expiry per entry: an entry carries its deadline,
//! a read past it finds nothing (and drops it), and expired entries that are
//! never read again go when the capacity needs their room or
//! [`purge`](Expiring::purge) runs.

use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, EntryAction, EntryResult};

/// A bounded map of `String` keys to `V`s that expire.
pub(crate) struct Expiring<V: Clone> {
    entries: Cache<String, Entry<V>>,
}

#[derive(Clone)]
struct Entry<V> {
    value: V,
    /// `None`: kept until evicted (a time to live past `Instant`'s range).
    until: Option<Instant>,
}

impl<V> Entry<V> {
    fn new(value: V, ttl: Duration) -> Self {
        Self { value, until: Instant::now().checked_add(ttl) }
    }

    fn live(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

impl<V: Clone> Expiring<V> {
    /// A map holding up to about `capacity` entries (the least useful are
    /// evicted first).
    pub(crate) fn new(capacity: u64) -> Self {
        Self { entries: Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX)) }
    }

    /// The live value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let entry = self.entries.get(key)?;
        let now = Instant::now();
        if entry.live(now) {
            return Some(entry.value);
        }
        self.entries.remove_if(key, |entry| !entry.live(now));
        None
    }

    /// The value under `key`, live or not, and for how long it has been
    /// expired (`None`: live); removes nothing.
    pub(crate) fn peek(&self, key: &str) -> Option<(V, Option<Duration>)> {
        let entry = self.entries.get(key)?;
        let expired_for = entry.until.and_then(|until| Instant::now().checked_duration_since(until));
        Some((entry.value, expired_for))
    }

    /// Writes `value` under `key`, kept for `ttl`.
    pub(crate) fn insert(&self, key: &str, value: V, ttl: Duration) {
        self.entries.insert(key.to_owned(), Entry::new(value, ttl));
    }

    /// Writes `value` under `key`, kept for `ttl`, if `write(current)` says so
    /// of the live value there (`None` for none), in one step: no other write
    /// of `key` comes between the look and the write. Returns whether it wrote.
    /// `write` runs while the key's shard is locked (or its place held): it
    /// must not use this map.
    pub(crate) fn insert_if(
        &self,
        key: &str,
        value: V,
        ttl: Duration,
        write: impl FnOnce(Option<&V>) -> bool,
    ) -> bool {
        let now = Instant::now();
        let mut new = Some(Entry::new(value, ttl));
        let mut write = Some(write);
        // The closure runs under the shard's write lock, which every write takes.
        let result = self.entries.entry(key, None, |_, current| {
            let decide = write.take().expect("quick_cache runs the closure at most once");
            if decide(Some(&current.value).filter(|_| current.live(now))) {
                *current = new.take().expect("the entry is written once");
                EntryAction::Retain(true)
            } else {
                EntryAction::Retain(false)
            }
        });
        match result {
            EntryResult::Retained(written) => written,
            // Nothing under the key: a placeholder holds its place meanwhile.
            // Its insert fails if a plain write came first, as if it had come
            // before this look.
            EntryResult::Vacant(guard) => match (write.take(), new.take()) {
                (Some(decide), Some(new)) => decide(None) && guard.insert(new).is_ok(),
                _ => false,
            },
            EntryResult::Removed(..) | EntryResult::Replaced(..) | EntryResult::Timeout => false,
        }
    }

    /// Removes `key`'s value, if `remove(value)` says so; with `|_| true`, whatever it is.
    pub(crate) fn remove_if(&self, key: &str, remove: impl FnOnce(&V) -> bool) {
        self.entries.remove_if(key, |entry| remove(&entry.value));
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        self.entries.clear();
    }

    /// Drops the expired entries; returns how many live ones are left whose
    /// key `counts`.
    pub(crate) fn purge(&self, counts: impl Fn(&str) -> bool) -> u64 {
        let now = Instant::now();
        let counted = std::sync::atomic::AtomicU64::new(0);
        self.entries.retain(|key, entry| {
            let live = entry.live(now);
            if live && counts(key) {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            live
        });
        counted.into_inner()
    }

    /// How many entries are held, expired or not.
    pub(crate) fn len(&self) -> u64 {
        self.entries.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_their_ttl() {
        let map = Expiring::new(100);
        map.insert("short", 1, Duration::from_millis(30));
        map.insert("long", 2, Duration::from_secs(60));
        map.insert("forever", 3, Duration::MAX);
        assert_eq!(map.get("short"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!((map.get("short"), map.get("long"), map.get("forever")), (None, Some(2), Some(3)));
        assert_eq!(map.len(), 2, "the expired entry was dropped when read");
        map.insert("short", 1, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(map.purge(|_| true), 2);
    }

    #[test]
    fn insert_if_sees_the_live_value_and_writes_once() {
        let map = Expiring::new(100);
        assert!(map.insert_if("k", 1, Duration::from_secs(60), |current| current.is_none()));
        assert!(!map.insert_if("k", 2, Duration::from_secs(60), |current| current.is_none()));
        assert!(map.insert_if("k", 3, Duration::from_secs(60), |current| current == Some(&1)));
        assert_eq!(map.get("k"), Some(3));
        // An expired value is no value.
        map.insert("gone", 1, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(10));
        assert!(map.insert_if("gone", 2, Duration::from_secs(60), |current| current.is_none()));
        assert_eq!(map.get("gone"), Some(2));
    }

    #[test]
    fn one_of_many_racing_writers_of_a_missing_key_writes() {
        for _ in 0..200 {
            let map = std::sync::Arc::new(Expiring::new(100));
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let writers: Vec<_> = (0..4)
                .map(|i| {
                    let (map, barrier) = (map.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        map.insert_if("k", i, Duration::from_secs(60), |current| current.is_none())
                    })
                })
                .collect();
            let won = writers.into_iter().map(|w| w.join().unwrap()).filter(|won| *won).count();
            assert_eq!(won, 1);
        }
    }

    #[test]
    fn a_plain_write_between_the_look_and_the_write_wins() {
        let map = Expiring::new(100);
        // The decision runs between the look (nothing there) and the write:
        // a plain write landing meanwhile makes the conditional one fail.
        let written = map.insert_if("k", 1, Duration::from_secs(60), |current| {
            assert!(current.is_none());
            map.insert("k", 2, Duration::from_secs(60));
            true
        });
        assert!(!written);
        assert_eq!(map.get("k"), Some(2));
    }
}
