//! The page `/`: what one read of the cache found, and its items.

use std::fmt::Display;
use std::sync::LazyLock;

use askama::Template;
use axum::response::Response;
use cacheback::CacheStatus;
use chrono::format::{Item, StrftimeItems};
use loco_rs::prelude::*;

use super::{Link, nav, render};
use crate::models::dummy_models::Model;

/// The views of `/`, by the query that picks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `/`: `VanillaJob`.
    Vanilla,
    /// `?name=X`: `KeyedJob`.
    Keyed,
    /// `?name=X&qs`: `QuerySetFilterJob`.
    QuerySetFilter,
    /// `?function`: a `FunctionJob`.
    Function,
    /// `?function&q=X`: a `FunctionJob` with an argument.
    FunctionWithArg,
    /// `?decorator`: the `#[cacheback]` function.
    Decorator,
}

impl View {
    /// Every view, in the nav's order.
    pub const ALL: [Self; 6] = [
        Self::Vanilla,
        Self::Keyed,
        Self::QuerySetFilter,
        Self::Function,
        Self::FunctionWithArg,
        Self::Decorator,
    ];

    /// The view's link in the nav.
    #[must_use]
    pub fn href(self) -> &'static str {
        match self {
            Self::Vanilla => "/",
            Self::Keyed => "/?name=Item_1",
            Self::QuerySetFilter => "/?name=Item_1&qs",
            Self::Function => "/?function",
            Self::FunctionWithArg => "/?function&q=1",
            Self::Decorator => "/?decorator",
        }
    }

    /// Its heading.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Vanilla => "Vanilla job",
            Self::Keyed => "Keyed job",
            Self::QuerySetFilter => "Queryset filter job",
            Self::Function => "Function job",
            Self::FunctionWithArg => "Function job with an argument",
            Self::Decorator => "Decorated function",
        }
    }

    /// What it caches, and how.
    #[must_use]
    pub fn about(self) -> &'static str {
        match self {
            Self::Vanilla => {
                "every row, with a slow fetch; a miss is refreshed in the background (the page is empty until then)"
            }
            Self::Keyed => {
                "the rows of that name, keyed on it, fresh for 5 s, fetched in the request on a miss or when over 10 s old"
            }
            Self::QuerySetFilter => {
                "the rows of that name, through the ORM job, fresh for 10 s, refreshed in the background on a miss"
            }
            Self::Function => {
                "the rows whose name contains \"1\", from a plain async function, refreshed in the background on a miss"
            }
            Self::FunctionWithArg => {
                "the rows whose name contains q, from a plain async function, refreshed in the background on a miss"
            }
            Self::Decorator => {
                "the rows whose name contains \"3\", from a #[cacheback(5)] function: fresh for 5 s, fetched on a miss"
            }
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Vanilla => "vanilla",
            Self::Keyed => "keyed",
            Self::QuerySetFilter => "queryset filter",
            Self::Function => "function",
            Self::FunctionWithArg => "function with argument",
            Self::Decorator => "decorator",
        }
    }
}

/// What one read of the cache found: what the page `/` shows.
#[derive(Debug, Clone)]
pub struct Read<'a> {
    /// The view.
    pub view: View,
    /// The path and query read.
    pub uri: &'a str,
    /// The job's name (`Job::name()`).
    pub job: &'a str,
    /// How the item was found.
    pub status: CacheStatus,
    /// `Some(true)`: this read fetched; `Some(false)`: it queued a refresh.
    pub sync_fetch: Option<bool>,
    /// The synchronous fetch failed and stale data was served.
    pub refresh_failed: bool,
    /// Seconds since the data served was fetched.
    pub age: Option<f64>,
    /// Seconds until the data goes stale; negative: stale for that long.
    pub until_stale: Option<f64>,
    /// Whether a refresh is under way, so the page reloads itself: this read
    /// queued one, or it found the empty placeholder of a MISS whose refresh
    /// has not landed.
    pub pending: bool,
    /// The rows.
    pub items: &'a [Model],
}

/// The page `/`: the read's facts and the items, as a list.
#[derive(Template)]
#[template(path = "index.html")]
struct Index<'a> {
    view: View,
    uri: &'a str,
    job: &'a str,
    status: CacheStatus,
    sync_fetch: Option<bool>,
    refresh_failed: bool,
    age: Option<f64>,
    until_stale: Option<f64>,
    pending: bool,
    items: &'a [Model],
}

/// How the page shows `date_created`, parsed once rather than per row.
static CREATED: LazyLock<Vec<Item<'static>>> =
    LazyLock::new(|| StrftimeItems::new("%Y-%m-%d %H:%M:%S").collect());

impl Index<'_> {
    fn nav(&self) -> Vec<Link> {
        nav(Some(self.view))
    }

    /// An item's `date_created`, as the page shows it.
    fn created(&self, item: &Model) -> impl Display {
        item.date_created.format_with_items(CREATED.iter())
    }

    /// The status, as `data-status` and a class.
    fn status_attr(&self) -> &'static str {
        match self.status {
            CacheStatus::Hit => "hit",
            CacheStatus::Stale => "stale",
            CacheStatus::Miss => "miss",
        }
    }

    /// What the status means for this read.
    fn explanation(&self) -> &'static str {
        match (self.status, self.sync_fetch, self.refresh_failed) {
            (CacheStatus::Hit, ..) if self.pending => {
                "the empty placeholder a miss stored: its refresh has not landed yet"
            }
            (CacheStatus::Hit, ..) => "a fresh item, served from the cache",
            (CacheStatus::Stale, Some(true), true) => {
                "a stale item past its threshold, whose fetch in this request failed"
            }
            (CacheStatus::Stale, Some(true), false) => {
                "a stale item past its threshold: fetched in this request"
            }
            (CacheStatus::Stale, ..) => "a stale item, served at once while a refresh runs in the background",
            (CacheStatus::Miss, Some(true), _) => "nothing was cached: fetched in this request",
            (CacheStatus::Miss, ..) => "nothing was cached: a refresh was queued",
        }
    }

    /// Seconds, as the page shows them.
    fn seconds(&self, seconds: &f64) -> String {
        format!("{seconds:.1} s")
    }

    /// `fresh` or `stale`, and for how long.
    fn freshness(&self) -> Option<(&'static str, String)> {
        self.until_stale.map(|left| {
            if left >= 0.0 { ("fresh", self.seconds(&left)) } else { ("stale", self.seconds(&-left)) }
        })
    }
}

/// Renders the page of one read.
pub fn index(read: &Read<'_>) -> Result<Response> {
    let page = Index {
        view: read.view,
        uri: read.uri,
        job: read.job,
        status: read.status,
        sync_fetch: read.sync_fetch,
        refresh_failed: read.refresh_failed,
        age: read.age,
        until_stale: read.until_stale,
        pending: read.pending,
        items: read.items,
    };
    format::html(&render(&page)?)
}
