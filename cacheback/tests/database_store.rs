//! What only the database store has: its rows, their purge, its timeouts
//! against a database that holds a statement, and its settings. Everything
//! it shares with the other stores runs on it through `on_every_store!`.
#![cfg(feature = "sea-orm")]

mod common;

use std::time::{Duration, Instant};

use cacheback::settings::Settings;
use cacheback::store::{CacheStore, DatabaseStore, ITEMS_TABLE, StoredValue};
use common::*;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::json;

async fn connection(backend: Backend, file: &str) -> DatabaseConnection {
    let url = if backend == Backend::Sqlite { sqlite_url(file) } else { postgres_url() };
    sea_orm::Database::connect(url).await.unwrap()
}

/// Rows of `prefix` in the items table, live or expired.
async fn rows(db: &DatabaseConnection, prefix: &str) -> i64 {
    let sql = if db.get_database_backend() == DbBackend::Sqlite {
        format!("SELECT COUNT(*) FROM {ITEMS_TABLE} WHERE prefix = ?1")
    } else {
        format!("SELECT COUNT(*) FROM {ITEMS_TABLE} WHERE prefix = $1")
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, [prefix.into()]))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

fn value(text: &str) -> StoredValue {
    StoredValue::Encoded(text.as_bytes().to_vec().into())
}

/// Expired rows are never read, nor counted, and a purge deletes them
/// (only this store's); `clear` deletes this prefix's rows and no other's.
async fn expired_rows_are_unseen_and_purged_and_clear_keeps_other_prefixes(backend: Backend) {
    let file = unique_prefix("rows");
    let (mine, theirs) = (format!("{file}mine:"), format!("{file}theirs:"));
    let store = database_store(backend, &file, &mine).await;
    let other = database_store(backend, &file, &theirs).await;
    let db = connection(backend, &file).await;
    store.set("short", value("[1.0]"), Duration::from_millis(1)).await.unwrap();
    store.set("long", value("[2.0]"), Duration::from_secs(60)).await.unwrap();
    store.set("cacheback.tag:t", value("\"v\""), Duration::from_secs(60)).await.unwrap();
    other.set("short", value("[3.0]"), Duration::from_millis(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    assert!(store.get("short").await.unwrap().is_none(), "an expired row is never returned");
    let got = store.get_many(&["short", "long", "none"]).await.unwrap();
    assert!(got[0].is_none() && got[1].is_some() && got[2].is_none());
    assert_eq!(store.item_count().await.unwrap(), Some(1), "tag versions and expired rows are no items");
    assert_eq!(rows(&db, &mine).await, 3);
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(rows(&db, &mine).await, 2);
    assert_eq!(rows(&db, &theirs).await, 1, "another prefix's expired row is its own to purge");

    // An expired row is as good as none for a compare-and-set from nothing.
    other.set("k", value("[4.0]"), Duration::from_millis(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(other.replace("k", None, value("[5.0]"), Duration::from_secs(60)).await.unwrap());

    store.clear().await.unwrap();
    assert_eq!(rows(&db, &mine).await, 0);
    assert_eq!(rows(&db, &theirs).await, 2, "clear deletes its own prefix's rows only");
}

/// A statement the database holds (a row locked by another session) fails
/// within the store's timeout, not the pool's.
async fn a_held_statement_fails_within_the_store_timeout(backend: Backend) {
    let file = unique_prefix("held");
    let url = if backend == Backend::Sqlite { sqlite_url(&file) } else { postgres_url() };
    let store = DatabaseStore::open(&url)
        .await
        .unwrap()
        .key_prefix(&file)
        .timeout(Duration::from_millis(300))
        .create_tables(true)
        .connect()
        .await
        .unwrap();
    store.set("k", value("[1.0]"), Duration::from_secs(60)).await.unwrap();
    let db = connection(backend, &file).await;
    let lock = db.begin().await.unwrap();
    let hold = match backend {
        // SQLite locks the whole file for a writer.
        Backend::Sqlite => {
            format!("UPDATE {ITEMS_TABLE} SET expires_at = expires_at WHERE prefix = '{file}'")
        }
        _ => format!("SELECT 1 FROM {ITEMS_TABLE} WHERE prefix = '{file}' FOR UPDATE"),
    };
    lock.execute_unprepared(&hold).await.unwrap();

    let started = Instant::now();
    let err = store.set("k", value("[2.0]"), Duration::from_secs(60)).await.unwrap_err();
    let took = started.elapsed();
    assert!(err.to_string().contains("did not answer within"), "{err}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    lock.rollback().await.unwrap();
    store.set("k", value("[3.0]"), Duration::from_secs(60)).await.unwrap();
}

mod postgres {
    use super::*;
    #[tokio::test]
    async fn rows() {
        expired_rows_are_unseen_and_purged_and_clear_keeps_other_prefixes(Backend::Postgres).await;
    }
    #[tokio::test]
    async fn held() {
        a_held_statement_fails_within_the_store_timeout(Backend::Postgres).await;
    }
}

mod sqlite {
    use super::*;
    #[tokio::test]
    async fn rows() {
        expired_rows_are_unseen_and_purged_and_clear_keeps_other_prefixes(Backend::Sqlite).await;
    }
    #[tokio::test]
    async fn held() {
        a_held_statement_fails_within_the_store_timeout(Backend::Sqlite).await;
    }
}

/// `backend: database` in settings, outside loco: on its `url`, or an error
/// naming the key without one; missing tables are an error naming the fix.
#[tokio::test]
async fn settings_build_a_database_store() {
    let file = unique_prefix("settings");
    let settings = |extra: serde_json::Value| {
        let mut cache = json!({ "backend": "database", "key_prefix": file });
        cache.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Settings::from_json(json!({ "caches": { "default": cache } })).unwrap()
    };
    let err = settings(json!({})).builder().await.unwrap_err().to_string();
    assert!(err.contains("initializers.cacheback.caches.default.url"), "{err}");

    let fresh = sqlite_url(&format!("{file}fresh"));
    let err = settings(json!({ "url": fresh })).builder().await.unwrap_err().to_string();
    assert!(err.contains("cacheback::store::Migration"), "{err}");

    let cache =
        settings(json!({ "url": sqlite_url(&file), "create_tables": true, "local": { "ttl_ms": 500 } }))
            .builder()
            .await
            .unwrap()
            .register_default::<FailJob>()
            .build()
            .unwrap();
    let store = cache.store("default").unwrap();
    store.set("k", value("[1.0]"), Duration::from_secs(60)).await.unwrap();
    assert!(store.get("k").await.unwrap().is_some());
    cache.ping().await.unwrap();
}

/// The migration an app adds to its `Migrator` creates the tables (twice is
/// harmless) and drops them.
#[tokio::test]
async fn the_migration_creates_and_drops_the_tables() {
    use sea_orm_migration::{MigrationTrait, SchemaManager};
    let file = unique_prefix("migration");
    let db = connection(Backend::Sqlite, &file).await;
    let manager = SchemaManager::new(&db);
    cacheback::store::Migration.up(&manager).await.unwrap();
    cacheback::store::Migration.up(&manager).await.unwrap();
    let store = DatabaseStore::builder(db.clone()).connect().await.expect("the tables are there");
    store.set("k", value("[1.0]"), Duration::from_secs(60)).await.unwrap();
    cacheback::store::Migration.down(&manager).await.unwrap();
    assert!(DatabaseStore::builder(db).connect().await.is_err(), "dropped");
}
