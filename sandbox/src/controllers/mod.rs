//! The sandbox's controllers.

use std::sync::Arc;

use axum::handler::Handler;
use axum::routing::{MethodRouter, get_service};
use loco_rs::app::AppContext;

pub mod dashboard;
pub mod home;
pub mod items;
pub mod metrics;

/// A `GET` route to `handler`, which takes `State<Arc<AppContext>>`: what
/// every controller mounts its handlers with, in place of loco's usual
/// `get(handler)`.
///
/// A performance workaround. With `get(handler)`, axum hands every request
/// its own clone of the router's state, and cloning loco's `AppContext`
/// deep-copies the loaded config: a third of the CPU time of a cache HIT,
/// measured with `scripts/load` and `perf`. A handler served over one
/// `Arc<AppContext>` costs a request only the `Arc`'s clone. loco's
/// middlewares wrap it all the same.
pub fn get_shared<H, T>(handler: H, ctx: &AppContext) -> MethodRouter<AppContext>
where
    H: Handler<T, Arc<AppContext>>,
    T: 'static,
{
    get_service(handler.with_state(Arc::new(ctx.clone())))
}
