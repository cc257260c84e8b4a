//! `/items/{id}`: one row through [`QuerySetGetJob`] (Django's
//! `objects.get(pk=id)`, cached): 200 with the row as JSON, 404 for an id no
//! row has, 400 for an id that is not a number.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use cacheback::orm::{Filters, QuerySetGetJob};
use loco_rs::prelude::*;

use super::get_shared;
use crate::models::dummy_models;

/// The row `id`, from the cache when possible: a miss is fetched in the
/// request. A missing row is a 404 through cacheback's loco conversion (the
/// job's `QueryError::NotFound`), with nothing internal in the body.
pub async fn show(State(ctx): State<Arc<AppContext>>, Path(id): Path<String>) -> Result<Response> {
    let id: i32 = id.parse().map_err(|_| Error::BadRequest("`id` must be an integer".to_owned()))?;
    let cache = cacheback::loco::from_context(&ctx)
        .ok_or_else(|| Error::Message("cacheback is not initialized".to_owned()))?;
    let filters = Filters::parse::<dummy_models::Entity>([("id", id)])?;
    let row = cache.job(QuerySetGetJob::<dummy_models::Entity>::new(ctx.db.clone())).get(&filters).await?;
    match row {
        Some(row) => format::json(&*row),
        None => Err(Error::NotFound),
    }
}

/// The route.
pub fn routes(ctx: &AppContext) -> Routes {
    Routes::new().prefix("/items").add("/{id}", get_shared(show, ctx))
}
