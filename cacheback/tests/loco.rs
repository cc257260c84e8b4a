//! The loco initializer against loco's own test context and a real Redis.
#![cfg(feature = "loco")]

mod common;

use cacheback::loco::{CachebackInitializer, from_context};
use cacheback::{Cacheback, FetchError, Job};
use loco_rs::app::{AppContext, Initializer};
use loco_rs::doctor::CheckStatus;
use serde_json::json;

#[derive(Default)]
struct Answer;

impl Job for Answer {
    type Args = ();
    type Output = u32;
    async fn fetch(&self, _: &()) -> Result<u32, FetchError> {
        Ok(42)
    }
}

async fn context(cacheback: serde_json::Value) -> AppContext {
    let mut ctx = loco_rs::tests_cfg::app::get_app_context().await;
    let mut initializers = ctx.config.initializers.take().unwrap_or_default();
    initializers.insert("cacheback".to_owned(), cacheback);
    ctx.config.initializers = Some(initializers);
    ctx
}

/// Installing sets the global engine: tests that install take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn initializer() -> CachebackInitializer {
    CachebackInitializer::new(|builder, _ctx| {
        builder.register_default::<Answer>().register_default::<LazyAnswer>()
    })
}

#[tokio::test]
async fn the_initializer_builds_the_engine_from_config() {
    let _turn = TURN.lock().await;
    let prefix = common::unique_prefix("loco");
    let ctx = context(json!({
        "cache_alias": "shared",
        "verify_cache_write": false,
        "caches": {
            "shared": { "backend": "redis", "url": common::redis_url(), "key_prefix": prefix },
            "local": { "backend": "memory", "max_capacity": 100 },
            "dummy": { "backend": "null" },
        },
    }))
    .await;
    let init = initializer();
    assert_eq!(init.name(), "cacheback");
    init.before_run(&ctx).await.unwrap();

    let cache: Cacheback = from_context(&ctx).expect("the handle is in the shared store");
    assert!(cache.extension::<AppContext>().is_some(), "workers get the AppContext");
    assert_eq!(
        Cacheback::global().unwrap().default_alias(),
        "shared",
        "installed for #[cacheback] functions"
    );
    assert_eq!(cache.default_alias(), "shared");
    assert!(!cache.verifies_writes());
    assert!(cache.is_registered(&Answer::name()));
    assert_eq!(*cache.job(Answer).get(&()).await.unwrap().unwrap(), 42);
    let key = cache.job(Answer).key(&()).unwrap();
    assert!(cache.store("shared").unwrap().get(&key).await.unwrap().is_some(), "stored in Redis");

    // Running again (after_routes) keeps the same handle.
    let _router = init.after_routes(axum::Router::new(), &ctx).await.unwrap();
    assert!(from_context(&ctx).unwrap().store("local").is_ok());

    let check = init.check(&ctx).await.unwrap().unwrap();
    assert!(matches!(check.status, CheckStatus::Ok), "{}", check.message);
}

#[tokio::test]
async fn no_section_means_the_defaults() {
    let _turn = TURN.lock().await;
    let ctx = loco_rs::tests_cfg::app::get_app_context().await;
    initializer().before_run(&ctx).await.unwrap();
    let cache = from_context(&ctx).unwrap();
    assert_eq!(cache.default_alias(), "default");
    assert!(cache.verifies_writes());
}

async fn start_up_error(config: serde_json::Value) -> String {
    let _turn = TURN.lock().await;
    let ctx = context(config).await;
    let err = initializer().before_run(&ctx).await.unwrap_err().to_string();
    assert!(from_context(&ctx).is_none(), "nothing installed on error");
    err
}

#[tokio::test]
async fn config_errors_name_the_key() {
    let err = start_up_error(json!({ "caches": { "x": { "backend": "memcached" } } })).await;
    assert!(err.contains("initializers.cacheback.caches.x"), "{err}");
    assert!(err.contains("memcached"), "{err}");

    let err = start_up_error(json!({ "cache_alias": "nope" })).await;
    assert!(err.contains("initializers.cacheback.cache_alias"), "{err}");

    let err = start_up_error(json!({ "verify_cache_writes": true })).await;
    assert!(err.contains("unknown field `verify_cache_writes`"), "{err}");

    let err = start_up_error(json!({ "task_queue": "celery" })).await;
    assert!(err.contains("initializers.cacheback.task_queue"), "{err}");

    let err =
        start_up_error(json!({ "caches": { "default": { "backend": "redis", "url": "http://nope" } } }))
            .await;
    assert!(err.contains("initializers.cacheback.caches.default.url"), "{err}");

    let err =
        start_up_error(json!({ "caches": { "default": { "backend": "redis", "url": "redis://127.0.0.1:1", "timeout_ms": 200 } } }))
            .await;
    assert!(err.contains("initializers.cacheback.caches.default.url"), "{err}");
    assert!(err.contains("cannot connect to Redis"), "{err}");
}

#[tokio::test]
async fn doctor_reports_an_unreachable_redis() {
    let _turn = TURN.lock().await;
    let ctx = context(json!({
        "caches": { "default": { "backend": "redis", "url": "redis://127.0.0.1:1", "timeout_ms": 200 } }
    }))
    .await;
    let check = initializer().check(&ctx).await.unwrap().unwrap();
    assert!(matches!(check.status, CheckStatus::NotOk));
    assert!(check.description.unwrap().contains("cannot connect to Redis"));
}

/// `task_queue: sidekiq`: the web side enqueues, `start_worker` (from
/// `Hooks::connect_workers`) runs the refreshes, `stop_worker` (from
/// `Hooks::on_shutdown`) stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidekiq_worker_starts_and_stops_with_loco() {
    let _turn = TURN.lock().await;
    let queue = common::unique_prefix("loco-q").replace(':', "-");
    let ctx = context(json!({
        "task_queue": "sidekiq",
        "sidekiq": { "url": common::redis_url(), "queues": [queue], "concurrency": 2, "shutdown_timeout_secs": 5 },
        "caches": { "default": { "backend": "redis", "url": common::redis_url(), "key_prefix": common::unique_prefix("loco") } },
    }))
    .await;
    initializer().before_run(&ctx).await.unwrap();
    let cache = from_context(&ctx).unwrap();
    cacheback::loco::start_worker(&ctx).await.unwrap();
    let answer = cache.job(LazyAnswer);
    assert_eq!(answer.get(&()).await.unwrap(), None, "a miss is queued on Sidekiq");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while answer.get(&()).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the worker did not refresh");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    cacheback::loco::stop_worker(&ctx).await;
    let check = initializer().check(&ctx).await.unwrap().unwrap();
    assert!(matches!(check.status, CheckStatus::Ok), "{}", check.message);
}

#[tokio::test]
async fn sidekiq_needs_its_settings() {
    let err = start_up_error(json!({ "task_queue": "sidekiq" })).await;
    assert!(err.contains("initializers.cacheback.sidekiq"), "{err}");
    let err = start_up_error(
        json!({ "task_queue": "sidekiq", "sidekiq": { "url": "redis://127.0.0.1:1", "timeout_ms": 200 } }),
    )
    .await;
    assert!(err.contains("initializers.cacheback.sidekiq.url"), "{err}");
    let err = start_up_error(
        json!({ "task_queue": "sidekiq", "sidekiq": { "url": common::redis_url(), "queues": [] } }),
    )
    .await;
    assert!(err.contains("initializers.cacheback.sidekiq.queues"), "{err}");
    let err = start_up_error(
        json!({ "task_queue": "sidekiq", "sidekiq": { "url": common::redis_url(), "concurrency": 0 } }),
    )
    .await;
    assert!(
        err.contains("initializers.cacheback.sidekiq.concurrency") && err.contains("at least 1"),
        "{err}"
    );
}

/// Either queue refuses a concurrency of 0 in the settings (the builders,
/// called from code, raise it to 1).
#[tokio::test]
async fn in_process_concurrency_must_be_positive() {
    let err = start_up_error(json!({ "in_process": { "concurrency": 0 } })).await;
    assert!(
        err.contains("initializers.cacheback.in_process.concurrency") && err.contains("at least 1"),
        "{err}"
    );
}

/// With the in-process queue there is no worker to start.
#[tokio::test]
async fn in_process_needs_no_worker() {
    let _turn = TURN.lock().await;
    let ctx = loco_rs::tests_cfg::app::get_app_context().await;
    initializer().before_run(&ctx).await.unwrap();
    cacheback::loco::start_worker(&ctx).await.unwrap();
    cacheback::loco::stop_worker(&ctx).await;
}

#[derive(Default)]
struct LazyAnswer;

impl Job for LazyAnswer {
    type Args = ();
    type Output = u32;
    async fn fetch(&self, _: &()) -> Result<u32, FetchError> {
        Ok(42)
    }
    fn fetch_on_miss(&self) -> bool {
        false
    }
}
