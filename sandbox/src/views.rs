//! askama views.

use askama::Template;
use axum::response::Response;
use loco_rs::prelude::*;

use crate::models::_entities::dummy_models::Model;

/// The seed's `index.html`: the items, as a list.
#[derive(Template)]
#[template(path = "index.html")]
struct Index<'a> {
    items: &'a [Model],
}

/// Renders the item list.
pub fn index(items: &[Model]) -> Result<Response> {
    let body = Index { items }.render().map_err(|e| Error::Message(format!("template: {e}")))?;
    format::html(&body)
}
