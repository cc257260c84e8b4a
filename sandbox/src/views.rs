//! askama views.

use std::fmt::Display;
use std::sync::LazyLock;

use askama::Template;
use axum::response::Response;
use chrono::format::{Item, StrftimeItems};
use loco_rs::prelude::*;

use crate::models::dummy_models::Model;

/// The seed's `index.html`: the items, as a list.
#[derive(Template)]
#[template(path = "index.html")]
struct Index<'a> {
    items: &'a [Model],
}

/// How the page shows `date_created`, parsed once rather than per row.
static CREATED: LazyLock<Vec<Item<'static>>> =
    LazyLock::new(|| StrftimeItems::new("%Y-%m-%d %H:%M:%S").collect());

impl Index<'_> {
    /// An item's `date_created`, as the page shows it.
    fn created(&self, item: &Model) -> impl Display {
        item.date_created.format_with_items(CREATED.iter())
    }
}

/// Renders the item list.
pub fn index(items: &[Model]) -> Result<Response> {
    let body = Index { items }.render().map_err(|e| Error::Message(format!("template: {e}")))?;
    format::html(&body)
}
