use async_trait::async_trait;
use cacheback::loco::{CachebackInitializer, CachebackTask};
use loco_rs::{
    app::{AppContext, Hooks, Initializer},
    bgworker::{BackgroundWorker, Queue},
    boot::{create_app, BootResult, StartMode},
    config::Config,
    controller::AppRoutes,
    environment::Environment,
    task::Tasks,
    Result,
};
use migration::Migrator;
use std::path::Path;

#[allow(unused_imports)]
use crate::{controllers, workers::downloader::DownloadWorker};

/// Registers the jobs a worker may have to rebuild from a queued refresh, in
/// one place for the app (`initializers`) and for `cargo loco task cacheback`
/// (`register_tasks`). `#[cacheback]` functions register themselves; `Job`
/// types and sea-orm entities go here (`.register(..)`, `.register_model::<..>()`).
pub fn register(builder: cacheback::Builder, _ctx: &AppContext) -> cacheback::Builder {
    builder
}

pub struct App;
#[async_trait]
impl Hooks for App {
    fn app_name() -> &'static str {
        env!("CARGO_CRATE_NAME")
    }

    fn app_version() -> String {
        format!(
            "{} ({})",
            env!("CARGO_PKG_VERSION"),
            option_env!("BUILD_SHA")
                .or(option_env!("GITHUB_SHA"))
                .unwrap_or("dev")
        )
    }

    async fn boot(
        mode: StartMode,
        environment: &Environment,
        config: Config,
    ) -> Result<BootResult> {
        create_app::<Self, Migrator>(mode, environment, config).await
    }

    async fn initializers(_ctx: &AppContext) -> Result<Vec<Box<dyn Initializer>>> {
        Ok(vec![Box::new(CachebackInitializer::new(register))])
    }

    fn routes(_ctx: &AppContext) -> AppRoutes {
        AppRoutes::with_default_routes() // controller routes below
            .add_route(controllers::report::routes())
    }
    async fn connect_workers(ctx: &AppContext, queue: &Queue) -> Result<()> {
        queue.register(DownloadWorker::build(ctx)).await?;
        cacheback::loco::start_worker(ctx).await
    }

    async fn on_shutdown(ctx: &AppContext) {
        cacheback::loco::stop_worker(ctx).await;
    }

    #[allow(unused_variables)]
    fn register_tasks(tasks: &mut Tasks) {
        // tasks-inject (do not remove)
        tasks.register(CachebackTask::new(CachebackInitializer::new(register)));
    }
    async fn truncate(_ctx: &AppContext) -> Result<()> {
        Ok(())
    }
    async fn seed(_ctx: &AppContext, _base: &Path) -> Result<()> {
        Ok(())
    }
}
