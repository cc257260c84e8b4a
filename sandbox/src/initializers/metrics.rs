//! `settings.metrics`: a Prometheus recorder for cacheback's metrics, the
//! upkeep it needs, and the sampler behind the dashboard's chart.
//!
//! cacheback records through the `metrics` facade, into whatever recorder
//! the process installed. This initializer installs
//! `metrics-exporter-prometheus`'s, without its HTTP listener: `/metrics`
//! ([`crate::controllers::metrics`]) serves [`Metrics::render`] from loco's
//! own server, and `/_cacheback` ([`crate::controllers::dashboard`]) reads
//! the same text back.
//!
//! It is listed before `CachebackInitializer` in `App::initializers`, so that
//! the recorder is in place before anything binds a job: cacheback registers
//! a job's metrics in the recorder of the moment when it binds it, and a
//! `JobHandle` made before would keep the no-op handles.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use async_trait::async_trait;
use loco_rs::app::{AppContext, Initializer};
use loco_rs::{Error, Result};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::Settings;
use crate::dashboard::chart::{History, INTERVAL, Point};
use crate::dashboard::prometheus::{self, ParseError, Sample};
use crate::dashboard::stats;

/// The process's recorder. A recorder is process-wide and installed once;
/// the app may boot several times in one process (the request tests do),
/// and each boot gets the same handle.
static RECORDER: OnceLock<std::result::Result<PrometheusHandle, String>> = OnceLock::new();

fn recorder() -> Result<PrometheusHandle> {
    RECORDER
        .get_or_init(|| PrometheusBuilder::new().install_recorder().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| {
            Error::Message(format!(
                "`settings.metrics` is on but the Prometheus recorder cannot be installed: {e}"
            ))
        })
}

/// The metrics of a booted app, in `ctx.shared_store` when `settings.metrics`
/// is on (absent: off).
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    history: Arc<History>,
    started: Instant,
}

impl Metrics {
    /// The app's metrics, if they are on.
    #[must_use]
    pub fn from_context(ctx: &AppContext) -> Option<Self> {
        ctx.shared_store.get::<Self>()
    }

    /// Every metric, in the Prometheus text format.
    #[must_use]
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Every sample of [`render`](Self::render).
    ///
    /// # Errors
    ///
    /// The exporter wrote a line this reader does not understand.
    pub fn samples(&self) -> std::result::Result<Vec<Sample>, ParseError> {
        prometheus::parse(&self.render())
    }

    /// The sampler's points, oldest first.
    #[must_use]
    pub fn history(&self) -> Vec<Point> {
        self.history.points()
    }

    /// Now, on the clock of the history's points.
    #[must_use]
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Every [`INTERVAL`]: the exporter's upkeep (which its HTTP listener would
/// otherwise run: it drains the histograms' buffers and rolls the summaries'
/// windows), then a point of the chart. Ends with the app, whose shared
/// store holds the only strong reference to the history.
async fn upkeep_and_sample(handle: PrometheusHandle, history: Weak<History>, started: Instant) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(history) = history.upgrade() else { return };
        handle.run_upkeep();
        match prometheus::parse(&handle.render()) {
            Ok(samples) => {
                history.push(Point { at: started.elapsed().as_secs_f64(), totals: stats::totals(&samples) })
            }
            Err(err) => tracing::warn!(error = %err, "the metrics' text does not parse: no chart point"),
        }
    }
}

/// The initializer named `metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsInitializer;

impl MetricsInitializer {
    /// Installs the recorder and starts the upkeep and the sampler, once per
    /// app, if `settings.metrics` is on.
    fn install(ctx: &AppContext) -> Result<()> {
        if !Settings::from_context(ctx)?.metrics || ctx.shared_store.contains::<Metrics>() {
            return Ok(());
        }
        let handle = recorder()?;
        let (history, started) = (Arc::new(History::default()), Instant::now());
        tokio::spawn(upkeep_and_sample(handle.clone(), Arc::downgrade(&history), started));
        ctx.shared_store.insert(Metrics { handle, history, started });
        Ok(())
    }
}

/// Installed from both hooks, like cacheback's: `before_run` for every
/// `cargo loco start` (worker-only included), `after_routes` whenever the
/// router is built. Both run before cacheback's hooks of the same name.
#[async_trait]
impl Initializer for MetricsInitializer {
    fn name(&self) -> String {
        "metrics".to_owned()
    }

    async fn before_run(&self, ctx: &AppContext) -> Result<()> {
        Self::install(ctx)
    }

    async fn after_routes(&self, router: axum::Router, ctx: &AppContext) -> Result<axum::Router> {
        Self::install(ctx)?;
        Ok(router)
    }
}
