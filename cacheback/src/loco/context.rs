//! Where the engine lives in a loco app: `ctx.shared_store`, written by the
//! initializer and read by handlers, tasks and the refresh worker.

use loco_rs::app::AppContext;

use crate::engine::Cacheback;

/// The engine stored in `ctx.shared_store` by [`CachebackInitializer`](super::CachebackInitializer).
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
