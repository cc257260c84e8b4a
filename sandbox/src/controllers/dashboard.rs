//! `/_cacheback`: what the cache did and what its queue holds, read-only.
//!
//! Per job (from the metrics, with `settings.metrics` on): lookups by
//! status, the hit ratio, refreshes, failures and refresh durations, and a
//! chart of the lookups per 5 s over the last 10 minutes. Per queue: its
//! depth, retry and dead sets and workers — for Sidekiq the numbers
//! `cargo loco task cacheback command:stats` prints
//! ([`cacheback::loco::queue_overview`]); for the in-process queue, what
//! this process runs.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use cacheback::loco::{QueueOverview, queue_overview};
use loco_rs::prelude::*;

use super::get_shared;
use crate::dashboard::chart;
use crate::dashboard::prometheus::Sample;
use crate::dashboard::stats::{self, JobStats};
use crate::initializers::metrics::Metrics;
use crate::views::dashboard::{self as view, DashboardData, JobRow, QueueRow};

/// Shown for a number there is none of.
const NONE: &str = "—";

/// The page.
pub async fn show(State(ctx): State<Arc<AppContext>>) -> Result<Response> {
    let cache = cacheback::loco::from_context(&ctx)
        .ok_or_else(|| Error::Message("cacheback is not initialized".to_owned()))?;
    let settings = cacheback::loco::settings(&ctx)?;
    let metrics = Metrics::from_context(&ctx);
    let samples = match &metrics {
        Some(metrics) => Some(metrics.samples().map_err(|e| Error::Message(format!("/metrics: {e}")))?),
        None => None,
    };
    let mut data = DashboardData::default();
    if let (Some(metrics), Some(samples)) = (&metrics, &samples) {
        data.jobs = Some(job_rows(cache.registered_jobs(), samples));
        data.chart = chart::svg(&metrics.history(), metrics.now());
    }
    match queue_overview(&settings).await {
        Ok(QueueOverview::Loco) => loco_queue_row(&ctx, &mut data).await,
        Ok(overview) => queue_rows(&overview, samples.as_deref(), &mut data),
        Err(err) => {
            tracing::warn!(error = %err, "the dashboard cannot read the queue's numbers");
            data.queue_note = "The queue's numbers come from its Redis.".to_owned();
            // The error (with the queue's address) goes to the log only.
            data.queue_error = Some("its Redis cannot be read right now (see the logs)".to_owned());
        }
    }
    view::show(&data)
}

/// `task_queue: loco`: cacheback's jobs on loco's database queue, read from
/// its table (its Redis queue's jobs are not counted).
async fn loco_queue_row(ctx: &AppContext, data: &mut DashboardData) {
    data.queue_note = "task_queue: loco — cacheback's jobs on loco's own queue; loco retries none, \
                       so a failed refresh stays failed until `command:retry-dead`."
        .to_owned();
    match cacheback::loco::loco_queue_stats(ctx).await {
        Ok(Some(stats)) => data.queues.push(QueueRow {
            name: stats.table.to_owned(),
            depth: stats.queued.to_string(),
            depth_title: Some(format!("queued; {} being run", stats.processing)),
            retry: NONE.to_owned(),
            dead: stats.failed.to_string(),
            dead_title: Some("failed refreshes (loco keeps their error)".to_owned()),
            workers: NONE.to_owned(),
            workers_title: Some("loco does not record its workers".to_owned()),
        }),
        Ok(None) => data.queue_note.push_str(" Its Redis queue's jobs are not counted here."),
        Err(err) => {
            tracing::warn!(error = %err, "the dashboard cannot read loco's queue");
            data.queue_error = Some("loco's queue cannot be read right now (see the logs)".to_owned());
        }
    }
}

/// A row per job: every registered one (none may have run yet) and every
/// one the metrics name, by name.
fn job_rows(registered: Vec<String>, samples: &[Sample]) -> Vec<JobRow> {
    let mut jobs = stats::jobs(samples);
    for name in registered {
        jobs.entry(name).or_default();
    }
    jobs.into_iter().map(|(name, stats)| job_row(name, &stats)).collect()
}

fn job_row(name: String, stats: &JobStats) -> JobRow {
    JobRow {
        name,
        hits: stats.hits,
        stales: stats.stales,
        misses: stats.misses,
        ratio: stats.hit_ratio().map_or_else(|| NONE.to_owned(), |r| format!("{:.1} %", r * 100.0)),
        refreshes: stats.refreshes,
        failures: stats.failures,
        p50: duration(stats.p50),
        p99: duration(stats.p99),
    }
}

/// A duration in seconds, in ms below a second.
fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => NONE.to_owned(),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1000.0),
        Some(s) => format!("{s:.2} s"),
    }
}

fn queue_rows(overview: &QueueOverview, samples: Option<&[Sample]>, data: &mut DashboardData) {
    match overview {
        QueueOverview::InProcess { concurrency } => {
            data.queue_note = "task_queue: in_process — refreshes run as tasks of the process that queues \
                               them; these are this process's."
                .to_owned();
            data.queues.push(QueueRow {
                name: stats::names::IN_PROCESS_QUEUE.to_owned(),
                depth: samples.map_or_else(|| NONE.to_owned(), |s| stats::in_flight(s).to_string()),
                depth_title: Some("refreshes queued and not yet ended (from the metrics)".to_owned()),
                retry: NONE.to_owned(),
                dead: NONE.to_owned(),
                dead_title: Some(
                    "the in-process queue does not retry: a failed refresh is logged".to_owned(),
                ),
                workers: concurrency.to_string(),
                workers_title: Some("refreshes run at once (in_process.concurrency)".to_owned()),
            });
        }
        QueueOverview::Sidekiq(stats) => {
            data.queue_note = "task_queue: sidekiq — read from its Redis; the retry and dead sets and the \
                               workers are shared by every queue."
                .to_owned();
            for queue in &stats.queues {
                data.queues.push(QueueRow {
                    name: queue.queue.clone(),
                    depth: queue.size.to_string(),
                    depth_title: Some(format!("oldest waiting {:.3} s", queue.latency)),
                    retry: stats.retry.to_string(),
                    dead: stats.dead.to_string(),
                    dead_title: Some(format!("{} of them cacheback refreshes", stats.dead_refreshes)),
                    workers: stats.live_workers.to_string(),
                    workers_title: Some(format!("live worker processes, of {} registered", stats.workers)),
                });
            }
        }
        // `QueueOverview` may grow.
        _ => data.queue_note = "This queue has no numbers to show.".to_owned(),
    }
}

/// The route (see [`get_shared`] for why not `get(show)`).
pub fn routes(ctx: &AppContext) -> Routes {
    Routes::new().add("/_cacheback", get_shared(show, ctx))
}

#[cfg(test)]
mod tests {
    use cacheback::queue::sidekiq::{QueueStats, SidekiqStats};

    use super::*;
    use crate::dashboard::prometheus::parse;

    #[test]
    fn a_row_per_registered_or_measured_job() {
        let samples = parse(
            "cacheback_lookups_total{job=\"b\",alias=\"default\",status=\"hit\"} 3\n\
             cacheback_lookups_total{job=\"b\",alias=\"default\",status=\"miss\"} 1\n\
             cacheback_refresh_duration_seconds{job=\"b\",mode=\"sync\",quantile=\"0.5\"} 0.0123\n\
             cacheback_refresh_duration_seconds{job=\"b\",mode=\"sync\",quantile=\"0.99\"} 1.5\n",
        )
        .unwrap();
        let rows = job_rows(vec!["a".to_owned(), "b".to_owned()], &samples);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].name.as_str(), rows[0].ratio.as_str(), rows[0].p50.as_str()), ("a", NONE, NONE));
        let b = &rows[1];
        assert_eq!((b.hits, b.misses, b.ratio.as_str()), (3, 1, "75.0 %"));
        assert_eq!((b.p50.as_str(), b.p99.as_str()), ("12.3 ms", "1.50 s"));
    }

    #[test]
    fn queue_rows_of_each_queue() {
        let mut data = DashboardData::default();
        let samples = parse("cacheback_dispatches_total{job=\"a\",result=\"enqueued\"} 2\n").unwrap();
        queue_rows(&QueueOverview::InProcess { concurrency: 4 }, Some(&samples), &mut data);
        assert_eq!((data.queues[0].name.as_str(), data.queues[0].depth.as_str()), ("in_process", "2"));
        assert_eq!(data.queues[0].workers, "4");

        let mut data = DashboardData::default();
        let stats = SidekiqStats {
            queues: vec![
                QueueStats { queue: "cacheback".into(), size: 3, latency: 1.5 },
                QueueStats { queue: "slow".into(), size: 0, latency: 0.0 },
            ],
            retry: 1,
            dead: 2,
            dead_refreshes: 1,
            workers: 3,
            live_workers: 2,
        };
        queue_rows(&QueueOverview::Sidekiq(stats), None, &mut data);
        let names: Vec<_> = data.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["cacheback", "slow"]);
        let first = &data.queues[0];
        assert_eq!(
            (first.depth.as_str(), first.retry.as_str(), first.dead.as_str(), first.workers.as_str()),
            ("3", "1", "2", "2")
        );
    }
}
