//! `/metrics`: cacheback's metrics in the Prometheus text format, for a
//! Prometheus server to scrape; 404 when `settings.metrics` is off.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use loco_rs::prelude::*;

use super::get_shared;
use crate::initializers::metrics::Metrics;

/// The content type of the text format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition.
pub async fn render(State(ctx): State<Arc<AppContext>>) -> Result<Response> {
    let metrics = Metrics::from_context(&ctx).ok_or(Error::NotFound)?;
    Ok(([(header::CONTENT_TYPE, TEXT_FORMAT)], metrics.render()).into_response())
}

/// The route (see [`get_shared`] for why not `get(render)`).
pub fn routes(ctx: &AppContext) -> Routes {
    Routes::new().add("/metrics", get_shared(render, ctx))
}
