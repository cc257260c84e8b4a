//! The seed's `QuerySetJob` tests (`tests/test_jobs.py`), the model-identity
//! key test, and every bad-input case, against a real SQLite file and a real
//! PostgreSQL.
#![cfg(all(feature = "sea-orm", feature = "loco"))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cacheback::key::ByIdentity;
use cacheback::orm::{Filters, QueryError, QuerySetFilterJob, QuerySetGetJob};
use cacheback::{CacheStatus, Error, FetchError, Job, TaskOptions};
use common::*;
use sea_orm::{ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Schema, Set};

mod dummy_models {
    use sea_orm::entity::prelude::*;

    /// The seed's `DummyModel`.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
    #[sea_orm(table_name = "dummy_models")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
        pub date_created: DateTimeWithTimeZone,
        pub score: Option<f64>,
        pub active: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use dummy_models::Entity as DummyModel;

#[derive(Debug, Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A fresh database with the `dummy_models` table: a new SQLite file, or a
/// new schema in the PostgreSQL database `test`.
async fn database(db: Db) -> DatabaseConnection {
    let n = DATABASES.fetch_add(1, Ordering::SeqCst);
    let conn = match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join("cacheback-tests");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("orm-{}-{n}.sqlite", std::process::id()));
            let _ = std::fs::remove_file(&path);
            Database::connect(format!("sqlite://{}?mode=rwc", path.display())).await.unwrap()
        }
        Db::Postgres => {
            let url = std::env::var("CACHEBACK_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
            let admin = Database::connect(&url).await.unwrap_or_else(|e| {
                panic!("these tests need a real PostgreSQL at {url} (`scripts/test` starts one): {e}")
            });
            let schema = format!("cacheback_test_{}_{n}", std::process::id());
            admin
                .execute_unprepared(&format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
                ))
                .await
                .unwrap();
            let mut options = ConnectOptions::new(url);
            options.set_schema_search_path(schema).max_connections(4);
            Database::connect(options).await.unwrap()
        }
    };
    let schema = Schema::new(conn.get_database_backend());
    conn.execute(&schema.create_table_from_entity(DummyModel)).await.unwrap();
    conn
}

async fn create(db: &DatabaseConnection, name: &str) -> dummy_models::Model {
    dummy_models::ActiveModel {
        name: Set(name.to_owned()),
        date_created: Set(chrono::DateTime::parse_from_rfc3339("2012-08-07T08:23:24.718+00:00").unwrap()),
        score: Set(Some(name.len() as f64)),
        active: Set(!name.starts_with('B')),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
}

macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Db::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::Db::Postgres).await })*
        }
    };
}

on_every_database!(
    get_job_fetch,
    filter_job_fetch,
    lookups,
    get_no_row_is_not_found,
    get_several_rows_is_an_error,
    bad_input_is_a_typed_error,
    cached_filter_reads,
    async_refresh_through_the_queue,
    model_identity_keys,
    filter_keys,
    a_missing_row_is_a_404,
    get_many_is_one_in_query,
    writes_make_the_tables_reads_stale,
);

/// The seed's `TestQuerySetGetJob.test_fetch`.
async fn get_job_fetch(db: Db) {
    let db = database(db).await;
    let dummy1 = create(&db, "Foo").await;
    let job = QuerySetGetJob::<DummyModel>::new(db);
    assert_eq!(job.fetch(&Filters::new().with("name", "Foo")).await.unwrap(), dummy1);
}

/// The seed's `TestQuerySetGetFilterJob.test_fetch`.
async fn filter_job_fetch(db: Db) {
    let db = database(db).await;
    let dummy1 = create(&db, "Foo").await;
    let dummy2 = create(&db, "Bar").await;
    let dummy3 = create(&db, "Foobar").await;
    let rows = QuerySetFilterJob::<DummyModel>::new(db)
        .fetch(&Filters::new().with("name__startswith", "Foo"))
        .await
        .unwrap();
    assert!(rows.contains(&dummy1));
    assert!(!rows.contains(&dummy2));
    assert!(rows.contains(&dummy3));
}

async fn names(db: &DatabaseConnection, filters: Filters) -> Vec<String> {
    let rows = QuerySetFilterJob::<DummyModel>::new(db.clone())
        .fetch(&filters)
        .await
        .unwrap_or_else(|e| panic!("{filters:?}: {e}"));
    rows.into_iter().map(|m| m.name).collect()
}

/// Every lookup, with the same answers on SQLite and PostgreSQL.
async fn lookups(db: Db) {
    let db = database(db).await;
    for name in ["Foo", "Bar", "Foobar", "foo", "Item_1", "Item_10", "Baz_%"] {
        create(&db, name).await;
    }
    let f = |field: &str, value: serde_json::Value| Filters::new().with(field, value);
    use serde_json::json;
    assert_eq!(names(&db, f("name", json!("Foo"))).await, ["Foo"]);
    assert_eq!(names(&db, f("name__exact", json!("Foo"))).await, ["Foo"]);
    assert_eq!(names(&db, f("name__iexact", json!("FOO"))).await, ["Foo", "foo"]);
    assert_eq!(names(&db, f("name__contains", json!("oo"))).await, ["Foo", "Foobar", "foo"]);
    assert_eq!(names(&db, f("name__contains", json!("OO"))).await, Vec::<String>::new(), "case-sensitive");
    assert_eq!(names(&db, f("name__contains", json!("%"))).await, ["Baz_%"], "no LIKE wildcards");
    assert_eq!(names(&db, f("name__icontains", json!("OO"))).await, ["Foo", "Foobar", "foo"]);
    assert_eq!(names(&db, f("name__startswith", json!("Item_1"))).await, ["Item_1", "Item_10"]);
    assert_eq!(names(&db, f("name__startswith", json!("item"))).await, Vec::<String>::new());
    assert_eq!(names(&db, f("name__istartswith", json!("item_1"))).await, ["Item_1", "Item_10"]);
    assert_eq!(names(&db, f("name__endswith", json!("bar"))).await, ["Foobar"]);
    assert_eq!(names(&db, f("name__iendswith", json!("BAR"))).await, ["Bar", "Foobar"]);
    assert_eq!(names(&db, f("id__gt", json!(5))).await, ["Item_10", "Baz_%"]);
    assert_eq!(
        names(&db, f("id__gte", json!("6"))).await,
        ["Item_10", "Baz_%"],
        "numeric strings, as request parameters"
    );
    assert_eq!(names(&db, f("id__lt", json!(2))).await, ["Foo"]);
    assert_eq!(names(&db, f("id__lte", json!(2))).await, ["Foo", "Bar"]);
    assert_eq!(names(&db, f("id__in", json!([1, 3, 99]))).await, ["Foo", "Foobar"]);
    assert_eq!(names(&db, f("id__in", json!([]))).await, Vec::<String>::new());
    assert_eq!(names(&db, f("score__isnull", json!(true))).await, Vec::<String>::new());
    // Request parameters are strings.
    assert_eq!(names(&db, f("score__isnull", json!("1"))).await, Vec::<String>::new());
    assert_eq!(
        names(&db, f("score__isnull", json!("false"))).await.len(),
        names(&db, Filters::new()).await.len()
    );
    assert_eq!(names(&db, f("score__gt", json!(5.5))).await, ["Foobar", "Item_1", "Item_10"]);
    assert_eq!(names(&db, f("active", json!(false))).await, ["Bar", "Baz_%"]);
    assert_eq!(names(&db, f("date_created__lt", json!("2013-01-01T00:00:00Z"))).await.len(), 7);
    assert_eq!(names(&db, f("date_created__gt", json!("2013-01-01T00:00:00Z"))).await.len(), 0);
    let two = Filters::new().with("name__startswith", "Foo").with("id__gt", 1);
    assert_eq!(names(&db, two).await, ["Foobar"]);
    let ordered = QuerySetFilterJob::<DummyModel>::new(db.clone()).with_order_by("-name");
    let rows = ordered.fetch(&f("name__startswith", json!("Item"))).await.unwrap();
    assert_eq!(rows.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["Item_10", "Item_1"]);
}

async fn get_no_row_is_not_found(db: Db) {
    let db = database(db).await;
    let err = QuerySetGetJob::<DummyModel>::new(db)
        .fetch(&Filters::new().with("name", "Nobody"))
        .await
        .unwrap_err();
    let err = err.downcast_ref::<QueryError>().expect("a QueryError");
    assert!(matches!(err, QueryError::NotFound { .. }), "{err:?}");
    assert_eq!(err.to_string(), r#"no `dummy_models` row matches {"name":"Nobody"}"#);
}

async fn get_several_rows_is_an_error(db: Db) {
    let db = database(db).await;
    create(&db, "Twin").await;
    create(&db, "Twin").await;
    let err =
        QuerySetGetJob::<DummyModel>::new(db).fetch(&Filters::new().with("name", "Twin")).await.unwrap_err();
    let err = err.downcast_ref::<QueryError>().expect("a QueryError");
    assert!(matches!(err, QueryError::MultipleRows { .. }), "{err:?}");
}

/// Unknown column, unknown lookup, wrong value type: a typed error that names
/// the problem, before anything is cached or queried. No panic, no SQL text.
async fn bad_input_is_a_typed_error(db: Db) {
    let db = database(db).await;
    use serde_json::json;
    let parse =
        |field: &str, value: serde_json::Value| Filters::parse::<DummyModel>([(field, value)]).unwrap_err();

    let err = parse("nmae", json!("x"));
    assert!(matches!(err, QueryError::UnknownColumn { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "`nmae`: `dummy_models` has no column `nmae` (columns: id, name, date_created, score, active)"
    );
    let err = parse("name__like", json!("x"));
    assert!(matches!(&err, QueryError::UnknownLookup { lookup, .. } if lookup == "like"), "{err:?}");
    for (field, value, expected) in [
        ("id", json!("seven"), "an integer"),
        ("id__in", json!(5), "a list of an integer"),
        ("id__in", json!([1, "x"]), "a list of an integer"),
        ("name", json!(5), "a string"),
        ("name__contains", json!(null), "a string"),
        // PostgreSQL's text cannot hold NUL: refused up front on every backend.
        ("name", json!("a\u{0}b"), "a string without NUL characters"),
        ("name__icontains", json!("\u{0}"), "a string without NUL characters"),
        ("name__in", json!(["ok", "a\u{0}b"]), "a list of a string without NUL"),
        ("id__contains", json!("1"), "a text column"),
        ("score__isnull", json!("yes"), "`true` or `false`"),
        ("active", json!("maybe"), "`true` or `false`"),
        ("date_created__gt", json!("yesterday"), "a date-time with an offset"),
        ("score", json!("NaN"), "a number"),
    ] {
        let err = parse(field, value.clone());
        assert!(matches!(err, QueryError::WrongValueType { .. }), "{field}={value}: {err:?}");
        assert!(err.to_string().contains(expected), "{field}={value}: {err}");
    }

    // Through the engine: `get` fails fast with the message, for either miss policy.
    let fx = fixture(Backend::Memory).build().await;
    for fetch_on_miss in [true, false] {
        let job =
            fx.cache.job(QuerySetFilterJob::<DummyModel>::new(db.clone()).with_fetch_on_miss(fetch_on_miss));
        let err = job.get(&Filters::new().with("name__like", "x")).await.unwrap_err();
        assert!(matches!(err, Error::Key { .. }), "{err:?}");
        assert!(err.to_string().contains("unknown lookup `like`"), "{err}");
        assert!(!err.to_string().to_lowercase().contains("select"), "no SQL in {err}");
    }
    assert_eq!(fx.queue.pending(), 0, "nothing queued for bad input");
    let job = fx.cache.job(QuerySetFilterJob::<DummyModel>::new(db.clone()).with_order_by("nope"));
    assert!(job.get(&Filters::new()).await.unwrap_err().to_string().contains("has no column `nope`"));
    // A not-found `get` through the engine keeps the typed error as its source.
    let job = fx.cache.job(QuerySetGetJob::<DummyModel>::new(db));
    let err = job.get(&Filters::new().with("name", "Nobody")).await.unwrap_err();
    assert!(matches!(err.fetch_error::<QueryError>(), Some(QueryError::NotFound { .. })), "{err:?}");
}

/// Reads through the engine: the key is prefixed with the entity (the seed's
/// `test_key`), a second read is a HIT, and options are kept.
async fn cached_filter_reads(db: Db) {
    let db = database(db).await;
    for name in ["Item_1", "Item_2", "Item_10"] {
        create(&db, name).await;
    }
    let fx = fixture(Backend::Redis).build().await;
    let job = fx.cache.job(
        QuerySetFilterJob::<DummyModel>::new(db.clone())
            .with_lifetime(Duration::from_secs(30))
            .with_cache_alias("secondary")
            .with_task_options(TaskOptions::default().queue("orm")),
    );
    let filters = Filters::new().with("name__contains", "1");
    let key = job.key(&filters).unwrap();
    assert!(key.starts_with("dummy_models-cacheback::orm::QuerySetFilterJob:"), "{key}");
    assert_ne!(key, job.key(&Filters::new().with("name__contains", "2")).unwrap());
    let first = job.lookup(&filters).await.unwrap();
    assert_eq!(first.status, CacheStatus::Miss);
    assert_eq!(
        first.value.unwrap().iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["Item_1", "Item_10"]
    );
    create(&db, "Item_11").await;
    let second = job.lookup(&filters).await.unwrap();
    assert_eq!(second.status, CacheStatus::Hit);
    assert_eq!(second.value.unwrap().len(), 2, "served from the cache");
    assert!(fx.contains("secondary", &key).await);
    assert_eq!(job.job().options().lifetime, Duration::from_secs(30));
}

/// The sandbox's `QuerySetFilterJob(DummyModel, 10, False)`: a miss returns
/// empty, and the refresh, run from its payload by a worker holding only the
/// registry and a connection, fills the cache.
async fn async_refresh_through_the_queue(db: Db) {
    let db = database(db).await;
    for name in ["Item_1", "Item_2"] {
        create(&db, name).await;
    }
    let fx = fixture(Backend::Redis).build().await;
    let job = fx.cache.job(
        QuerySetFilterJob::<DummyModel>::new(db.clone())
            .with_lifetime(Duration::from_secs(10))
            .with_fetch_on_miss(false),
    );
    let filters = Filters::parse::<DummyModel>([("name", "Item_2")]).unwrap();
    assert_eq!(job.get(&filters).await.unwrap(), None);
    let payload = fx.queue.pending_payloads().remove(0);
    assert_eq!(payload.job, "cacheback::orm::QuerySetFilterJob<dummy_models>");

    let worker = cacheback::Cacheback::builder()
        .store_arc("default", std::sync::Arc::clone(fx.cache.store("default").unwrap()))
        .clock(fx.clock().clone())
        .extension(db)
        .register_model::<DummyModel>()
        .build()
        .unwrap();
    assert_eq!(worker.perform(&payload).await.unwrap(), cacheback::queue::RefreshOutcome::Refreshed);
    let rows = job.get(&filters).await.unwrap().unwrap();
    assert_eq!(rows.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["Item_2"]);
    let item = job.raw_get(&filters).await.unwrap().unwrap();
    assert_eq!(item.expiry, fx.cache.now() + 10.0, "the worker kept the job's lifetime");
}

/// The seed's `test_key_django_model`: two rows give two keys; one row gives
/// one key, whatever its other columns hold and in every process.
async fn model_identity_keys(db: Db) {
    let db = database(db).await;
    let alan = create(&db, "Alan").await;
    let john = create(&db, "John").await;
    #[derive(Default)]
    struct Greet;
    impl Job for Greet {
        type Args = (ByIdentity<dummy_models::Model>,);
        type Output = String;
        async fn fetch(&self, (m,): &Self::Args) -> Result<String, FetchError> {
            Ok(format!("hello {}", m.name))
        }
    }
    let key = |m: &dummy_models::Model| Greet.key(&(ByIdentity(m.clone()),)).unwrap();
    assert_ne!(key(&alan), key(&john));
    let mut renamed = alan.clone();
    renamed.name = "Alan T.".into();
    assert_eq!(key(&alan), key(&renamed));
    let expected = cacheback::key::derive_key(&Greet::name(), &((("dummy_models", [alan.id]),),)).unwrap();
    assert_eq!(key(&alan), expected);
}

/// A filter job's key is `<table>-<job>:<hash of {filters, order_by}>`, the
/// same for parsed (checked) filters and for filters built by hand.
async fn filter_keys(db: Db) {
    use serde_json::json;
    let db = database(db).await;
    let fx = fixture(Backend::Memory).build().await;
    let job = fx.cache.job(QuerySetFilterJob::<DummyModel>::new(db).with_order_by("name"));
    let parsed = Filters::parse::<DummyModel>([("name", "Item_1")]).unwrap();
    let built = Filters::new().with("name", "Item_1");
    assert_eq!(parsed, built);
    let expected = cacheback::key::derive_key(
        "dummy_models-cacheback::orm::QuerySetFilterJob",
        &json!({"filters": {"name": "Item_1"}, "order_by": "name"}),
    )
    .unwrap();
    assert_eq!(job.key(&parsed).unwrap(), expected);
    assert_eq!(job.key(&built).unwrap(), expected);
    // Checked against another entity is not checked against this one.
    let unchecked = Filters::new().with("nope", 1);
    assert!(matches!(job.key(&unchecked), Err(Error::Key { .. })));
}

/// Through `?` in a loco handler (`From<cacheback::Error> for loco_rs::Error`),
/// a `get` that finds no row is a 404 (loco's `NotFound`), not a 503, and is
/// no error in the logs; bad filters are a 400 and a database failure a 500
/// through `From<QueryError>`.
async fn a_missing_row_is_a_404(db: Db) {
    let db = database(db).await;
    let fx = fixture(Backend::Memory).build().await;
    let job = fx.cache.job(QuerySetGetJob::<DummyModel>::new(db.clone()));
    let (logs, _guard) = Logs::capture();
    let err = job.get(&Filters::new().with("name", "Nobody")).await.unwrap_err();
    assert!(matches!(loco_rs::Error::from(err), loco_rs::Error::NotFound));
    assert!(!logs.text().contains("ERROR"), "a missing row is not an error: {}", logs.text());
    let row = create(&db, "Somebody").await;
    let found = job.get(&Filters::new().with("id", row.id)).await.unwrap().unwrap();
    assert_eq!(found.name, "Somebody");

    let bad = Filters::parse::<DummyModel>([("nmae", serde_json::json!("x"))]).unwrap_err();
    assert!(matches!(loco_rs::Error::from(bad), loco_rs::Error::BadRequest(m) if m.contains("nmae")));
}

/// The statements a connection runs, counted (sea-orm's metric callback).
fn counting(mut db: DatabaseConnection) -> (DatabaseConnection, std::sync::Arc<AtomicUsize>) {
    let selects = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&selects);
    db.set_metric_callback(move |info| {
        if info.statement.sql.trim_start().to_uppercase().starts_with("SELECT") {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (db, selects)
}

/// `get_many` of rows by id: the misses are one `IN (...)` query, each row
/// matched back to its filters; other filters fall back to a query each; a
/// missing row fails the batch as `get` fails.
async fn get_many_is_one_in_query(db: Db) {
    let db = database(db).await;
    let mut rows = Vec::new();
    for name in ["A", "B", "C", "D", "E"] {
        rows.push(create(&db, name).await);
    }
    let (db, selects) = counting(db);
    let fx = fixture(Backend::Redis).build().await;
    let job = fx.cache.job(QuerySetGetJob::<DummyModel>::new(db));
    let by_id = |i: usize| Filters::new().with("id", rows[i].id);
    let asked = [by_id(3), by_id(0), by_id(4), by_id(0)];
    let found = job.get_many(&asked).await.unwrap();
    let names: Vec<_> = found.iter().map(|m| m.as_ref().unwrap().name.as_str()).collect();
    assert_eq!(names, ["D", "A", "E", "A"]);
    assert_eq!(selects.load(Ordering::SeqCst), 1, "one query for three rows");

    let found = job.lookup_many(&[by_id(0), by_id(1)]).await.unwrap();
    assert_eq!((found[0].status, found[1].status), (CacheStatus::Hit, CacheStatus::Miss));
    assert_eq!(selects.load(Ordering::SeqCst), 2, "the one miss, queried");

    let mixed = [Filters::new().with("name", "C"), Filters::new().with("id", rows[4].id + 100)];
    let err = job.get_many(&mixed).await.unwrap_err();
    assert!(matches!(loco_rs::Error::from(err), loco_rs::Error::NotFound), "a missing row: 404");
    let by_name = job.get_many(&[Filters::new().with("name", "C"), Filters::new().with("name", "B")]).await;
    let names: Vec<_> = by_name.unwrap().iter().map(|m| m.as_ref().unwrap().name.clone()).collect();
    assert_eq!(names, ["C", "B"]);
}

mod tagged_models {
    use sea_orm::entity::prelude::*;

    /// A table whose ActiveModel writes invalidate its cached reads.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
    #[sea_orm(table_name = "tagged_models")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    #[async_trait::async_trait]
    impl ActiveModelBehavior for ActiveModel {
        async fn after_save<C: ConnectionTrait>(model: Model, _: &C, _: bool) -> Result<Model, DbErr> {
            cacheback::orm::invalidate_on_save::<Entity>().await;
            Ok(model)
        }
        async fn after_delete<C: ConnectionTrait>(self, _: &C) -> Result<Self, DbErr> {
            cacheback::orm::invalidate_on_save::<Entity>().await;
            Ok(self)
        }
    }
}

/// Every cached read of a table carries its name as a tag: a save or delete
/// through an ActiveModel (with `invalidate_on_save` in its hooks) makes them
/// all stale on the global engine; `invalidate_model` does it by hand.
async fn writes_make_the_tables_reads_stale(db: Db) {
    use tagged_models::{ActiveModel, Entity as Tagged};
    let db = database(db).await;
    db.execute(&Schema::new(db.get_database_backend()).create_table_from_entity(Tagged)).await.unwrap();
    let row = ActiveModel { name: Set("first".to_owned()), ..Default::default() }.insert(&db).await.unwrap();
    let (queue, clock) =
        (cacheback::queue::InProcessQueue::builder().manual().build(), cacheback::ManualClock::at(at(0)));
    let cache = cacheback::Cacheback::builder()
        .store("default", redis_store(&unique_prefix("orm-tags")).await)
        .queue(queue.clone())
        .clock(clock.clone())
        .extension(db.clone())
        .register_model::<Tagged>()
        .build()
        .unwrap();
    let one = cache.job(QuerySetGetJob::<Tagged>::new(db.clone()));
    let all = cache.job(QuerySetFilterJob::<Tagged>::new(db.clone()));
    assert_eq!(one.job().tags(&Filters::new()), ["tagged_models"]);
    let (by_id, everything) = (Filters::new().with("id", row.id), Filters::new());
    one.get(&by_id).await.unwrap();
    all.get(&everything).await.unwrap();
    clock.advance(Duration::from_secs(1));

    // The global engine is this test's, one database at a time (no other
    // test of this binary installs one).
    static GLOBAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let turn = GLOBAL.lock().await;
    cache.install_global();
    let mut renamed: ActiveModel = row.into();
    renamed.name = Set("second".to_owned());
    let row = renamed.update(&db).await.unwrap();
    let found = one.lookup(&by_id).await.unwrap();
    assert_eq!((found.status, found.value.unwrap().name.as_str()), (CacheStatus::Stale, "first"));
    assert_eq!(all.lookup(&everything).await.unwrap().status, CacheStatus::Stale);
    assert_eq!(queue.run_pending().await, 2);
    assert_eq!(one.get(&by_id).await.unwrap().unwrap().name, "second", "after one refresh");

    clock.advance(Duration::from_secs(1));
    ActiveModel::from(row).delete(&db).await.unwrap();
    assert_eq!(all.lookup(&everything).await.unwrap().status, CacheStatus::Stale, "a delete too");
    cacheback::Cacheback::uninstall_global();
    drop(turn);

    assert_eq!(queue.run_pending().await, 1);
    assert!(all.get(&everything).await.unwrap().unwrap().is_empty(), "refreshed: no rows");
    clock.advance(Duration::from_secs(1));
    cacheback::orm::invalidate_model::<Tagged>(&cache).await.unwrap();
    assert_eq!(all.lookup(&everything).await.unwrap().status, CacheStatus::Stale, "by hand");
}
