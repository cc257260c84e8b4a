//! The loco app.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cacheback::loco::CachebackInitializer;
use loco_rs::app::{AppContext, Hooks, Initializer};
use loco_rs::bgworker::Queue;
use loco_rs::boot::{BootResult, StartMode, create_app};
use loco_rs::config::Config;
use loco_rs::controller::AppRoutes;
use loco_rs::db::truncate_table;
use loco_rs::environment::Environment;
use loco_rs::task::Tasks;
use loco_rs::{Result, db};
use migration::Migrator;
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::models::_entities::dummy_models;
use crate::{controllers, jobs};

/// `fixtures/` of the workspace: from its root (`cargo loco`), or from the
/// crate (tests).
fn fixtures_dir() -> PathBuf {
    let here = PathBuf::from("fixtures");
    if here.is_dir() { here } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures") }
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

    /// Seeds the 100 rows on first start.
    async fn before_run(ctx: &AppContext) -> Result<()> {
        if dummy_models::Entity::find().count(&ctx.db).await? == 0 {
            Self::seed(ctx, &fixtures_dir()).await?;
            tracing::info!("seeded dummy_models from fixtures/dummy_models.yaml");
        }
        Ok(())
    }

    async fn initializers(_ctx: &AppContext) -> Result<Vec<Box<dyn Initializer>>> {
        Ok(vec![Box::new(CachebackInitializer::new(jobs::register))])
    }

    fn routes(_ctx: &AppContext) -> AppRoutes {
        AppRoutes::empty().add_route(controllers::home::routes())
    }

    /// `cargo loco start --worker` / `--server-and-worker`: run cacheback's worker.
    async fn connect_workers(ctx: &AppContext, _queue: &Queue) -> Result<()> {
        cacheback::loco::start_worker(ctx).await
    }

    async fn on_shutdown(ctx: &AppContext) {
        cacheback::loco::stop_worker(ctx).await;
    }

    fn register_tasks(_tasks: &mut Tasks) {}

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
