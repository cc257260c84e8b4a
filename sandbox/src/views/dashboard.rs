//! The dashboard `/_cacheback`: the jobs' numbers, the chart, the queues.

use askama::Template;
use axum::response::Response;
use loco_rs::prelude::*;

use super::{Link, nav, render};

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
pub fn html(data: &DashboardData) -> Result<String> {
    render(&Dashboard {
        metrics_on: data.jobs.is_some(),
        jobs: data.jobs.as_deref().unwrap_or_default(),
        chart: &data.chart,
        queue_note: &data.queue_note,
        queue_error: data.queue_error.as_deref(),
        queues: &data.queues,
    })
}

/// Renders the dashboard.
pub fn show(data: &DashboardData) -> Result<Response> {
    format::html(&html(data)?)
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
        let html = html(&data).unwrap();
        assert!(html.contains("<p id=\"metrics-off\">"), "{html}");
        assert!(!html.contains("id=\"jobs\"") && !html.contains("<svg"), "{html}");
        assert!(html.contains("<tr data-queue=\"in_process\">"), "{html}");
        assert!(html.contains("<td class=\"workers\">4</td>"), "{html}");
        assert!(html.contains("<a href=\"/_cacheback\" aria-current=\"page\">dashboard</a>"), "{html}");
    }
}
