//! The loco initializer against loco's own test context and a real Redis.
#![cfg(feature = "loco")]

mod common;

use std::sync::Arc;

use cacheback::loco::{CachebackInitializer, from_context};
use cacheback::{Cacheback, FetchError, Job};
use loco_rs::app::{AppContext, Hooks, Initializer};
use loco_rs::bgworker::Queue;
use loco_rs::boot::{BootResult, StartMode};
use loco_rs::config::{Config, WorkerMode};
use loco_rs::controller::AppRoutes;
use loco_rs::doctor::CheckStatus;
use loco_rs::environment::Environment;
use loco_rs::logger::LogLevel;
use loco_rs::task::Tasks;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Default)]
struct Answer;

impl Job for Answer {
    type Args = ();
    type Output = u32;
    async fn fetch(&self, _: &()) -> Result<u32, FetchError> {
        Ok(42)
    }
}

/// loco's test context with `cacheback` as `initializers.cacheback`, and
/// `workers.mode: BackgroundQueue`, the mode a Sidekiq worker needs (the
/// test context's own is `ForegroundBlocking`).
async fn context(cacheback: serde_json::Value) -> AppContext {
    let mut ctx = loco_rs::tests_cfg::app::get_app_context().await;
    let mut initializers = ctx.config.initializers.take().unwrap_or_default();
    initializers.insert("cacheback".to_owned(), cacheback);
    ctx.config.initializers = Some(initializers);
    ctx.config.workers.mode = WorkerMode::BackgroundQueue;
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
    let (config, _queue) = sidekiq_config();
    let ctx = context(config).await;
    initializer().before_run(&ctx).await.unwrap();
    let cache = from_context(&ctx).unwrap();
    cacheback::loco::start_worker(&ctx).await.unwrap();
    assert_the_worker_refreshes(&cache).await;
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
/// called from code, panic on it: `builder_concurrency_zero_panics`).
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

/// A valid Sidekiq section on a queue of its own.
fn sidekiq_config() -> (serde_json::Value, String) {
    let queue = common::unique_prefix("loco-q").replace(':', "-");
    let config = json!({
        "task_queue": "sidekiq",
        "sidekiq": { "url": common::redis_url(), "queues": [queue], "concurrency": 2, "shutdown_timeout_secs": 5 },
        "caches": { "default": { "backend": "redis", "url": common::redis_url(), "key_prefix": common::unique_prefix("loco") } },
    });
    (config, queue)
}

/// Waits until the worker has refreshed `LazyAnswer`, queued by a miss.
async fn assert_the_worker_refreshes(cache: &Cacheback) {
    let answer = cache.job(LazyAnswer);
    assert_eq!(answer.get(&()).await.unwrap(), None, "a miss is queued on Sidekiq");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while answer.get(&()).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the worker did not refresh");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A loco app with the initializer wired as `docs/installation.md` says, for
/// loco's own `boot::run_app` (what `cargo loco start` runs).
struct TestApp;

#[async_trait::async_trait]
impl Hooks for TestApp {
    fn app_name() -> &'static str {
        "cacheback_test_app"
    }
    async fn boot(_: StartMode, _: &Environment, _: Config) -> loco_rs::Result<BootResult> {
        Err(loco_rs::Error::Message("the tests call run_app".to_owned()))
    }
    fn routes(_: &AppContext) -> AppRoutes {
        AppRoutes::empty()
    }
    async fn initializers(_: &AppContext) -> loco_rs::Result<Vec<Box<dyn Initializer>>> {
        Ok(vec![Box::new(initializer())])
    }
    async fn connect_workers(ctx: &AppContext, _: &Queue) -> loco_rs::Result<()> {
        cacheback::loco::start_worker(ctx).await
    }
    async fn on_shutdown(ctx: &AppContext) {
        cacheback::loco::stop_worker(ctx).await;
    }
    fn register_tasks(_: &mut Tasks) {}
    #[cfg(feature = "sea-orm")]
    async fn truncate(_: &AppContext) -> loco_rs::Result<()> {
        Ok(())
    }
    #[cfg(feature = "sea-orm")]
    async fn seed(_: &AppContext, _: &std::path::Path) -> loco_rs::Result<()> {
        Ok(())
    }
}

/// `cargo loco start --worker` with `workers.mode: BackgroundQueue`: loco
/// calls `connect_workers`, which starts the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loco_starts_the_worker_in_background_queue_mode() {
    let _turn = TURN.lock().await;
    let (config, _queue) = sidekiq_config();
    let mut ctx = context(config).await;
    // The mode needs a loco queue; cacheback's worker does not use it.
    ctx.queue_provider = Some(Arc::new(Queue::empty()));
    let boot = loco_rs::boot::run_app::<TestApp>(&StartMode::WorkerOnly { tags: vec![] }, ctx).await.unwrap();
    let ctx = boot.app_context;
    // `connect_workers` started it; starting it again (a second call) is a no-op.
    cacheback::loco::start_worker(&ctx).await.unwrap();
    assert_the_worker_refreshes(&from_context(&ctx).unwrap()).await;
    TestApp::on_shutdown(&ctx).await;
}

/// With any other `workers.mode`, loco never calls `connect_workers`:
/// `cargo loco start` (with `--worker` or not) stops with a message that
/// says what to change, instead of a worker that is "online" and runs nothing.
#[tokio::test]
async fn loco_start_refuses_a_mode_that_cannot_start_the_worker() {
    for mode in [WorkerMode::BackgroundAsync, WorkerMode::ForegroundBlocking] {
        for start in [StartMode::WorkerOnly { tags: vec![] }, StartMode::ServerOnly] {
            let _turn = TURN.lock().await;
            let (config, _queue) = sidekiq_config();
            let mut ctx = context(config).await;
            ctx.config.workers.mode = mode.clone();
            let shared_store = ctx.shared_store.clone();
            let Err(err) = loco_rs::boot::run_app::<TestApp>(&start, ctx).await else {
                panic!("{mode:?} with {start:?} started");
            };
            let err = err.to_string();
            for part in [
                "`initializers.cacheback.task_queue: sidekiq`",
                &format!("`workers.mode: {mode:?}`"),
                "config/test.yaml",
                "`workers: { mode: BackgroundQueue }`",
                "`queue: { kind: Redis,",
                "`initializers.cacheback.task_queue: in_process`",
            ] {
                assert!(err.contains(part), "{part} is not in: {err}");
            }
            assert!(!err.contains('\n'), "one line, as loco prints errors with Debug: {err}");
            assert!(!shared_store.contains::<Cacheback>(), "nothing installed");
        }
    }
}

/// The same config fails `cargo loco doctor`; the in-process queue runs in
/// every mode.
#[tokio::test]
async fn the_worker_mode_in_doctor_and_with_the_in_process_queue() {
    let _turn = TURN.lock().await;
    let (config, _queue) = sidekiq_config();
    let mut ctx = context(config).await;
    ctx.config.workers.mode = WorkerMode::BackgroundAsync;
    let check = initializer().check(&ctx).await.unwrap().unwrap();
    assert!(matches!(check.status, CheckStatus::NotOk), "{check:?}");
    assert!(check.message.contains("workers.mode"), "{check:?}");
    assert!(check.description.unwrap().contains("`workers: { mode: BackgroundQueue }`"));

    for mode in [WorkerMode::BackgroundAsync, WorkerMode::ForegroundBlocking, WorkerMode::BackgroundQueue] {
        let mut ctx = loco_rs::tests_cfg::app::get_app_context().await;
        ctx.config.workers.mode = mode;
        initializer().before_run(&ctx).await.unwrap();
        cacheback::loco::start_worker(&ctx).await.unwrap();
        let check = initializer().check(&ctx).await.unwrap().unwrap();
        assert!(matches!(check.status, CheckStatus::Ok), "{check:?}");
    }
}

/// What `logger::init` of loco installs for `logger`, but on this thread
/// only, writing to `logs`. `None` when `RUST_LOG` is set: loco would use it
/// instead of the config.
fn loco_subscriber(
    logger: &loco_rs::config::Logger,
    logs: &common::Logs,
) -> Option<impl tracing::Subscriber + Send + Sync + use<>> {
    if std::env::var_os("RUST_LOG").is_some() {
        eprintln!("skipped: RUST_LOG is set, and loco's filter would be RUST_LOG");
        return None;
    }
    let filter = loco_rs::logger::init_env_filter::<TestApp>(logger.override_filter.as_ref(), &logger.level);
    let layer = tracing_subscriber::fmt::layer().with_writer(logs.clone()).with_ansi(false);
    Some(tracing_subscriber::registry().with(layer).with(filter))
}

fn logger(level: LogLevel, override_filter: Option<&str>) -> loco_rs::config::Logger {
    loco_rs::config::Logger {
        enable: true,
        pretty_backtrace: false,
        level,
        format: loco_rs::logger::Format::Compact,
        override_filter: override_filter.map(str::to_owned),
        file_appender: None,
    }
}

/// Runs `before_run` and the doctor check under loco's log filter for
/// `logger`: the check, and what reached the logs.
async fn under_loco_logger(logger: loco_rs::config::Logger) -> Option<(loco_rs::doctor::Check, String)> {
    let logs = common::Logs::default();
    let subscriber = loco_subscriber(&logger, &logs)?;
    let _turn = TURN.lock().await;
    let mut ctx = context(json!({})).await;
    ctx.config.logger = logger;
    let _default = tracing::subscriber::set_default(subscriber);
    initializer().before_run(&ctx).await.unwrap();
    let check = initializer().check(&ctx).await.unwrap().unwrap();
    Some((check, logs.text()))
}

/// loco's default filter (its crates and the app's) drops cacheback's lines:
/// start-up warns on stderr (not testable here) and the doctor check says
/// what to add, but start-up goes on.
#[tokio::test]
async fn loco_default_log_filter_is_reported() {
    let Some((check, logs)) = under_loco_logger(logger(LogLevel::Info, None)).await else { return };
    assert!(!logs.contains("cacheback initialized"), "{logs}");
    assert!(matches!(check.status, CheckStatus::NotConfigure), "a warning, not a failure: {check:?}");
    assert!(check.message.contains("log filter"), "{check:?}");
    let description = check.description.unwrap();
    for part in [
        "failed refreshes",
        "config/test.yaml",
        "override_filter: loco_rs=info,sea_orm_migration=info,tower_http=info,sqlx::query=info,<your_app>=info,cacheback=info",
        "`Hooks::app_name`",
    ] {
        assert!(description.contains(part), "{part} is not in: {description}");
    }

    // An override that does not name cacheback: the fix extends it.
    let Some((check, _)) =
        under_loco_logger(logger(LogLevel::Warn, Some("loco_rs=warn,cacheback_test_app=warn"))).await
    else {
        return;
    };
    assert!(matches!(check.status, CheckStatus::NotConfigure), "{check:?}");
    let description = check.description.unwrap();
    assert!(
        description.contains("override_filter: loco_rs=warn,cacheback_test_app=warn,cacheback=warn"),
        "{description}"
    );
    assert!(!description.contains("<your_app>"), "{description}");
}

/// With cacheback in `override_filter`, as the sandbox's configs and the
/// installation docs have it, its lines reach the logs and the check is clean.
#[tokio::test]
async fn override_filter_naming_cacheback_lets_its_lines_through() {
    let filter = "loco_rs=info,sea_orm_migration=info,tower_http=info,sqlx::query=info,cacheback_test_app=info,cacheback=info";
    let Some((check, logs)) = under_loco_logger(logger(LogLevel::Info, Some(filter))).await else { return };
    assert!(logs.contains("cacheback initialized"), "{logs}");
    assert!(matches!(check.status, CheckStatus::Ok), "{check:?}");
}

/// Logs turned off, or no logger at all: nothing to warn about.
#[tokio::test]
async fn no_logs_at_all_is_not_reported() {
    let Some((check, logs)) = under_loco_logger(logger(LogLevel::Off, None)).await else { return };
    assert_eq!(logs, "");
    assert!(matches!(check.status, CheckStatus::Ok), "{check:?}");
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

// `?` on a cacheback result in a loco handler.

/// A `#[cacheback]` function whose error is loco's: `?` in handlers as is.
#[cacheback::cacheback(5)]
async fn answer_for_handlers(ctx: &AppContext, q: String) -> Result<u32, loco_rs::Error> {
    let _ = (ctx, q);
    Ok(42)
}

/// A `#[cacheback]` function whose error is cacheback's: `?` through the
/// conversion under test.
#[cacheback::cacheback(5)]
async fn answer_or_cacheback_error(q: String) -> Result<u32, cacheback::Error> {
    let _ = q;
    Ok(42)
}

/// A handler as the docs write one: every `?` compiles.
#[allow(dead_code)]
async fn handler(
    axum::extract::State(ctx): axum::extract::State<AppContext>,
) -> loco_rs::Result<axum::response::Response> {
    let cache =
        from_context(&ctx).ok_or_else(|| loco_rs::Error::Message("cacheback is not initialized".into()))?;
    let answer = cache.job(Answer).get(&()).await?;
    let decorated = answer_for_handlers(&ctx, "q".to_owned()).await?;
    let other = answer_or_cacheback_error("q".to_owned()).await?;
    loco_rs::prelude::format::json((answer, decorated, other))
}

/// The response `err` renders as, through `?`: status and body.
async fn rendered(err: cacheback::Error) -> (axum::http::StatusCode, String) {
    fn through_question_mark(err: cacheback::Error) -> loco_rs::Result<()> {
        Err(err)?
    }
    let response = axum::response::IntoResponse::into_response(through_question_mark(err).unwrap_err());
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn bad_arguments_are_a_400_that_says_why() {
    let (status, body) = rendered(cacheback::Error::Key {
        job: "app::secret::Job".into(),
        message: "argument `q` contains a NUL character".into(),
    })
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("argument `q` contains a NUL character"), "{body}");
    assert!(!body.contains("app::secret"), "no job path: {body}");

    let (status, body) = rendered(cacheback::Error::Call {
        job: "app::secret::Job".into(),
        message: "expected 2 arguments".into(),
    })
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("expected 2 arguments") && !body.contains("app::secret"), "{body}");
}

#[tokio::test]
async fn a_failed_fetch_is_a_503_that_says_nothing_internal() {
    let source = std::io::Error::other("connection to db.internal:5432 refused");
    let (status, body) = rendered(cacheback::Error::Fetch {
        job: "app::secret::Job".into(),
        key: "secret-key".into(),
        source: Arc::new(source),
    })
    .await;
    assert_eq!(status, 503);
    assert!(body.contains("service_unavailable"), "{body}");
    for internal in ["app::secret", "secret-key", "db.internal", "refused"] {
        assert!(!body.contains(internal), "{internal} in {body}");
    }
}

#[tokio::test]
async fn other_failures_are_a_generic_500() {
    let errors = [
        cacheback::Error::Store {
            alias: "default".into(),
            op: "get",
            key: "secret-key".into(),
            source: cacheback::StoreError::new("redis://10.0.0.7:6379: connection refused"),
        },
        cacheback::Error::Queue {
            job: "app::secret::Job".into(),
            source: cacheback::QueueError::new("queue is closed"),
        },
        cacheback::Error::Decode {
            key: "secret-key".into(),
            type_name: "app::Secret",
            message: "eof".into(),
        },
        cacheback::Error::UnknownCacheAlias { alias: "secret".into(), known: "default".into() },
    ];
    for err in errors {
        let (status, body) = rendered(err).await;
        assert_eq!(status, 500);
        assert!(body.contains("internal_server_error"), "{body}");
        for internal in ["secret", "10.0.0.7", "refused", "closed", "eof"] {
            assert!(!body.contains(internal), "{internal} in {body}");
        }
    }
}

/// A builder's concurrency of 0 is a programmer's mistake: a documented panic,
/// never a queue that silently runs one at a time.
#[test]
#[should_panic(expected = "concurrency must be at least 1")]
fn builder_concurrency_zero_panics() {
    let _ = cacheback::queue::InProcessQueue::builder().concurrency(0);
}
