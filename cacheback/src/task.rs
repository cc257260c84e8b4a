//! Where and how a job's refreshes are queued: [`TaskOptions`] and [`Retry`].

use serde::{Deserialize, Serialize};

/// How many times a failed refresh is retried by a queue that retries.
///
/// Serializes as Sidekiq's `retry` field: `true`, `false`, or a count.
///
/// ```
/// use cacheback::Retry;
/// assert_eq!(serde_json::to_string(&Retry::Count(3)).unwrap(), "3");
/// assert_eq!(serde_json::from_str::<Retry>("false").unwrap(), Retry::Enabled(false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Retry {
    /// Retry with the queue's default count (`true`) or never (`false`).
    Enabled(bool),
    /// Retry this many times.
    Count(u32),
}

/// Where and how a job's refreshes are queued (the original's `task_options`).
///
/// ```
/// use cacheback::{Retry, TaskOptions};
/// let opts = TaskOptions::default().queue("low").retry(Retry::Count(2));
/// assert_eq!(opts.queue.as_deref(), Some("low"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskOptions {
    /// The queue name; `None` uses the configured default queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Retry policy; `None` uses the queue's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

impl TaskOptions {
    /// Routes refreshes to `queue`.
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }
}
