//! loco-rs glue (feature `loco`): reads `initializers.cacheback` from the app's
//! `config/*.yaml`, builds the engine and puts it in `ctx.shared_store`.
//!
//! Everything loco-specific lives in this module; the engine itself is usable
//! without loco through [`Cacheback::builder`].
//!
//! ```no_run
//! use cacheback::loco::CachebackInitializer;
//! # struct VanillaJob;
//! # impl cacheback::Job for VanillaJob {
//! #     type Args = ();
//! #     type Output = Vec<String>;
//! #     async fn fetch(&self, _: &()) -> Result<Vec<String>, cacheback::FetchError> { Ok(vec![]) }
//! # }
//! // In `Hooks::initializers`:
//! let initializer = CachebackInitializer::new(|builder, _ctx| {
//!     // Register the jobs a worker may refresh; the factory may capture `ctx.db`.
//!     builder.register(|_state| Ok(VanillaJob))
//! });
//! # let _: Box<dyn loco_rs::app::Initializer> = Box::new(initializer);
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use loco_rs::app::{AppContext, Initializer};
use loco_rs::doctor::{Check, CheckStatus};

use crate::engine::{Builder, Cacheback};
use crate::error::Error;
use crate::queue::sidekiq::WorkerHandle;
use crate::settings::Settings;

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
        let builder = settings.builder().await?.extension(ctx.clone());
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

/// The engine stored in `ctx.shared_store` by [`CachebackInitializer`].
///
/// ```no_run
/// # fn handler(ctx: &loco_rs::app::AppContext) {
/// let cache = cacheback::loco::from_context(ctx).expect("the cacheback initializer ran");
/// # let _ = cache;
/// # }
/// ```
pub fn from_context(ctx: &AppContext) -> Option<Cacheback> {
    ctx.shared_store.get::<Cacheback>()
}

/// The running Sidekiq worker, kept in `ctx.shared_store` between
/// [`start_worker`] and [`stop_worker`].
struct RunningWorker(std::sync::Mutex<Option<WorkerHandle>>);

/// Starts cacheback's Sidekiq worker: call it from `Hooks::connect_workers`,
/// which loco runs for `cargo loco start --worker` and `--server-and-worker`
/// only. With the in-process queue there is nothing to start: refreshes run in
/// the process that queues them.
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

/// The engine is installed from three hooks because no one hook runs in
/// every way a loco app boots: `before_run` runs for `cargo loco start` (in
/// every server and worker mode) but not when loco's test helpers boot the
/// app; `after_routes` runs whenever the router is built (the server and the
/// test helpers) but not in a worker-only start; `check` is all that runs for
/// `cargo loco doctor`. [`CachebackInitializer::install`] is idempotent, so
/// the first hook to run builds the engine and the others find it.
#[async_trait]
impl Initializer for CachebackInitializer {
    fn name(&self) -> String {
        "cacheback".to_owned()
    }

    async fn before_run(&self, ctx: &AppContext) -> loco_rs::Result<()> {
        self.install(ctx).await.map(drop).map_err(to_loco)
    }

    async fn after_routes(&self, router: axum::Router, ctx: &AppContext) -> loco_rs::Result<axum::Router> {
        self.install(ctx).await.map_err(to_loco)?;
        Ok(router)
    }

    async fn check(&self, ctx: &AppContext) -> loco_rs::Result<Option<Check>> {
        let outcome = match self.install(ctx).await {
            Ok(cache) => cache.ping().await,
            Err(err) => Err(err),
        };
        Ok(Some(match outcome {
            Ok(()) => Check {
                status: CheckStatus::Ok,
                message: "cacheback: every cache store and the queue answer".to_owned(),
                description: None,
            },
            Err(err) => Check {
                status: CheckStatus::NotOk,
                message: "cacheback: a cache store or the queue is unreachable".to_owned(),
                description: Some(err.to_string()),
            },
        }))
    }
}
