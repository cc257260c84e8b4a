//! The initializer: builds the engine from the settings, stores it in
//! `ctx.shared_store`, and starts and stops the Sidekiq worker.

use std::sync::Arc;

use async_trait::async_trait;
use loco_rs::app::{AppContext, Initializer};
use loco_rs::config::WorkerMode;
use loco_rs::doctor::{Check, CheckStatus};
use loco_rs::logger::LogLevel;

use super::context::from_context;
use super::queue::LocoQueue;
use crate::engine::{Builder, Cacheback};
use crate::error::Error;
use crate::queue::sidekiq::WorkerHandle;
use crate::settings::{Provided, Settings};

type Configure = dyn Fn(Builder, &AppContext) -> Builder + Send + Sync;

/// The loco [`Initializer`] named `cacheback`.
///
/// On start-up it builds the engine from the settings (a configuration error
/// stops start-up with a message naming the key), lets the app register its
/// jobs, stores the handle in `ctx.shared_store` (read it back with
/// [`from_context`]) and installs it as the [global](Cacheback::install_global)
/// engine of `#[cacheback]` functions. Workers get the `AppContext` (and, with
/// the `sea-orm` feature, its `DatabaseConnection`) as
/// [extensions](Cacheback::extension). `cargo loco doctor` runs its [check](Initializer::check):
/// every configured store must answer.
///
/// It also refuses what would fail silently: with `task_queue: sidekiq`,
/// `cargo loco start` stops with a message naming the setting to change when
/// loco's `workers.mode` is not `BackgroundQueue` (loco then never calls
/// `Hooks::connect_workers`, so [`start_worker`] would never run); and when the
/// log filter drops every `cacheback` line while letting loco's through, start-up
/// prints a warning with the `logger.override_filter` to set, and the doctor
/// check shows it (⚠️).
///
/// ```
/// let initializer = cacheback::loco::CachebackInitializer::new(|builder, _ctx| builder);
/// # let _ = initializer;
/// ```
#[derive(Clone)]
pub struct CachebackInitializer {
    configure: Arc<Configure>,
}

impl std::fmt::Debug for CachebackInitializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachebackInitializer")
    }
}

impl CachebackInitializer {
    /// An initializer whose `configure` registers the app's jobs on the builder.
    pub fn new(configure: impl Fn(Builder, &AppContext) -> Builder + Send + Sync + 'static) -> Self {
        Self { configure: Arc::new(configure) }
    }

    /// Builds the engine for `ctx` and stores it, unless it is already there.
    /// Returns the stored handle.
    ///
    /// # Errors
    ///
    /// The settings are invalid or a store cannot be reached.
    pub async fn install(&self, ctx: &AppContext) -> Result<Cacheback, Error> {
        if let Some(cache) = from_context(ctx) {
            return Ok(cache);
        }
        let settings = settings(ctx)?;
        // What refreshes in a worker need from loco: the `AppContext` of
        // `#[cacheback]` functions taking `&AppContext`, and the connection
        // of the ORM jobs.
        let builder = settings.builder_with(&provided(ctx, &settings)).await?.extension(ctx.clone());
        #[cfg(feature = "sea-orm")]
        let builder = builder.extension(ctx.db.clone());
        let cache = (self.configure)(builder, ctx).build()?;
        cache.install_global();
        tracing::info!(
            target: "cacheback",
            jobs = cache.registered_jobs().len(),
            "cacheback initialized with default cache `{}`",
            cache.default_alias()
        );
        ctx.shared_store.insert(cache.clone());
        Ok(cache)
    }
}

/// What the app gives the settings: its database (`backend: database`
/// without a `url`) and its queue (`task_queue: loco`).
fn provided(ctx: &AppContext, settings: &Settings) -> Provided {
    let provided = Provided::default().queue(Arc::new(LocoQueue::new(ctx, settings.loco.queue.clone())));
    #[cfg(feature = "sea-orm")]
    let provided = provided.database(ctx.db.clone());
    provided
}

/// The running Sidekiq worker, kept in `ctx.shared_store` between
/// [`start_worker`] and [`stop_worker`].
struct RunningWorker(std::sync::Mutex<Option<WorkerHandle>>);

/// Starts cacheback's Sidekiq worker: call it from `Hooks::connect_workers`,
/// which loco runs for `cargo loco start --worker`, `--server-and-worker` and
/// `--all`, and only with `workers.mode: BackgroundQueue` (with another mode,
/// [`CachebackInitializer`] stops `cargo loco start` with a message saying
/// so). With the in-process queue there is nothing to start: refreshes run in
/// the process that queues them. Calling it again while the worker runs does
/// nothing.
///
/// ```no_run
/// # use loco_rs::{app::AppContext, bgworker::Queue, Result};
/// // impl Hooks for App { ...
/// async fn connect_workers(ctx: &AppContext, _queue: &Queue) -> Result<()> {
///     cacheback::loco::start_worker(ctx).await
/// }
/// async fn on_shutdown(ctx: &AppContext) {
///     cacheback::loco::stop_worker(ctx).await;
/// }
/// ```
///
/// # Errors
///
/// The initializer has not run, or the Sidekiq settings are invalid.
pub async fn start_worker(ctx: &AppContext) -> loco_rs::Result<()> {
    let running = ctx
        .shared_store
        .get_ref::<RunningWorker>()
        .is_some_and(|running| running.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some());
    if running {
        return Ok(());
    }
    let cache = from_context(ctx).ok_or_else(|| {
        loco_rs::Error::Message(
            "cacheback: start_worker needs the cacheback initializer to have run".to_owned(),
        )
    })?;
    let Some(worker) = settings(ctx).map_err(to_loco)?.worker(cache).await.map_err(to_loco)? else {
        tracing::info!(target: "cacheback", "In-process queue: refreshes run in the web process, no worker to start");
        return Ok(());
    };
    let handle = worker.start();
    ctx.shared_store.insert(RunningWorker(std::sync::Mutex::new(Some(handle))));
    Ok(())
}

/// Stops the worker [`start_worker`] started, gracefully: no new refreshes,
/// in-flight ones finish (up to `sidekiq.shutdown_timeout_secs`, then they
/// go back on their queue). Call it from `Hooks::on_shutdown`.
pub async fn stop_worker(ctx: &AppContext) {
    let handle = ctx
        .shared_store
        .get_ref::<RunningWorker>()
        .and_then(|running| running.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
    if let Some(handle) = handle {
        handle.shutdown().await;
    }
}

/// The settings under `initializers.cacheback` in the app's config (defaults if absent).
///
/// # Errors
///
/// The section does not parse; the error names the key.
pub fn settings(ctx: &AppContext) -> Result<Settings, Error> {
    match ctx.config.initializers.as_ref().and_then(|all| all.get("cacheback")) {
        None | Some(serde_json::Value::Null) => Ok(Settings::default()),
        Some(value) => Settings::from_json(value.clone()),
    }
}

fn to_loco(err: Error) -> loco_rs::Error {
    loco_rs::Error::Message(format!("cacheback: {err}"))
}

/// Why `cargo loco start --worker` could not run cacheback's worker with this
/// config, as one line saying what to change; `None` when it can.
///
/// The worker is started by [`start_worker`] from `Hooks::connect_workers`,
/// and loco (1.2, `boot::register_workers`) calls that hook only when
/// `workers.mode` is `BackgroundQueue`. No hook tells a library or an app
/// which start mode (`--worker` or not) `cargo loco start` runs in, so the
/// worker cannot be started some other way in the other modes: the config
/// is refused in every process, the web one included, since its refreshes
/// would wait in Redis forever.
fn worker_mode_problem(ctx: &AppContext, settings: &Settings) -> Option<String> {
    let mode = &ctx.config.workers.mode;
    if settings.chosen_sidekiq().is_none() || *mode == WorkerMode::BackgroundQueue {
        return None;
    }
    Some(format!(
        "cacheback: `initializers.cacheback.task_queue: sidekiq` needs cacheback's worker, which \
         `cacheback::loco::start_worker` starts from `Hooks::connect_workers`; loco calls that hook \
         only with `workers.mode: BackgroundQueue`, and config/{env}.yaml has `workers.mode: \
         {mode:?}`, so `cargo loco start --worker` would run no refresh. In config/{env}.yaml set \
         `workers: {{ mode: BackgroundQueue }}` and give loco its own queue, which that mode requires, \
         e.g. `queue: {{ kind: Redis, uri: <the Redis of initializers.cacheback.sidekiq.url>, \
         queues: [loco], dangerously_flush: false }}` (loco-rs feature `worker_redis`; its queue \
         names must differ from `sidekiq.queues`); or set `initializers.cacheback.task_queue: \
         in_process`",
        env = ctx.environment,
    ))
}

/// Why `task_queue: loco` would refresh in the request rather than in a
/// worker: `workers.mode: BackgroundQueue` without a `queue:` section (loco's
/// `QueueProviderMissing`, on which every enqueue fails over); `None` when
/// loco's queue takes the refreshes, or its mode runs them in the process.
fn loco_queue_problem(ctx: &AppContext, settings: &Settings) -> Option<String> {
    let loco = matches!(settings.queue_choice(), Ok(crate::settings::QueueChoice::Loco(_)));
    if !loco || ctx.config.workers.mode != WorkerMode::BackgroundQueue || ctx.queue_provider.is_some() {
        return None;
    }
    Some(format!(
        "`initializers.cacheback.task_queue: loco` with `workers.mode: BackgroundQueue` needs loco's \
         queue, and config/{env}.yaml has no `queue:` section: every refresh will run in the request \
         that queues it. Add `queue: {{ kind: Postgres, uri: ... }}` (or Sqlite, Redis)",
        env = ctx.environment,
    ))
}

/// The warning for a log filter that lets loco's lines through but drops
/// every `cacheback` one; `None` when cacheback's errors reach the logs, or
/// when nothing is logged at all (no subscriber, or `logger.level: off`).
///
/// loco (1.2, `logger::init`) builds its filter from `RUST_LOG` if set, else
/// from `logger.override_filter`, else from a fixed list of its own crates plus
/// the app's, at `logger.level`; it offers no way for a library to add itself
/// to that list, and the global subscriber cannot be changed once installed
/// (before any initializer runs). So the fix is in the app's config, and this
/// is what tells the app it is missing.
fn log_filter_problem(ctx: &AppContext) -> Option<String> {
    let loco_logged = tracing::enabled!(target: "loco_rs", tracing::Level::ERROR);
    let cacheback_logged = tracing::enabled!(target: "cacheback", tracing::Level::ERROR);
    if !loco_logged || cacheback_logged {
        return None;
    }
    let logger = &ctx.config.logger;
    let level = match logger.level {
        LogLevel::Off => LogLevel::Info,
        ref level => level.clone(),
    };
    let filter = logger.override_filter.as_ref().map_or_else(
        || {
            format!(
                "loco_rs={level},sea_orm_migration={level},tower_http={level},sqlx::query={level},\
                 <your_app>={level},cacheback={level}"
            )
        },
        |filter| format!("{filter},cacheback={level}"),
    );
    let mut text = format!(
        "cacheback: WARNING: the log filter drops every `cacheback` line, so failed refreshes, \
         jobs sent to `dead`, Redis errors and failovers are not logged. loco's filter lets \
         through only its own crates and the app's unless `logger.override_filter` names \
         others; in config/{env}.yaml set\n\n  logger:\n    override_filter: {filter}\n",
        env = ctx.environment,
    );
    if logger.override_filter.is_none() {
        text.push_str(
            "\n(`<your_app>`: your crate's name, as `Hooks::app_name` returns it; an override \
             replaces loco's list, hence loco's crates in it.)\n",
        );
    }
    if let Ok(rust_log) = std::env::var("RUST_LOG") {
        text.push_str(&format!(
            "\nRUST_LOG (`{rust_log}`) replaces that filter in this process: add \
             `cacheback={level}` to it as well.\n"
        ));
    }
    Some(text)
}

/// The engine is installed from three hooks because no one hook runs in
/// every way a loco app boots: `before_run` runs for `cargo loco start` (in
/// every server and worker mode) but not when loco's test helpers boot the
/// app; `after_routes` runs whenever the router is built (the server and the
/// test helpers) but not in a worker-only start; `check` is all that runs for
/// `cargo loco doctor`. [`CachebackInitializer::install`] is idempotent, so
/// the first hook to run builds the engine and the others find it.
///
/// `before_run` and `check` also look at what `install` does not: whether
/// loco's `workers.mode` can start the Sidekiq worker (an error), and whether
/// the log filter lets cacheback's lines through (a warning).
#[async_trait]
impl Initializer for CachebackInitializer {
    fn name(&self) -> String {
        "cacheback".to_owned()
    }

    async fn before_run(&self, ctx: &AppContext) -> loco_rs::Result<()> {
        if let Some(warning) = log_filter_problem(ctx) {
            eprintln!("{warning}");
        }
        let settings = settings(ctx).map_err(to_loco)?;
        if let Some(warning) = loco_queue_problem(ctx, &settings) {
            tracing::warn!(target: "cacheback", "{warning}");
        }
        if let Some(problem) = worker_mode_problem(ctx, &settings) {
            return Err(loco_rs::Error::Message(problem));
        }
        self.install(ctx).await.map(drop).map_err(to_loco)
    }

    async fn after_routes(&self, router: axum::Router, ctx: &AppContext) -> loco_rs::Result<axum::Router> {
        self.install(ctx).await.map_err(to_loco)?;
        Ok(router)
    }

    /// ❌ when a store or the queue does not answer, or `workers.mode`
    /// cannot start the worker; otherwise ⚠️ when the log filter drops
    /// cacheback's lines; otherwise ✅.
    async fn check(&self, ctx: &AppContext) -> loco_rs::Result<Option<Check>> {
        let outcome = match self.install(ctx).await {
            Ok(cache) => cache.ping().await,
            Err(err) => Err(err),
        };
        let worker_mode = settings(ctx).ok().and_then(|settings| worker_mode_problem(ctx, &settings));
        let logs = log_filter_problem(ctx);
        let (status, message) = match (&outcome, &worker_mode) {
            (Err(_), _) => (CheckStatus::NotOk, "cacheback: a cache store or the queue is unreachable"),
            (Ok(()), Some(_)) => (CheckStatus::NotOk, "cacheback: `workers.mode` cannot start the worker"),
            (Ok(()), None) if logs.is_some() => {
                (CheckStatus::NotConfigure, "cacheback: the log filter drops cacheback's lines")
            }
            (Ok(()), None) => (CheckStatus::Ok, "cacheback: every cache store and the queue answer"),
        };
        let details: Vec<String> =
            [outcome.err().map(|err| err.to_string()), worker_mode, logs].into_iter().flatten().collect();
        Ok(Some(Check {
            status,
            message: message.to_owned(),
            // loco prints the description after three spaces: indent every line.
            description: (!details.is_empty()).then(|| {
                details.iter().map(|d| d.trim_end()).collect::<Vec<_>>().join("\n").replace('\n', "\n   ")
            }),
        }))
    }
}
