use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::AsyncCommands;

use super::{CacheStore, Representation, StoredValue};
use crate::clock::Timestamp;
use crate::connection::{RedisConnection, Target};
use crate::error::StoreError;

/// The default key prefix of a [`RedisStore`].
pub const DEFAULT_KEY_PREFIX: &str = "cacheback:";

/// A store in Redis, shared by every process that points at it: one server
/// ([`builder`](Self::builder)) or a Redis Cluster
/// ([`cluster_builder`](Self::cluster_builder)).
///
/// Items live under `<prefix>item:<key>` and claims under
/// `<prefix>lock:<key>` (`<until> <token>`). Compare-and-set, claims and
/// their release by their token are Lua scripts, atomic across processes; a
/// claim whose time has passed on the engine's clock is free. The connection
/// reconnects by itself after Redis restarts. [`clear`](CacheStore::clear)
/// removes only those two kinds of keys, never `FLUSHDB` nor anything else
/// under the prefix: the database may hold queues too, even under the same
/// prefix.
///
/// On a Cluster every script touches one key (an item, or a claim), so each
/// runs on the primary of that key's slot; `MGET`s are split per slot by the
/// client, and `clear` and `item_count` scan every primary.
///
/// ```no_run
/// use cacheback::store::RedisStore;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .key_prefix("myapp:cache:")
///     .connect()
///     .await
///     .unwrap();
/// # let _ = store;
/// # });
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConnection,
    prefix: String,
    target: Target,
    timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("at", &self.target.to_string())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisStore {
    /// Connects with the default settings.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = cacheback::store::RedisStore::connect("redis://127.0.0.1/").await.unwrap();
    /// # let _ = store;
    /// # });
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Configures a store for `url`.
    ///
    /// ```
    /// let builder = cacheback::store::RedisStore::builder("redis://127.0.0.1/").key_prefix("app:");
    /// # let _ = builder;
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target: Target::Url(url.into()),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: crate::connection::DEFAULT_TIMEOUT,
        }
    }

    /// Configures a store on the Redis Cluster of the seed `nodes` (the URLs
    /// of any of its nodes; the client discovers the others).
    ///
    /// ```
    /// let builder = cacheback::store::RedisStore::cluster_builder(["redis://127.0.0.1:7101", "redis://127.0.0.1:7102"]);
    /// # let _ = builder;
    /// ```
    pub fn cluster_builder(nodes: impl IntoIterator<Item = impl Into<String>>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target: Target::Cluster(nodes.into_iter().map(Into::into).collect()),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: crate::connection::DEFAULT_TIMEOUT,
        }
    }

    /// Configures a store on the master of a Redis Sentinel `group`,
    /// followed through failovers: the sentinels are asked again when a
    /// request fails on the connection or as on a demoted master
    /// (`READONLY`), and when they announce `+switch-master`.
    ///
    /// ```
    /// use cacheback::SentinelGroup;
    /// let group = SentinelGroup::new("mymaster", ["127.0.0.1:26379", "127.0.0.1:26380"]).password("secret");
    /// let builder = cacheback::store::RedisStore::sentinel_builder(group);
    /// # let _ = builder;
    /// ```
    pub fn sentinel_builder(group: crate::SentinelGroup) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target: Target::Sentinel(group),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: crate::connection::DEFAULT_TIMEOUT,
        }
    }

    /// Where this store's writes are, for a tracker keeping a local copy
    /// coherent ([`LocalCache::keep_coherent`](crate::LocalCache::keep_coherent)).
    pub(crate) fn tracking_source(&self) -> crate::tracking::Source {
        crate::tracking::Source {
            conn: self.conn.clone(),
            target: self.target.clone(),
            item_prefix: self.item_key(""),
            timeout: self.timeout,
        }
    }

    /// Where this store is (its URL, its Cluster's seed nodes, its Sentinel
    /// group), for messages.
    pub(crate) fn describe(&self) -> String {
        self.target.to_string()
    }

    /// The key prefix.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = cacheback::store::RedisStore::connect("redis://127.0.0.1/").await.unwrap();
    /// assert_eq!(store.key_prefix(), "cacheback:");
    /// # });
    /// ```
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn item_key(&self, key: &str) -> String {
        self.namespaced(ITEM, key)
    }

    fn lock_key(&self, key: &str) -> String {
        self.namespaced(LOCK, key)
    }

    /// `<prefix><namespace><key>`, in one allocation (`format!` costs a
    /// bulk read of 100 keys a tenth of its time).
    fn namespaced(&self, namespace: &str, key: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + namespace.len() + key.len());
        out.push_str(&self.prefix);
        out.push_str(namespace);
        out.push_str(key);
        out
    }
}

/// Builds a [`RedisStore`].
///
/// ```
/// use std::time::Duration;
/// let builder = cacheback::store::RedisStore::builder("redis://127.0.0.1/")
///     .timeout(Duration::from_millis(500));
/// # let _ = builder;
/// ```
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    timeout: Duration,
}

impl RedisStoreBuilder {
    /// The prefix of every key this store writes (default `cacheback:`). Must not be empty.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The connect and response timeout (default 2 s): how long a request
    /// waits on an unreachable Redis before failing over.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        if self.prefix.is_empty() {
            return Err(StoreError::new(
                "the key prefix must not be empty: clear() removes the keys under it",
            ));
        }
        match &self.target {
            Target::Cluster(nodes) if nodes.is_empty() => {
                return Err(StoreError::new("a Redis Cluster needs at least one seed node"));
            }
            Target::Sentinel(group) if group.sentinels.is_empty() => {
                return Err(StoreError::new("a Redis Sentinel group needs at least one sentinel"));
            }
            _ => {}
        }
        let conn = crate::connection::connect(&self.target, self.timeout)
            .await
            .map_err(|(message, e)| StoreError::with_source(message, e))?;
        Ok(RedisStore { conn, prefix: self.prefix, target: self.target, timeout: self.timeout })
    }
}

/// A TTL in Redis's milliseconds: at least 1, and at most a century, as
/// Redis refuses an expiry past `i64` milliseconds from now (a
/// `cache_ttl` of `Duration::MAX` keeps the item, instead of failing its write).
fn millis(ttl: Duration) -> u64 {
    const CENTURY_MS: u64 = 100 * 365 * 86_400_000;
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).clamp(1, CENTURY_MS)
}

#[async_trait]
impl CacheStore for RedisStore {
    fn representation(&self) -> Representation {
        Representation::Encoded
    }

    async fn get(&self, key: &str) -> Result<Option<StoredValue>, StoreError> {
        let value: Option<Vec<u8>> =
            self.conn.clone().get(self.item_key(key)).await.map_err(StoreError::redis)?;
        Ok(value.map(|v| StoredValue::Encoded(Bytes::from(v))))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<StoredValue>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Each key written into the command through one buffer, not a
        // `String` each.
        let (mut command, mut buffer) = (redis::cmd("MGET"), String::new());
        for key in keys {
            buffer.clear();
            buffer.extend([self.prefix.as_str(), ITEM, key]);
            command.arg(buffer.as_str());
        }
        let values: Vec<Option<Vec<u8>>> =
            command.query_async(&mut self.conn.clone()).await.map_err(StoreError::redis)?;
        Ok(values.into_iter().map(|v| v.map(|v| StoredValue::Encoded(Bytes::from(v)))).collect())
    }

    async fn set(&self, key: &str, value: StoredValue, ttl: Duration) -> Result<(), StoreError> {
        let StoredValue::Encoded(bytes) = value else {
            return Err(StoreError::new("RedisStore stores encoded values only"));
        };
        let opts = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(millis(ttl)));
        let () = self
            .conn
            .clone()
            .set_options(self.item_key(key), bytes.as_ref(), opts)
            .await
            .map_err(StoreError::redis)?;
        Ok(())
    }

    async fn replace(
        &self,
        key: &str,
        expected: Option<&StoredValue>,
        value: StoredValue,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let StoredValue::Encoded(bytes) = value else {
            return Err(StoreError::new("RedisStore stores encoded values only"));
        };
        let expected = match expected {
            None => None,
            Some(StoredValue::Encoded(expected)) => Some(expected),
            // A shared value was never read from Redis: it cannot be what Redis holds.
            Some(StoredValue::Shared(_)) => return Ok(false),
        };
        let won: i64 = replace_script()
            .key(self.item_key(key))
            .arg(u8::from(expected.is_some()))
            .arg(expected.map_or(&b""[..], |e| e.as_ref()))
            .arg(bytes.as_ref())
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::redis)?;
        Ok(won == 1)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let _: i64 = self.conn.clone().del(self.item_key(key)).await.map_err(StoreError::redis)?;
        Ok(())
    }

    async fn claim(
        &self,
        key: &str,
        token: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let ttl = super::claim_ttl(now, until);
        let won: i64 = claim_script()
            .key(self.lock_key(key))
            .arg(now.to_string())
            .arg(until.to_string())
            .arg(token)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::redis)?;
        Ok(won == 1)
    }

    async fn release(&self, key: &str, token: &str) -> Result<(), StoreError> {
        let _: i64 = release_script()
            .key(self.lock_key(key))
            .arg(token)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(StoreError::redis)?;
        Ok(())
    }

    async fn is_claimed(&self, key: &str, now: Timestamp) -> Result<bool, StoreError> {
        let held: Option<String> =
            self.conn.clone().get(self.lock_key(key)).await.map_err(StoreError::redis)?;
        Ok(held.as_deref().and_then(claim_until).is_some_and(|until| until > now))
    }

    /// Unlinks the keys this store writes, `<prefix>item:*` and
    /// `<prefix>lock:*`, and nothing else under the prefix: the queue's keys
    /// (`cacheback:workers`, `cacheback:working:*`, …) may share the database
    /// and even the prefix, and a clear must never lose an in-flight refresh.
    async fn clear(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        for node in self.nodes().await? {
            for pattern in self.own_patterns() {
                let mut cursor = Some(0);
                while let Some(at) = cursor {
                    let (next, keys) = scan_page(&mut conn, &node, at, &pattern).await?;
                    if !keys.is_empty() {
                        // On a Cluster the client splits it per slot.
                        let _: i64 = redis::cmd("UNLINK")
                            .arg(&keys)
                            .query_async(&mut conn)
                            .await
                            .map_err(StoreError::redis)?;
                    }
                    cursor = next;
                }
            }
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String =
            redis::cmd("PING").query_async(&mut self.conn.clone()).await.map_err(StoreError::redis)?;
        Ok(())
    }

    /// Counts the keys under `<prefix>item:` with `SCAN`.
    async fn item_count(&self) -> Result<Option<u64>, StoreError> {
        let (mut conn, pattern) = (self.conn.clone(), self.pattern(ITEM));
        let mut count = 0;
        for node in self.nodes().await? {
            let mut cursor = Some(0);
            while let Some(at) = cursor {
                let (next, keys) = scan_page(&mut conn, &node, at, &pattern).await?;
                // Tags' versions live among the items, and are not items.
                let item_at = self.prefix.len() + ITEM.len();
                count += keys
                    .iter()
                    .filter(|key| !key.get(item_at..).is_some_and(super::is_tag_version_key))
                    .count() as u64;
                cursor = next;
            }
        }
        Ok(Some(count))
    }
}

/// The namespace of items under the prefix.
const ITEM: &str = "item:";
/// The namespace of claims under the prefix.
const LOCK: &str = "lock:";

impl RedisStore {
    /// `<prefix><namespace>*`, the prefix's glob characters escaped.
    fn pattern(&self, namespace: &str) -> String {
        format!("{}{namespace}*", escape_glob(&self.prefix))
    }

    /// The patterns of every key this store writes: what `clear` removes.
    fn own_patterns(&self) -> [String; 2] {
        [self.pattern(ITEM), self.pattern(LOCK)]
    }

    /// Where a `SCAN` of every key must go: the one server, or each primary
    /// of the Cluster (the client does not fan a `SCAN` out).
    async fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        match self.conn.clone().primaries().await {
            None => Ok(vec![Node::Any]),
            Some(primaries) => Ok(primaries
                .map_err(StoreError::redis)?
                .into_iter()
                .map(|(host, port)| Node::At(host, port))
                .collect()),
        }
    }
}

/// A node to scan: the server of a plain connection, or a primary by address.
enum Node {
    Any,
    At(String, u16),
}

/// One page of `SCAN` (never `KEYS`, which blocks Redis) from `cursor`: the
/// next cursor (`None` when the walk is done) and the keys matching `pattern`.
async fn scan_page(
    conn: &mut RedisConnection,
    node: &Node,
    cursor: u64,
    pattern: &str,
) -> Result<(Option<u64>, Vec<String>), StoreError> {
    let mut scan = redis::cmd("SCAN");
    scan.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(500);
    let page = match node {
        Node::Any => scan.query_async(conn).await,
        Node::At(host, port) => {
            let at =
                redis::cluster_routing::SingleNodeRoutingInfo::ByAddress { host: host.clone(), port: *port };
            conn.route(&scan, at).await.and_then(|page| Ok(redis::from_redis_value(page)?))
        }
    };
    let (next, keys): (u64, Vec<String>) = page.map_err(StoreError::redis)?;
    Ok(((next != 0).then_some(next), keys))
}

/// A claim's value is `<until> <token>`; the time a claim written by an
/// earlier version (`<until>` alone) is held until reads the same.
fn claim_until(held: &str) -> Option<Timestamp> {
    held.split(' ').next()?.parse().ok()
}

/// Takes a claim unless another is held past `now`.
/// KEYS[1]: the lock key. ARGV: now, until, token, TTL in ms (garbage collection only).
fn claim_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            r"
            local held = redis.call('GET', KEYS[1])
            if held then
              local untl = tonumber(string.match(held, '^[^ ]+'))
              if untl and untl > tonumber(ARGV[1]) then return 0 end
            end
            redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. ARGV[3], 'PX', ARGV[4])
            return 1
            ",
        )
    })
}

/// Releases a claim held by a token. KEYS[1]: the lock key. ARGV[1]: the token.
fn release_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            r"
            local held = redis.call('GET', KEYS[1])
            if held and string.match(held, ' (.*)$') == ARGV[1] then
              return redis.call('DEL', KEYS[1])
            end
            return 0
            ",
        )
    })
}

/// Compare-and-set of an item. KEYS[1]: the item key. ARGV: whether a value
/// is expected (`1`) or none (`0`), the expected bytes, the new bytes, the TTL in ms.
fn replace_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            r"
            local current = redis.call('GET', KEYS[1])
            if ARGV[1] == '1' then
              if current ~= ARGV[2] then return 0 end
            elseif current then
              return 0
            end
            redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
            return 1
            ",
        )
    })
}

/// Escapes Redis glob metacharacters so a prefix matches only itself.
fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_escaping() {
        assert_eq!(super::escape_glob("a*b?[c]"), "a\\*b\\?\\[c\\]");
    }
}
