//! Refreshes on loco's own queue (`task_queue: loco`): loco's PostgreSQL
//! queue (a real provider on the test PostgreSQL), its inline worker modes,
//! the failover when there is no provider, and the database store as a loco
//! app configures it.
#![cfg(all(feature = "loco", feature = "sea-orm"))]

mod common;

use std::sync::Arc;
use std::time::Duration;

use cacheback::loco::{CachebackInitializer, LocoQueue, REFRESH_JOB_CLASS, RefreshWorker, from_context};
use cacheback::store::MemoryStore;
use cacheback::{CacheStatus, Cacheback, Job};
use common::*;
use loco_rs::app::{AppContext, Initializer};
use loco_rs::bgworker::{BackgroundWorker, Queue};
use loco_rs::config::{PostgresQueueConfig, WorkerMode};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

async fn loco_context(mode: WorkerMode, provider: Option<Arc<Queue>>) -> AppContext {
    let mut ctx = loco_rs::tests_cfg::app::get_app_context().await;
    ctx.config.workers.mode = mode;
    ctx.queue_provider = provider;
    ctx
}

/// loco's PostgreSQL queue on the test database, its table created (by one
/// test at a time: two creating it at once collide in PostgreSQL's catalog).
async fn postgres_queue() -> Arc<Queue> {
    static SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _setup = SETUP.lock().await;
    let config: PostgresQueueConfig = serde_json::from_value(json!({ "uri": postgres_url() })).unwrap();
    let queue = loco_rs::bgworker::pg::create_provider(&config).await.unwrap_or_else(|e| {
        panic!("this test needs PostgreSQL at {} (`scripts/test` creates it): {e}", postgres_url())
    });
    queue.setup().await.unwrap();
    Arc::new(queue)
}

/// An engine on a memory store, refreshing through loco's queue of `ctx`.
fn engine(ctx: &AppContext, env: &Env) -> Cacheback {
    let builder = Cacheback::builder().store("default", MemoryStore::new()).queue(LocoQueue::new(ctx, None));
    let cache = register_dummies(builder, env).clock(env.clock.clone()).build().unwrap();
    ctx.shared_store.insert(cache.clone());
    cache
}

/// cacheback's jobs on loco's queue for `key`, oldest first: their payloads.
async fn queued_for(db: &DatabaseConnection, key: &str) -> Vec<serde_json::Value> {
    let sql =
        "SELECT task_data FROM pg_loco_queue WHERE name = $1 AND task_data->>'key' = $2 ORDER BY created_at";
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [REFRESH_JOB_CLASS.into(), key.into()],
        ))
        .await
        .unwrap();
    rows.iter().map(|row| row.try_get_by_index::<serde_json::Value>(0).unwrap()).collect()
}

/// On loco's PostgreSQL queue: 16 readers of a stale item queue one job; a
/// failed refresh (loco retries none) leaves the stale data served and
/// queues nothing while the refresh's time (`refresh_timeout`) holds; once
/// it has passed the next reader queues again, and that refresh lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_job_per_stale_key_on_locos_queue_and_a_failed_refresh_is_queued_again_after_its_claim() {
    let ctx = loco_context(WorkerMode::BackgroundQueue, Some(postgres_queue().await)).await;
    let db = sea_orm::Database::connect(postgres_url()).await.unwrap();
    let env = fixture(Backend::Memory).env();
    let cache = engine(&ctx, &env);
    let param = (unique_prefix("loco-queue"),);
    let job = cache.job(DummyJob(env.clone()));
    let key = job.key(&param).unwrap();
    job.refresh(&param).await.unwrap();
    env.clock.advance(Duration::from_secs(601)); // past the item's lifetime

    let readers = futures::future::join_all((0..16).map(|_| job.lookup(&param))).await;
    // The first re-stores the item for its refresh; every reader has the data.
    for found in readers {
        assert_eq!(found.unwrap().value.unwrap().0, format!("JOB-EXECUTED:{}", param.0));
    }
    let queued = queued_for(&db, &key).await;
    assert_eq!(queued.len(), 1, "one job for 16 stale readers");
    assert_eq!(queued[0]["job"], *DummyJob::name());

    // The worker runs it and the fetch fails: loco would mark the job failed.
    env.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let worker = RefreshWorker::build(&ctx);
    let err = worker.perform(queued[0].clone()).await.unwrap_err();
    assert!(err.to_string().contains("JOB-FAILED"), "{err}");
    let found = job.lookup(&param).await.unwrap();
    assert_eq!(found.value.unwrap().0, format!("JOB-EXECUTED:{}", param.0), "the stale data stays");
    assert_eq!(queued_for(&db, &key).await.len(), 1, "nothing queued while the claim holds");

    env.clock.advance(Duration::from_secs(61)); // past the claim (refresh_timeout)
    env.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(job.lookup(&param).await.unwrap().status, CacheStatus::Stale);
    let queued = queued_for(&db, &key).await;
    assert_eq!(queued.len(), 2, "the next reader after the claim queues again");
    worker.perform(queued[1].clone()).await.unwrap();
    assert_eq!(job.lookup(&param).await.unwrap().status, CacheStatus::Hit);
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM pg_loco_queue WHERE task_data->>'key' = $1",
        [key.into()],
    ))
    .await
    .unwrap();
}

/// `ForegroundBlocking` runs the refresh in the reader's request, as loco
/// runs its own jobs in that mode; `BackgroundAsync` as a task beside it.
#[tokio::test]
async fn the_inline_worker_modes_refresh_in_the_process() {
    let ctx = loco_context(WorkerMode::ForegroundBlocking, None).await;
    let env = fixture(Backend::Memory).env();
    let job = engine(&ctx, &env).job(EmptyDummyJob(env.clone()));
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Miss);
    assert_eq!(env.fetches(), 1, "refreshed before the read returned");
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Hit);

    let ctx = loco_context(WorkerMode::BackgroundAsync, None).await;
    let env = fixture(Backend::Memory).env();
    let job = engine(&ctx, &env).job(EmptyDummyJob(env.clone()));
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Miss);
    assert_eq!(env.fetches(), 0, "not in the request");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while job.get(&foo()).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the task never refreshed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(env.fetches(), 1);
}

/// `BackgroundQueue` without a queue provider (loco's `QueueProviderMissing`):
/// the enqueue fails, and the refresh runs inline instead, as with any queue
/// that refuses one.
#[tokio::test]
async fn no_queue_provider_fails_over_to_an_inline_refresh() {
    let ctx = loco_context(WorkerMode::BackgroundQueue, None).await;
    let env = fixture(Backend::Memory).env();
    let job = engine(&ctx, &env).job(EmptyDummyJob(env.clone()));
    let (logs, _guard) = Logs::capture();
    job.lookup(&foo()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while job.get(&foo()).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the failover never refreshed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(logs.text().contains("QueueProviderMissing"), "{}", logs.text());
}

/// A payload that is not one, or names a job nobody registered: an error for
/// loco to record on the job, never a panic.
#[tokio::test]
async fn bad_payloads_are_errors() {
    let ctx = loco_context(WorkerMode::BackgroundQueue, None).await;
    let env = fixture(Backend::Memory).env();
    engine(&ctx, &env);
    let worker = RefreshWorker::build(&ctx);
    let err = worker.perform(json!("garbage")).await.unwrap_err();
    assert!(err.to_string().contains("not a refresh payload"), "{err}");
    let unknown = json!({ "job": "nobody::Registered", "args": null, "key": "k" });
    assert!(worker.perform(unknown).await.is_err());
    assert_eq!(RefreshWorker::class_name(), REFRESH_JOB_CLASS);
}

/// `task_queue: loco` and `backend: database` through the initializer: the
/// store on the app's own database (`ctx.db`), created on first use when
/// asked; without the tables and without `create_tables`, start-up stops
/// with a message naming the migration.
#[tokio::test]
async fn a_loco_app_on_its_database_alone() {
    let mut ctx = loco_context(WorkerMode::BackgroundQueue, Some(postgres_queue().await)).await;
    ctx.db = sea_orm::Database::connect(sqlite_url(&unique_prefix("loco-app"))).await.unwrap();
    let settings = |create: bool| {
        json!({
            "task_queue": "loco",
            "caches": { "default": { "backend": "database", "create_tables": create } },
        })
    };
    let initializer = CachebackInitializer::new(|builder, _| builder.register_default::<FailJob>());
    ctx.config.initializers = Some([("cacheback".to_owned(), settings(false))].into_iter().collect());
    let err = initializer.install(&ctx).await.unwrap_err().to_string();
    assert!(err.contains("initializers.cacheback.caches.default.backend"), "{err}");
    assert!(err.contains("cacheback::store::Migration"), "{err}");

    ctx.config.initializers = Some([("cacheback".to_owned(), settings(true))].into_iter().collect());
    initializer.before_run(&ctx).await.unwrap();
    let cache = from_context(&ctx).unwrap();
    let store = cache.store("default").unwrap();
    assert!(format!("{store:?}").contains("DatabaseStore"), "{store:?}");
    assert_eq!(store.item_count().await.unwrap(), Some(0));
    let check = initializer.check(&ctx).await.unwrap().unwrap();
    assert!(matches!(check.status, loco_rs::doctor::CheckStatus::Ok), "{}", check.message);
}

/// Start-up says when `task_queue: loco` would refresh in every request:
/// `BackgroundQueue` with no `queue:` section.
#[tokio::test]
async fn start_up_warns_of_a_background_queue_without_a_provider() {
    let mut ctx = loco_context(WorkerMode::BackgroundQueue, None).await;
    ctx.config.initializers =
        Some([("cacheback".to_owned(), json!({ "task_queue": "loco" }))].into_iter().collect());
    let (logs, _guard) = Logs::capture();
    CachebackInitializer::new(|builder, _| builder).before_run(&ctx).await.unwrap();
    assert!(logs.text().contains("has no `queue:` section"), "{}", logs.text());
}
