//! `/items/{id}`: one row through [`QuerySetGetJob`] (Django's
//! `objects.get(pk=id)`, cached): 200 with the row as JSON, 404 for an id no
//! row has, 400 for an id that is not a number. `POST` renames it: the
//! cached reads of the table go stale (the model's `after_save` hook), and
//! show the new name after one refresh.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use cacheback::orm::{Filters, QuerySetGetJob};
use loco_rs::prelude::*;
use serde::Deserialize;

use super::get_shared;
use crate::models::dummy_models;

/// The row `id`, from the cache when possible: a miss is fetched in the
/// request. A missing row is a 404 through cacheback's loco conversion (the
/// job's `QueryError::NotFound`), with nothing internal in the body.
pub async fn show(State(ctx): State<Arc<AppContext>>, Path(id): Path<String>) -> Result<Response> {
    let id = parse_id(&id)?;
    let cache = cacheback::loco::from_context(&ctx)
        .ok_or_else(|| Error::Message("cacheback is not initialized".to_owned()))?;
    let filters = Filters::parse::<dummy_models::Entity>([("id", id)])?;
    let row = cache.job(QuerySetGetJob::<dummy_models::Entity>::new(ctx.db.clone())).get(&filters).await?;
    match row {
        Some(row) => format::json(&*row),
        None => Err(Error::NotFound),
    }
}

/// A new name: 1 to 100 characters, no NUL (PostgreSQL text cannot hold it).
#[derive(Debug, Deserialize, Validate)]
pub struct Rename {
    /// The new name.
    #[validate(length(min = 1, max = 100, message = "must be 1 to 100 characters"))]
    #[validate(custom(function = "no_nul"))]
    pub name: String,
}

fn no_nul(name: &str) -> Result<(), validator::ValidationError> {
    if name.contains('\0') {
        return Err(validator::ValidationError::new("nul").with_message("must not contain NUL".into()));
    }
    Ok(())
}

/// Renames the row `id` (a JSON body, `{"name": ".."}`, validated: 400 with
/// the field's message otherwise), and answers the row as stored. JSON only:
/// a cross-site form cannot send `application/json` without a CORS
/// preflight, which this app does not allow, so the write needs no CSRF
/// token.
pub async fn rename(
    State(ctx): State<AppContext>,
    Path(id): Path<String>,
    JsonValidateWithMessage(rename): JsonValidateWithMessage<Rename>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let row = dummy_models::Entity::find_by_id(id).one(&ctx.db).await?.ok_or(Error::NotFound)?;
    format::json(row.rename(&ctx.db, &rename.name).await?)
}

fn parse_id(id: &str) -> Result<i32> {
    id.parse().map_err(|_| Error::BadRequest("`id` must be an integer".to_owned()))
}

/// The routes.
pub fn routes(ctx: &AppContext) -> Routes {
    Routes::new().prefix("/items").add("/{id}", get_shared(show, ctx).post(rename))
}
