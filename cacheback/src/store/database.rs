//! [`DatabaseStore`]: items and claims in two tables of the app's database
//! (PostgreSQL or SQLite), through sea-orm.
//!
//! Written on sea-orm's raw statements rather than its entities: every
//! operation is one statement whose atomicity the database gives (an upsert
//! guarded by a `WHERE`, an `UPDATE` comparing the value read), and the
//! statements are prepared once per store, in the backend's own dialect.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};

use super::{CacheStore, Representation, StoredValue};
use crate::clock::Timestamp;
use crate::error::StoreError;

/// The table of a [`DatabaseStore`]'s items.
pub const ITEMS_TABLE: &str = "cacheback_items";
/// The table of a [`DatabaseStore`]'s claims.
pub const CLAIMS_TABLE: &str = "cacheback_claims";
/// The default key prefix of a [`DatabaseStore`]: the `prefix` column of its
/// rows, so several stores can share the tables.
pub const DEFAULT_DATABASE_PREFIX: &str = "cacheback:";
/// The default timeout of each of a [`DatabaseStore`]'s statements.
pub const DEFAULT_DATABASE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often, at most, a write starts a purge of the store's expired rows.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// How many expired rows one purge statement deletes (it repeats until none is left).
const PURGE_BATCH: u64 = 10_000;

/// The tables' definitions, for `backend`: what [`Migration`] runs and
/// [`DatabaseStoreBuilder::create_tables`] runs on first use. On PostgreSQL
/// the tables are `UNLOGGED`: a cache is rebuilt from its source, so its
/// writes skip the write-ahead log (several times faster to write), at the
/// price of an empty cache after a crash and no copy on streaming replicas,
/// which a cache does not need. `IF NOT EXISTS` throughout: running it twice
/// changes nothing.
///
/// ```
/// let sql = cacheback::store::database_schema(sea_orm::DbBackend::Postgres);
/// assert!(sql[0].starts_with("CREATE UNLOGGED TABLE IF NOT EXISTS cacheback_items"));
/// ```
pub fn database_schema(backend: DbBackend) -> Vec<String> {
    let (unlogged, bytes, int, float) = match backend {
        DbBackend::Postgres => ("UNLOGGED ", "BYTEA", "BIGINT", "DOUBLE PRECISION"),
        _ => ("", "BLOB", "INTEGER", "REAL"),
    };
    vec![
        format!(
            "CREATE {unlogged}TABLE IF NOT EXISTS {ITEMS_TABLE} (prefix TEXT NOT NULL, cache_key TEXT NOT \
             NULL, value {bytes} NOT NULL, expires_at {int} NOT NULL, PRIMARY KEY (prefix, cache_key))"
        ),
        format!("CREATE INDEX IF NOT EXISTS {ITEMS_TABLE}_expiry ON {ITEMS_TABLE} (prefix, expires_at)"),
        format!(
            "CREATE {unlogged}TABLE IF NOT EXISTS {CLAIMS_TABLE} (prefix TEXT NOT NULL, cache_key TEXT NOT \
             NULL, token TEXT NOT NULL, held_until {float} NOT NULL, expires_at {int} NOT NULL, PRIMARY \
             KEY (prefix, cache_key))"
        ),
    ]
}

/// A store in a table of the app's database (PostgreSQL or SQLite), shared by
/// every process that points at it: the store of an app that runs on its
/// database alone.
///
/// Items are rows of `cacheback_items` (`prefix`, `cache_key`, `value`,
/// `expires_at` in epoch milliseconds), claims rows of `cacheback_claims`
/// (`token`, `held_until` on the engine's clock). Every operation is one
/// statement, atomic across processes: the compare-and-set re-store is an
/// `UPDATE … WHERE value = <the value read>` (or an insert that only takes a
/// missing or expired row), a claim an upsert that only overwrites a claim
/// whose time has passed, a release a `DELETE` by token; so the rules are
/// the [`RedisStore`](super::RedisStore)'s, and exactly one process refreshes
/// a stale key.
///
/// An expired row is never returned; the first write after each
/// [`PURGE_INTERVAL`] deletes the store's expired rows in the background, so
/// dead rows are at most those that expired since the last purge.
/// [`clear`](CacheStore::clear) deletes the rows of this store's prefix and
/// nothing else. Each statement is bounded by the store's timeout (default
/// 2 s), not the pool's: a hung database fails the read over to the job
/// within it.
///
/// The tables come from [`Migration`] (add it to the app's `Migrator`), or,
/// as a fallback, from the store itself on first use with
/// [`create_tables`](DatabaseStoreBuilder::create_tables).
///
/// ```no_run
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let db = sea_orm::DatabaseConnection::default(); // a real app passes ctx.db
/// let store = cacheback::store::DatabaseStore::builder(db)
///     .key_prefix("myapp:")
///     .connect()
///     .await
///     .unwrap();
/// # let _ = store;
/// # });
/// ```
#[derive(Clone)]
pub struct DatabaseStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    prefix: String,
    timeout: Duration,
    sql: Sql,
    /// When the last purge started, in epoch milliseconds.
    last_purge: AtomicU64,
}

impl std::fmt::Debug for DatabaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseStore")
            .field("backend", &self.inner.db.get_database_backend())
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

/// Builds a [`DatabaseStore`].
///
/// ```no_run
/// # let db = sea_orm::DatabaseConnection::default(); // a real app passes ctx.db
/// let builder = cacheback::store::DatabaseStore::builder(db)
///     .timeout(std::time::Duration::from_millis(500))
///     .create_tables(true);
/// # let _ = builder;
/// ```
#[derive(Debug, Clone)]
pub struct DatabaseStoreBuilder {
    db: DatabaseConnection,
    prefix: String,
    timeout: Duration,
    create_tables: bool,
}

impl DatabaseStore {
    /// Configures a store on `db` (in a loco app, `ctx.db`).
    ///
    /// ```no_run
    /// # let db = sea_orm::DatabaseConnection::default(); // a real app passes ctx.db
    /// let builder = cacheback::store::DatabaseStore::builder(db);
    /// # let _ = builder;
    /// ```
    pub fn builder(db: DatabaseConnection) -> DatabaseStoreBuilder {
        DatabaseStoreBuilder {
            db,
            prefix: DEFAULT_DATABASE_PREFIX.to_owned(),
            timeout: DEFAULT_DATABASE_TIMEOUT,
            create_tables: false,
        }
    }

    /// Connects to the database at `url` (`postgres://…`, `sqlite://…?mode=rwc`)
    /// with sea-orm's default pool, for use without loco; the app's sea-orm
    /// must have the driver's feature.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let builder = cacheback::store::DatabaseStore::open("postgres://127.0.0.1/app").await.unwrap();
    /// let store = builder.connect().await.unwrap();
    /// # let _ = store;
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// The database cannot be reached.
    pub async fn open(url: &str) -> Result<DatabaseStoreBuilder, StoreError> {
        let db = sea_orm::Database::connect(url)
            .await
            .map_err(|e| StoreError::with_source("cannot connect to the cache's database", e))?;
        Ok(Self::builder(db))
    }

    /// The key prefix: the `prefix` column of this store's rows.
    ///
    /// ```no_run
    /// # fn f(store: cacheback::store::DatabaseStore) {
    /// assert_eq!(store.key_prefix(), "cacheback:");
    /// # }
    /// ```
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Runs `sql` with `values`, within the timeout; `what` names it in errors.
    async fn execute(&self, what: &'static str, sql: &str, values: Vec<Value>) -> Result<u64, StoreError> {
        let statement = self.statement(sql, values);
        self.bounded(what, self.inner.db.execute_raw(statement)).await.map(|done| done.rows_affected())
    }

    async fn query_one(
        &self,
        what: &'static str,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Option<sea_orm::QueryResult>, StoreError> {
        let statement = self.statement(sql, values);
        self.bounded(what, self.inner.db.query_one_raw(statement)).await
    }

    fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(self.inner.db.get_database_backend(), sql, values)
    }

    async fn bounded<T>(
        &self,
        what: &'static str,
        operation: impl Future<Output = Result<T, DbErr>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError::with_source(format!("database store: {what} failed"), e)),
            Err(_) => Err(StoreError::new(format!(
                "database store: {what} did not answer within {:?}",
                self.inner.timeout
            ))),
        }
    }

    fn prefix(&self) -> Value {
        Value::from(self.inner.prefix.as_str())
    }

    /// Starts a purge of expired rows if none started in the last [`PURGE_INTERVAL`].
    fn maybe_purge(&self, now_ms: u64) {
        let last = self.inner.last_purge.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= millis(PURGE_INTERVAL);
        if !due
            || self
                .inner
                .last_purge
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(error) = store.purge(now_ms).await {
                tracing::warn!(target: "cacheback", %error, "purging the cache's expired rows failed");
            }
        });
    }

    /// Deletes this store's rows that expired by `now_ms`, in batches;
    /// returns how many.
    ///
    /// # Errors
    ///
    /// A statement failed or timed out (what was deleted before stays deleted).
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.purge(now_ms()).await
    }

    async fn purge(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut purged = 0;
        for sql in [&self.inner.sql.purge_items, &self.inner.sql.purge_claims] {
            loop {
                let values =
                    vec![self.prefix(), Value::from(ms_value(now_ms)), Value::from(PURGE_BATCH as i64)];
                let deleted = self.execute("purge", sql, values).await?;
                purged += deleted;
                if deleted < PURGE_BATCH {
                    break;
                }
            }
        }
        Ok(purged)
    }
}

impl DatabaseStoreBuilder {
    /// The `prefix` column of this store's rows (default `cacheback:`): stores
    /// with different prefixes share the tables without seeing each other's
    /// rows. Must not be empty.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long each statement may take (default 2 s) before the operation
    /// fails and the read is served without the cache.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether [`connect`](Self::connect) creates the tables when they are
    /// missing (default `false`: they come from [`Migration`]).
    #[must_use]
    pub fn create_tables(mut self, create: bool) -> Self {
        self.create_tables = create;
        self
    }

    /// Checks the tables (creating them first with
    /// [`create_tables`](Self::create_tables)) and returns the store.
    ///
    /// # Errors
    ///
    /// The prefix is empty, the database does not answer, or the tables are
    /// missing (the message says how to add them).
    pub async fn connect(self) -> Result<DatabaseStore, StoreError> {
        if self.prefix.is_empty() {
            return Err(StoreError::new(
                "the key prefix must not be empty: clear() removes the rows under it",
            ));
        }
        let backend = self.db.get_database_backend();
        if !matches!(backend, DbBackend::Postgres | DbBackend::Sqlite) {
            return Err(StoreError::new(format!(
                "the database store runs on PostgreSQL and SQLite, not {backend:?}"
            )));
        }
        let store = DatabaseStore {
            inner: Arc::new(Inner {
                sql: Sql::new(backend),
                db: self.db,
                prefix: self.prefix,
                timeout: self.timeout,
                last_purge: AtomicU64::new(0),
            }),
        };
        if self.create_tables {
            for sql in database_schema(backend) {
                // Two processes creating them at once may both pass `IF NOT
                // EXISTS` on PostgreSQL and one fail on the catalog's unique
                // index: the tables are then there, as the probe below checks.
                if let Err(error) = store.execute("create the tables", &sql, Vec::new()).await {
                    tracing::debug!(target: "cacheback", %error, "creating the cache tables raced");
                }
            }
        }
        let probe = format!("SELECT 1 FROM {ITEMS_TABLE} WHERE 1 = 0");
        let probe_claims = format!("SELECT 1 FROM {CLAIMS_TABLE} WHERE 1 = 0");
        for sql in [probe, probe_claims] {
            store.query_one("check the tables", &sql, Vec::new()).await.map_err(|e| {
                StoreError::with_source(
                    format!(
                        "the cache tables ({ITEMS_TABLE}, {CLAIMS_TABLE}) cannot be read: add \
                         `cacheback::store::Migration` to the app's Migrator and run the migrations, or \
                         set `create_tables: true`"
                    ),
                    e,
                )
            })?;
        }
        Ok(store)
    }
}

/// The statements of a store, in its backend's dialect, written once.
struct Sql {
    get: String,
    /// Without its list of keys and closing parenthesis.
    get_many: String,
    set: String,
    replace_missing: String,
    replace_expected: String,
    delete: String,
    claim: String,
    release: String,
    is_claimed: String,
    clear_items: String,
    clear_claims: String,
    item_count: String,
    purge_items: String,
    purge_claims: String,
}

impl Sql {
    fn new(backend: DbBackend) -> Self {
        let (items, claims) = (ITEMS_TABLE, CLAIMS_TABLE);
        // The same rows are deleted in batches on both (a `DELETE` takes no
        // `LIMIT` on PostgreSQL).
        let purge = |table: &str| {
            format!(
                "DELETE FROM {table} WHERE prefix = $1 AND cache_key IN (SELECT cache_key FROM {table} \
                 WHERE prefix = $1 AND expires_at <= $2 LIMIT $3)"
            )
        };
        let sql = Self {
            get: format!(
                "SELECT value FROM {items} WHERE prefix = $1 AND cache_key = $2 AND expires_at > $3"
            ),
            get_many: format!(
                "SELECT cache_key, value FROM {items} WHERE prefix = $1 AND expires_at > $2 AND cache_key IN ("
            ),
            set: format!(
                "INSERT INTO {items} (prefix, cache_key, value, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT \
                 (prefix, cache_key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
            ),
            // Takes the key if it holds nothing live: no row, or an expired one.
            replace_missing: format!(
                "INSERT INTO {items} (prefix, cache_key, value, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT \
                 (prefix, cache_key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
                 WHERE {items}.expires_at <= $5"
            ),
            replace_expected: format!(
                "UPDATE {items} SET value = $3, expires_at = $4 WHERE prefix = $1 AND cache_key = $2 AND \
                 expires_at > $5 AND value = $6"
            ),
            delete: format!("DELETE FROM {items} WHERE prefix = $1 AND cache_key = $2"),
            // Overwrites only a claim whose time has passed on the engine's clock.
            claim: format!(
                "INSERT INTO {claims} (prefix, cache_key, token, held_until, expires_at) VALUES ($1, $2, $3, \
                 $4, $5) ON CONFLICT (prefix, cache_key) DO UPDATE SET token = excluded.token, held_until = \
                 excluded.held_until, expires_at = excluded.expires_at WHERE {claims}.held_until <= $6 OR \
                 {claims}.expires_at <= $7"
            ),
            release: format!("DELETE FROM {claims} WHERE prefix = $1 AND cache_key = $2 AND token = $3"),
            is_claimed: format!(
                "SELECT 1 FROM {claims} WHERE prefix = $1 AND cache_key = $2 AND held_until > $3 AND \
                 expires_at > $4"
            ),
            clear_items: format!("DELETE FROM {items} WHERE prefix = $1"),
            clear_claims: format!("DELETE FROM {claims} WHERE prefix = $1"),
            // Tags' versions live among the items, and are not items.
            item_count: format!(
                "SELECT COUNT(*) FROM {items} WHERE prefix = $1 AND expires_at > $2 AND cache_key NOT LIKE \
                 '{}%'",
                super::TAG_VERSION_PREFIX
            ),
            purge_items: purge(items),
            purge_claims: purge(claims),
        };
        match backend {
            // SQLite numbers its parameters `?N`.
            DbBackend::Sqlite => sql.map(|s| s.replace('$', "?")),
            _ => sql,
        }
    }

    fn map(self, f: impl Fn(String) -> String) -> Self {
        Self {
            get: f(self.get),
            get_many: f(self.get_many),
            set: f(self.set),
            replace_missing: f(self.replace_missing),
            replace_expected: f(self.replace_expected),
            delete: f(self.delete),
            claim: f(self.claim),
            release: f(self.release),
            is_claimed: f(self.is_claimed),
            clear_items: f(self.clear_items),
            clear_claims: f(self.clear_claims),
            item_count: f(self.item_count),
            purge_items: f(self.purge_items),
            purge_claims: f(self.purge_claims),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, millis)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// An epoch-milliseconds column value (`i64`, as both databases store it).
fn ms_value(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// When an item written now for `ttl` expires: at least a millisecond on,
/// at most a century (a `Duration::MAX` TTL keeps the item).
fn expiry(now_ms: u64, ttl: Duration) -> i64 {
    const CENTURY_MS: u64 = 100 * 365 * 86_400_000;
    ms_value(now_ms.saturating_add(millis(ttl).clamp(1, CENTURY_MS)))
}

fn encoded(value: StoredValue) -> Result<Bytes, StoreError> {
    match value {
        StoredValue::Encoded(bytes) => Ok(bytes),
        StoredValue::Shared(_) => Err(StoreError::new("DatabaseStore stores encoded values only")),
    }
}

#[async_trait]
impl CacheStore for DatabaseStore {
    fn representation(&self) -> Representation {
        Representation::Encoded
    }

    async fn get(&self, key: &str) -> Result<Option<StoredValue>, StoreError> {
        let values = vec![self.prefix(), Value::from(key), Value::from(ms_value(now_ms()))];
        let Some(row) = self.query_one("get", &self.inner.sql.get, values).await? else {
            return Ok(None);
        };
        let bytes: Vec<u8> = row
            .try_get_by_index(0)
            .map_err(|e| StoreError::with_source("database store: a row's value is not bytes", e))?;
        Ok(Some(StoredValue::Encoded(Bytes::from(bytes))))
    }

    /// One `SELECT … cache_key IN (…)` per 500 keys.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<StoredValue>>, StoreError> {
        use std::fmt::Write as _;
        let sign = if self.inner.db.get_database_backend() == DbBackend::Sqlite { '?' } else { '$' };
        let mut found = std::collections::HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let mut sql = self.inner.sql.get_many.clone();
            let mut values = vec![self.prefix(), Value::from(ms_value(now_ms()))];
            // Parameters 3, 4, …: one per key.
            for (i, key) in chunk.iter().enumerate() {
                let _ = write!(sql, "{}{sign}{}", if i == 0 { "" } else { ", " }, i + 3);
                values.push(Value::from(*key));
            }
            sql.push(')');
            let statement = self.statement(&sql, values);
            for row in self.bounded("get_many", self.inner.db.query_all_raw(statement)).await? {
                let read = row
                    .try_get_by_index::<String>(0)
                    .and_then(|key| Ok((key, row.try_get_by_index::<Vec<u8>>(1)?)));
                let (key, bytes) = read.map_err(|e| {
                    StoreError::with_source("database store: a row is not a key and bytes", e)
                })?;
                found.insert(key, Bytes::from(bytes));
            }
        }
        Ok(keys.iter().map(|key| found.get(*key).cloned().map(StoredValue::Encoded)).collect())
    }

    async fn set(&self, key: &str, value: StoredValue, ttl: Duration) -> Result<(), StoreError> {
        let (bytes, now) = (encoded(value)?, now_ms());
        let values =
            vec![self.prefix(), Value::from(key), Value::from(bytes.to_vec()), Value::from(expiry(now, ttl))];
        self.execute("set", &self.inner.sql.set, values).await?;
        self.maybe_purge(now);
        Ok(())
    }

    async fn replace(
        &self,
        key: &str,
        expected: Option<&StoredValue>,
        value: StoredValue,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (bytes, now) = (encoded(value)?, now_ms());
        let mut values = vec![
            self.prefix(),
            Value::from(key),
            Value::from(bytes.to_vec()),
            Value::from(expiry(now, ttl)),
            Value::from(ms_value(now)),
        ];
        let sql = match expected {
            None => &self.inner.sql.replace_missing,
            Some(StoredValue::Encoded(expected)) => {
                values.push(Value::from(expected.to_vec()));
                &self.inner.sql.replace_expected
            }
            // A shared value was never read from the database: it cannot be what it holds.
            Some(StoredValue::Shared(_)) => return Ok(false),
        };
        let won = self.execute("replace", sql, values).await? == 1;
        self.maybe_purge(now);
        Ok(won)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.execute("delete", &self.inner.sql.delete, vec![self.prefix(), Value::from(key)]).await?;
        Ok(())
    }

    async fn claim(
        &self,
        key: &str,
        token: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let real_now = now_ms();
        let values = vec![
            self.prefix(),
            Value::from(key),
            Value::from(token),
            Value::from(until),
            Value::from(expiry(real_now, super::claim_ttl(now, until))),
            Value::from(now),
            Value::from(ms_value(real_now)),
        ];
        Ok(self.execute("claim", &self.inner.sql.claim, values).await? == 1)
    }

    async fn release(&self, key: &str, token: &str) -> Result<(), StoreError> {
        let values = vec![self.prefix(), Value::from(key), Value::from(token)];
        self.execute("release", &self.inner.sql.release, values).await?;
        Ok(())
    }

    async fn is_claimed(&self, key: &str, now: Timestamp) -> Result<bool, StoreError> {
        let values = vec![self.prefix(), Value::from(key), Value::from(now), Value::from(ms_value(now_ms()))];
        Ok(self.query_one("is_claimed", &self.inner.sql.is_claimed, values).await?.is_some())
    }

    /// Deletes this store's rows (its prefix's items and claims), and nothing else.
    async fn clear(&self) -> Result<(), StoreError> {
        self.execute("clear", &self.inner.sql.clear_items, vec![self.prefix()]).await?;
        self.execute("clear", &self.inner.sql.clear_claims, vec![self.prefix()]).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query_one("ping", "SELECT 1", Vec::new()).await.map(drop)
    }

    /// Counts this store's live item rows.
    async fn item_count(&self) -> Result<Option<u64>, StoreError> {
        let values = vec![self.prefix(), Value::from(ms_value(now_ms()))];
        let row = self.query_one("item_count", &self.inner.sql.item_count, values).await?;
        let count: i64 = row
            .map(|row| row.try_get_by_index(0))
            .transpose()
            .map_err(|e| StoreError::with_source("database store: COUNT(*) is not a number", e))?
            .unwrap_or(0);
        Ok(Some(u64::try_from(count).unwrap_or(0)))
    }
}

/// The migration that creates a [`DatabaseStore`]'s tables: add it to the
/// app's `Migrator` (feature `sea-orm`; `down` drops them).
///
/// ```
/// use sea_orm_migration::{MigrationName, MigrationTrait};
/// // impl MigratorTrait for Migrator { fn migrations() -> ... {
/// let migrations: Vec<Box<dyn MigrationTrait>> = vec![Box::new(cacheback::store::Migration)];
/// assert_eq!(migrations[0].name(), "m20261204_000001_cacheback_tables");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Migration;

impl sea_orm_migration::MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000001_cacheback_tables"
    }
}

#[async_trait]
impl sea_orm_migration::MigrationTrait for Migration {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in database_schema(db.get_database_backend()) {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in [ITEMS_TABLE, CLAIMS_TABLE] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}")).await?;
        }
        Ok(())
    }
}
