//! askama views: the page `/` ([`index`]) and the dashboard `/_cacheback`
//! ([`dashboard`]), both on `templates/base.html`, which holds the nav and
//! the stylesheet.
//!
//! The stylesheet is an inline `<style>` block of the base template rather
//! than a file under `assets/`: loco serves files only through its `static`
//! middleware, which every environment's config would have to turn on (with
//! a folder and a fallback), for twenty lines that ride along with each page
//! at no extra request.

use std::fmt::Display;
use std::sync::LazyLock;

use askama::Template;
use axum::response::Response;
use cacheback::CacheStatus;
use chrono::format::{Item, StrftimeItems};
use loco_rs::prelude::*;

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

    fn label(self) -> &'static str {
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

/// A link of the nav.
struct Link {
    href: &'static str,
    label: &'static str,
    current: bool,
}

/// The nav: every view, then the dashboard.
fn nav(current: Option<View>) -> Vec<Link> {
    View::ALL
        .iter()
        .map(|&view| Link { href: view.href(), label: view.label(), current: current == Some(view) })
        .chain([Link { href: "/_cacheback", label: "dashboard", current: current.is_none() }])
        .collect()
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
    format::html(&page.render().map_err(|e| Error::Message(format!("template: {e}")))?)
}

/// One row of the dashboard's jobs, formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// `Job::name()`.
    pub name: String,
    /// HITs.
    pub hits: u64,
    /// STALEs.
    pub stales: u64,
    /// MISSes.
    pub misses: u64,
    /// HITs per lookup, as a percentage, or `—`.
    pub ratio: String,
    /// Refreshes run.
    pub refreshes: u64,
    /// Refreshes whose fetch failed.
    pub failures: u64,
    /// Median refresh duration, or `—`.
    pub p50: String,
    /// 99th percentile, or `—`.
    pub p99: String,
}

/// One row of the dashboard's queues, formatted (`—`: nothing to show).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueRow {
    /// The queue's name.
    pub name: String,
    /// Refreshes waiting (and, in process, running).
    pub depth: String,
    /// What `depth` counts.
    pub depth_title: Option<String>,
    /// Jobs waiting to be retried.
    pub retry: String,
    /// Jobs in the dead set.
    pub dead: String,
    /// What `dead` holds.
    pub dead_title: Option<String>,
    /// Workers.
    pub workers: String,
    /// What `workers` counts.
    pub workers_title: Option<String>,
}

/// `/_cacheback`.
#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard<'a> {
    metrics_on: bool,
    jobs: &'a [JobRow],
    chart: &'a str,
    queue_note: &'a str,
    queue_error: Option<&'a str>,
    queues: &'a [QueueRow],
}

impl Dashboard<'_> {
    fn nav(&self) -> Vec<Link> {
        nav(None)
    }
}

/// What the dashboard shows.
#[derive(Debug, Clone, Default)]
pub struct DashboardData {
    /// `None`: metrics are off.
    pub jobs: Option<Vec<JobRow>>,
    /// The chart's SVG (with metrics on).
    pub chart: String,
    /// What the queue rows are.
    pub queue_note: String,
    /// Why the queue's numbers are missing.
    pub queue_error: Option<String>,
    /// The queues.
    pub queues: Vec<QueueRow>,
}

/// The dashboard's HTML.
///
/// # Errors
///
/// The template fails.
pub fn dashboard_html(data: &DashboardData) -> Result<String> {
    Dashboard {
        metrics_on: data.jobs.is_some(),
        jobs: data.jobs.as_deref().unwrap_or_default(),
        chart: &data.chart,
        queue_note: &data.queue_note,
        queue_error: data.queue_error.as_deref(),
        queues: &data.queues,
    }
    .render()
    .map_err(|e| Error::Message(format!("template: {e}")))
}

/// Renders the dashboard.
pub fn dashboard(data: &DashboardData) -> Result<Response> {
    format::html(&dashboard_html(data)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_without_metrics_says_so_and_shows_the_queues() {
        let data = DashboardData {
            jobs: None,
            queue_note: "in process".into(),
            queues: vec![QueueRow {
                name: "in_process".into(),
                depth: "—".into(),
                retry: "—".into(),
                dead: "—".into(),
                workers: "4".into(),
                ..QueueRow::default()
            }],
            ..DashboardData::default()
        };
        let html = dashboard_html(&data).unwrap();
        assert!(html.contains("<p id=\"metrics-off\">"), "{html}");
        assert!(!html.contains("id=\"jobs\"") && !html.contains("<svg"), "{html}");
        assert!(html.contains("<tr data-queue=\"in_process\">"), "{html}");
        assert!(html.contains("<td class=\"workers\">4</td>"), "{html}");
        assert!(html.contains("<a href=\"/_cacheback\" aria-current=\"page\">dashboard</a>"), "{html}");
    }
}
