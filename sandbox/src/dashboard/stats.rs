//! cacheback's numbers, read back from the Prometheus text of the app's
//! recorder (see [`crate::initializers::metrics`]): per job, the totals the
//! dashboard's chart samples, and the in-process queue's refreshes in flight.

use std::collections::BTreeMap;

use super::prometheus::Sample;

/// The names of the metrics read here: cacheback's own constants, in one place.
pub mod names {
    /// `cacheback_lookups_total{job,alias,status}`.
    pub const LOOKUPS_TOTAL: &str = cacheback::telemetry::LOOKUPS_TOTAL;
    /// `cacheback_refreshes_total{job,mode,outcome}`.
    pub const REFRESHES_TOTAL: &str = cacheback::telemetry::REFRESHES_TOTAL;
    /// `cacheback_refresh_duration_seconds{job,mode}`, rendered as a summary.
    pub const REFRESH_DURATION_SECONDS: &str = cacheback::telemetry::REFRESH_DURATION_SECONDS;
    /// `cacheback_dispatches_total{job,result}`.
    pub const DISPATCHES_TOTAL: &str = cacheback::telemetry::DISPATCHES_TOTAL;
    /// `cacheback_worker_jobs_total{queue,result}`.
    pub const WORKER_JOBS_TOTAL: &str = cacheback::telemetry::WORKER_JOBS_TOTAL;
    /// The `queue` label of the in-process queue's metrics.
    pub const IN_PROCESS_QUEUE: &str = cacheback::telemetry::IN_PROCESS_QUEUE;
}

/// What one job did, since the process started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobStats {
    /// Lookups that found a fresh item.
    pub hits: u64,
    /// Lookups that found a stale item (`stale`, and `stale_if_error`: stale
    /// data served because the synchronous fetch failed).
    pub stales: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Refreshes run, synchronous or queued, whatever their outcome.
    pub refreshes: u64,
    /// Of those, the ones whose fetch failed (`outcome="error"`).
    pub failures: u64,
    /// The median refresh duration in seconds, over the summary's window
    /// (the exporter's default: the last minute); `None` when empty.
    pub p50: Option<f64>,
    /// The 99th percentile, likewise.
    pub p99: Option<f64>,
}

impl JobStats {
    /// Every lookup.
    #[must_use]
    pub fn lookups(&self) -> u64 {
        self.hits + self.stales + self.misses
    }

    /// The share of lookups that were HITs; `None` before the first lookup.
    #[must_use]
    pub fn hit_ratio(&self) -> Option<f64> {
        let lookups = self.lookups();
        (lookups > 0).then(|| self.hits as f64 / lookups as f64)
    }
}

/// Lookups by status, summed over every job: one point of the chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// HITs.
    pub hits: u64,
    /// STALEs (`stale_if_error` included).
    pub stales: u64,
    /// MISSes.
    pub misses: u64,
}

impl Totals {
    /// What happened between `earlier` and `self`; a counter that went back
    /// (a recorder that was replaced) counts as 0.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            hits: self.hits.saturating_sub(earlier.hits),
            stales: self.stales.saturating_sub(earlier.stales),
            misses: self.misses.saturating_sub(earlier.misses),
        }
    }
}

/// A counter's value as a count.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn count(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 { value as u64 } else { 0 }
}

/// Which status counter a lookup sample adds to.
fn lookup_slot<'a>(
    sample: &Sample,
    hits: &'a mut u64,
    stales: &'a mut u64,
    misses: &'a mut u64,
) -> Option<&'a mut u64> {
    match sample.label("status")? {
        "hit" => Some(hits),
        "stale" | "stale_if_error" => Some(stales),
        "miss" => Some(misses),
        _ => None,
    }
}

/// Lookups by status, over every job.
#[must_use]
pub fn totals(samples: &[Sample]) -> Totals {
    let mut totals = Totals::default();
    for sample in samples.iter().filter(|s| s.name == names::LOOKUPS_TOTAL) {
        if let Some(slot) = lookup_slot(sample, &mut totals.hits, &mut totals.stales, &mut totals.misses) {
            *slot += count(sample.value);
        }
    }
    totals
}

/// The numbers of every job the samples name, by job name.
///
/// A job's refreshes run in two modes (`sync` in the request, `queued` in a
/// worker), each with its own duration summary; quantiles of two summaries
/// do not combine, so p50 and p99 are those of the slower mode (the larger
/// value), as an upper bound. The exporter renders 0 for the quantiles of a
/// summary whose window holds no sample, and a refresh never takes 0 s: 0
/// reads as "none lately".
#[must_use]
pub fn jobs(samples: &[Sample]) -> BTreeMap<String, JobStats> {
    let mut jobs: BTreeMap<String, JobStats> = BTreeMap::new();
    let quantile_name = names::REFRESH_DURATION_SECONDS;
    for sample in samples {
        let Some(job) = sample.label("job") else { continue };
        let name = sample.name.as_str();
        if name != names::LOOKUPS_TOTAL && name != names::REFRESHES_TOTAL && name != quantile_name {
            continue;
        }
        let stats = jobs.entry(job.to_owned()).or_default();
        if name == names::LOOKUPS_TOTAL {
            if let Some(slot) = lookup_slot(sample, &mut stats.hits, &mut stats.stales, &mut stats.misses) {
                *slot += count(sample.value);
            }
        } else if name == names::REFRESHES_TOTAL {
            stats.refreshes += count(sample.value);
            if sample.label("outcome") == Some("error") {
                stats.failures += count(sample.value);
            }
        } else if sample.value.is_finite() && sample.value > 0.0 {
            let slot = match sample.label("quantile") {
                Some("0.5") => &mut stats.p50,
                Some("0.99") => &mut stats.p99,
                _ => continue,
            };
            *slot = Some(slot.map_or(sample.value, |v| v.max(sample.value)));
        }
    }
    jobs
}

/// Refreshes the in-process queue holds (waiting or running): those handed
/// to a queue minus those its workers ended, whatever their result. Both
/// counters are this process's, as are the in-process queue's refreshes.
#[must_use]
pub fn in_flight(samples: &[Sample]) -> u64 {
    let sum = |name: &str, label: &str, value: &str| -> u64 {
        samples
            .iter()
            .filter(|s| s.name == name && s.label(label) == Some(value))
            .map(|s| count(s.value))
            .sum()
    };
    let queued = sum(names::DISPATCHES_TOTAL, "result", "enqueued");
    let ended = sum(names::WORKER_JOBS_TOTAL, "queue", names::IN_PROCESS_QUEUE);
    queued.saturating_sub(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::prometheus::parse;

    const TEXT: &str = r#"# TYPE cacheback_lookups_total counter
cacheback_lookups_total{job="a",alias="default",status="hit"} 6
cacheback_lookups_total{job="a",alias="default",status="stale"} 1
cacheback_lookups_total{job="a",alias="default",status="stale_if_error"} 1
cacheback_lookups_total{job="a",alias="default",status="miss"} 2
cacheback_lookups_total{job="a",alias="other",status="hit"} 2
cacheback_lookups_total{job="b",alias="default",status="miss"} 1
cacheback_refreshes_total{job="a",mode="sync",outcome="ok"} 2
cacheback_refreshes_total{job="a",mode="sync",outcome="error"} 1
cacheback_refreshes_total{job="a",mode="queued",outcome="ok"} 3
cacheback_refreshes_total{job="a",mode="queued",outcome="skipped_fresh"} 1
cacheback_refreshes_total{job="b",mode="queued",outcome="ok"} 0
cacheback_dispatches_total{job="a",result="enqueued"} 5
cacheback_dispatches_total{job="a",result="inline"} 1
cacheback_dispatches_total{job="b",result="enqueued"} 1
cacheback_refresh_duration_seconds{job="a",mode="sync",quantile="0.5"} 0.01
cacheback_refresh_duration_seconds{job="a",mode="sync",quantile="0.99"} 0.5
cacheback_refresh_duration_seconds{job="a",mode="queued",quantile="0.5"} 0.02
cacheback_refresh_duration_seconds{job="a",mode="queued",quantile="0.99"} 0.03
cacheback_refresh_duration_seconds_count{job="a",mode="queued"} 4
cacheback_refresh_duration_seconds{job="b",mode="queued",quantile="0.5"} 0
cacheback_worker_jobs_total{queue="in_process",result="processed"} 3
cacheback_worker_jobs_total{queue="in_process",result="failed"} 1
cacheback_worker_jobs_total{queue="other",result="processed"} 9
"#;

    #[test]
    fn sums_each_job_over_aliases_modes_and_outcomes() {
        let jobs = jobs(&parse(TEXT).unwrap());
        assert_eq!(jobs.keys().collect::<Vec<_>>(), ["a", "b"]);
        let a = &jobs["a"];
        assert_eq!(
            *a,
            JobStats {
                hits: 8,
                stales: 2,
                misses: 2,
                refreshes: 7,
                failures: 1,
                p50: Some(0.02),
                p99: Some(0.5)
            }
        );
        assert_eq!(a.hit_ratio(), Some(8.0 / 12.0));
        let b = &jobs["b"];
        assert_eq!((b.misses, b.refreshes, b.p50, b.p99), (1, 0, None, None));
        assert_eq!(JobStats::default().hit_ratio(), None);
    }

    #[test]
    fn totals_and_in_flight() {
        let samples = parse(TEXT).unwrap();
        assert_eq!(totals(&samples), Totals { hits: 8, stales: 2, misses: 3 });
        // 6 queued, 4 ended on the in-process queue.
        assert_eq!(in_flight(&samples), 2);
        let later = Totals { hits: 10, stales: 2, misses: 1 };
        assert_eq!(later.since(totals(&samples)), Totals { hits: 2, stales: 0, misses: 0 });
    }
}
