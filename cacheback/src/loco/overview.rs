//! What the refresh queue holds, as a value: what
//! `cargo loco task cacheback command:stats` prints (see
//! [`CachebackTask`](super::CachebackTask)) and what an app's own admin
//! page can show.

use crate::error::Error;
use crate::queue::sidekiq::SidekiqStats;
use crate::settings::{QueueChoice, Settings};

/// The refresh queue of the settings, and its numbers where another process
/// can read them.
///
/// ```
/// use cacheback::loco::QueueOverview;
/// let overview = QueueOverview::InProcess { concurrency: 4 };
/// assert!(matches!(overview, QueueOverview::InProcess { .. }));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum QueueOverview {
    /// `task_queue: in_process`: refreshes run as tokio tasks of the process
    /// that queues them, so there is nothing shared to read: only that
    /// process knows what it runs.
    InProcess {
        /// How many refreshes one process runs at once (`in_process.concurrency`).
        concurrency: usize,
    },
    /// `task_queue: sidekiq`: the numbers of its Redis
    /// ([`SidekiqQueue::stats`](crate::queue::sidekiq::SidekiqQueue::stats)), for `sidekiq.queues` and the queues named
    /// in `sidekiq.task_options`, in that order.
    Sidekiq(SidekiqStats),
    /// `task_queue: loco`: refreshes on the loco app's queue, whose numbers
    /// need the app's context ([`loco_queue_stats`](super::loco_queue_stats),
    /// feature `sea-orm`).
    Loco,
}

/// The queues of `settings` whose numbers [`queue_overview`] reads: the
/// worker's `sidekiq.queues`, then the other queues `sidekiq.task_options`
/// send refreshes to. Empty with the in-process queue.
///
/// ```
/// let settings = cacheback::settings::Settings::default();
/// assert!(cacheback::loco::overview_queue_names(&settings).is_empty());
/// ```
pub fn overview_queue_names(settings: &Settings) -> Vec<String> {
    let Some(sidekiq) = settings.chosen_sidekiq() else {
        return Vec::new();
    };
    let mut names = sidekiq.queues.clone();
    for options in sidekiq.task_options.values() {
        if let Some(name) = &options.queue
            && !names.contains(name)
        {
            names.push(name.clone());
        }
    }
    names
}

/// The refresh queue of `settings` and its numbers. Reads only; with Sidekiq,
/// connects to its Redis for the call.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cacheback::loco::{QueueOverview, queue_overview};
/// let settings = cacheback::settings::Settings::default();
/// let overview = queue_overview(&settings).await.unwrap();
/// assert_eq!(overview, QueueOverview::InProcess { concurrency: settings.in_process.concurrency });
/// # });
/// ```
///
/// # Errors
///
/// The queue's settings are invalid ([`Error::Config`]); with Sidekiq, its
/// Redis cannot be reached ([`Error::Config`]) or refuses a read
/// ([`Error::QueueUnavailable`]).
pub async fn queue_overview(settings: &Settings) -> Result<QueueOverview, Error> {
    let sidekiq = match settings.queue_choice()? {
        QueueChoice::InProcess(in_process) => {
            return Ok(QueueOverview::InProcess { concurrency: in_process.concurrency });
        }
        QueueChoice::Sidekiq(sidekiq) => sidekiq,
        QueueChoice::Loco(_) => return Ok(QueueOverview::Loco),
    };
    let stats = sidekiq.queue().await?.stats(&overview_queue_names(settings)).await;
    Ok(QueueOverview::Sidekiq(stats.map_err(|source| Error::QueueUnavailable { source })?))
}
