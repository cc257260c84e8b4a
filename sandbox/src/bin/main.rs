use loco_rs::cli;
use migration::Migrator;
use sandbox::app::App;

/// mimalloc rather than glibc's allocator: under `scripts/load`, glibc's
/// `malloc`/`free` (arena locks, consolidation) took ~15 % of the web
/// process's CPU time per cached page.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> loco_rs::Result<()> {
    cli::main::<App, Migrator>().await
}
