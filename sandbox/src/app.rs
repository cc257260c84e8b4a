//! The loco app.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cacheback::loco::{CachebackInitializer, CachebackTask, RefreshWorker};
use loco_rs::app::{AppContext, Hooks, Initializer};
use loco_rs::bgworker::{BackgroundWorker, Queue};
use loco_rs::boot::{BootResult, StartMode, create_app};
use loco_rs::config::Config;
use loco_rs::controller::AppRoutes;
use loco_rs::db::truncate_table;
use loco_rs::environment::Environment;
use loco_rs::task::Tasks;
use loco_rs::{Result, db};
use migration::Migrator;
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};

use crate::config::Settings;
use crate::initializers::metrics::MetricsInitializer;
use crate::models::dummy_models;
use crate::{cached, controllers};

/// `fixtures/` of the workspace: from its root (`cargo loco`), or from the
/// crate (tests).
fn fixtures_dir() -> PathBuf {
    let here = PathBuf::from("fixtures");
    if here.is_dir() { here } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures") }
}

/// An arbitrary constant: the PostgreSQL advisory lock that serializes
/// [`converge`] across processes.
const SETUP_LOCK: i64 = 0x6361_6368_6562_6163; // b"cachebac"

/// Seeds the 100 rows if the table is empty.
async fn seed_if_empty(ctx: &AppContext) -> Result<()> {
    if dummy_models::Entity::is_empty(&ctx.db).await? {
        App::seed(ctx, &fixtures_dir()).await?;
        tracing::info!("seeded dummy_models from fixtures/dummy_models.yaml");
    }
    Ok(())
}

/// On start: migrates if `settings.migrate_on_start`, then seeds an empty
/// table; on PostgreSQL one process at a time.
///
/// The web and the worker process of a fresh deployment (the Procfile) start
/// together; with loco's `database.auto_migrate` both would create the tables
/// at once and one would fail on PostgreSQL's catalog constraints. So the
/// production config leaves `auto_migrate` off and sets `migrate_on_start`.
async fn converge(ctx: &AppContext) -> Result<()> {
    let migrate = Settings::from_context(ctx)?.migrate_on_start;
    // A transaction-scoped advisory lock holds one pooled connection until
    // `commit`; the migrations and the seed run on other connections.
    let lock = if ctx.db.get_database_backend() == DbBackend::Postgres {
        let lock = ctx.db.begin().await?;
        lock.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({SETUP_LOCK})")).await?;
        Some(lock)
    } else {
        None
    };
    if migrate {
        db::migrate::<Migrator>(&ctx.db).await?;
    }
    seed_if_empty(ctx).await?;
    if let Some(lock) = lock {
        lock.commit().await?;
    }
    Ok(())
}

/// The sandbox app.
pub struct App;

#[async_trait]
impl Hooks for App {
    fn app_name() -> &'static str {
        env!("CARGO_CRATE_NAME")
    }

    fn app_version() -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    async fn boot(mode: StartMode, environment: &Environment, config: Config) -> Result<BootResult> {
        create_app::<Self, Migrator>(mode, environment, config).await
    }

    /// Parses the sandbox's settings, once (see [`Settings`]): a wrong value
    /// stops every command with a message that names its key.
    ///
    /// Also sets up loco's queue, tried twice. The web and the worker process
    /// of a fresh deployment start together, and loco's PostgreSQL queue
    /// creates its table on start (in `create_app`, after this hook) without
    /// a lock: of two processes creating it at once, one fails on
    /// PostgreSQL's catalog and stops. Here the loser's second try finds the
    /// table, and loco's own set-up then has nothing to create.
    async fn after_context(ctx: AppContext) -> Result<AppContext> {
        ctx.shared_store.insert(Settings::from_config(&ctx.config)?);
        if let Some(queue) = &ctx.queue_provider
            && let Err(error) = queue.setup().await
        {
            tracing::warn!(%error, "setting up loco's queue failed; trying again");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            queue.setup().await?;
        }
        Ok(ctx)
    }

    /// Every `start` (server, worker or both), not the other CLI commands:
    /// see [`converge`]. Runs after loco's own `auto_migrate` where that is on
    /// (development; the test environment also recreates the schema).
    async fn before_run(ctx: &AppContext) -> Result<()> {
        converge(ctx).await
    }

    /// The metrics recorder first: cacheback registers a job's metrics in
    /// the recorder installed at its first lookup.
    async fn initializers(_ctx: &AppContext) -> Result<Vec<Box<dyn Initializer>>> {
        Ok(vec![Box::new(MetricsInitializer), Box::new(CachebackInitializer::new(cached::register))])
    }

    fn routes(ctx: &AppContext) -> AppRoutes {
        AppRoutes::with_default_routes()
            .add_route(controllers::home::routes(ctx))
            .add_route(controllers::items::routes(ctx))
            .add_route(controllers::dashboard::routes(ctx))
            .add_route(controllers::metrics::routes(ctx))
    }

    /// `cargo loco start --worker` / `--server-and-worker`: cacheback's
    /// refreshes on loco's queue (`task_queue: loco`) and its Sidekiq worker
    /// (`task_queue: sidekiq`; with another queue it starts nothing).
    async fn connect_workers(ctx: &AppContext, queue: &Queue) -> Result<()> {
        queue.register(RefreshWorker::build(ctx)).await?;
        cacheback::loco::start_worker(ctx).await
    }

    async fn on_shutdown(ctx: &AppContext) {
        cacheback::loco::stop_worker(ctx).await;
    }

    /// `cargo loco task cacheback command:<stats|invalidate|delete|clear|retry-dead> ...`.
    fn register_tasks(tasks: &mut Tasks) {
        tasks.register(CachebackTask::new(CachebackInitializer::new(cached::register)));
    }

    async fn truncate(ctx: &AppContext) -> Result<()> {
        truncate_table(&ctx.db, dummy_models::Entity).await?;
        Ok(())
    }

    async fn seed(ctx: &AppContext, base: &Path) -> Result<()> {
        db::seed::<dummy_models::ActiveModel>(&ctx.db, &base.join("dummy_models.yaml").display().to_string())
            .await?;
        Ok(())
    }
}
