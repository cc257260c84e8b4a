//! Refreshes as Sidekiq jobs in Redis: [`SidekiqQueue`] enqueues them in
//! Sidekiq's wire format, [`SidekiqWorker`] runs them, retrying with Sidekiq's
//! backoff through the `retry` sorted set and keeping what failed for good in
//! the `dead` set. Ruby Sidekiq (6.x, 7.x) reads our jobs (`Sidekiq::Queue`,
//! `Sidekiq::Stats`, the Web UI) and can push jobs our worker runs.
//!
//! Written on the `redis` crate rather than on rusty-sidekiq: rusty-sidekiq
//! 0.15 stores `created_at`, `enqueued_at`, `failed_at` and `retried_at` in
//! milliseconds where Ruby Sidekiq reads seconds, and writes absent fields as
//! `null`, so what it leaves in the queues, `retry` and `dead` misleads Ruby.
//!
//! A job is `SADD queues <queue>` + `LPUSH queue:<queue> <json>`:
//!
//! ```json
//! {"class":"Cacheback::RefreshCache","args":[{"job":"app::UserTweets","state":null,"args":["bob"],"key":"app::UserTweets:0f.."}],
//!  "jid":"9c1a0e4b6f7d2a3c5e8b1d0f","queue":"cacheback","retry":true,"created_at":1732450000.123,"enqueued_at":1732450000.123}
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

mod client;
mod sets;
mod worker;

pub use self::client::{SidekiqQueue, SidekiqQueueBuilder};
pub use self::worker::{DrainReport, SidekiqWorker, SidekiqWorkerBuilder, WorkerHandle};

/// The Sidekiq class of cacheback refreshes.
pub const REFRESH_CLASS: &str = "Cacheback::RefreshCache";

/// The default queue name.
pub const DEFAULT_QUEUE: &str = "cacheback";

/// Sidekiq's default number of retries for `"retry": true`.
pub const DEFAULT_MAX_RETRIES: u32 = 25;
/// How many refreshes a worker runs at once by default (Sidekiq's 10).
pub const DEFAULT_CONCURRENCY: usize = 10;
/// How long a stopping worker waits for in-flight refreshes by default (Sidekiq's 25 s).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);
/// How often due retries go back onto their queues by default (Sidekiq's 5 s).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// A job as Sidekiq stores it. Fields cacheback does not know are kept as
/// they are; absent fields are not written (no `null`s).
///
/// ```
/// use cacheback::queue::sidekiq::Message;
/// let msg: Message = serde_json::from_str(
///     r#"{"class":"Cacheback::RefreshCache","args":[],"jid":"0123456789abcdef01234567",
///         "queue":"cacheback","retry":3,"created_at":1.5,"enqueued_at":2.5,"tags":["x"]}"#,
/// ).unwrap();
/// assert_eq!(msg.max_retries(), Some(3));
/// let back = serde_json::to_value(&msg).unwrap();
/// assert_eq!(back["tags"][0], "x");
/// assert!(back.get("error_message").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The worker class (`Cacheback::RefreshCache` for cacheback).
    pub class: String,
    /// The arguments: one refresh payload.
    pub args: Vec<serde_json::Value>,
    /// The job id: 24 lowercase hex digits.
    pub jid: String,
    /// The queue.
    pub queue: String,
    /// `true` (25 retries), `false` (none, and no dead entry) or a count.
    #[serde(default = "default_retry")]
    pub retry: serde_json::Value,
    /// When the job was created, in epoch seconds.
    pub created_at: f64,
    /// When the job was last pushed to its queue, in epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_at: Option<f64>,
    /// How many times it was retried (0 after the first failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u32>,
    /// The last failure's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The last failure's class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    /// When it first failed, in epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<f64>,
    /// When it last failed again, in epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_at: Option<f64>,
    /// Every other field, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_retry() -> serde_json::Value {
    serde_json::Value::Bool(true)
}

impl Message {
    /// A new job of `class` on `queue`: a fresh jid, created and enqueued now.
    ///
    /// ```
    /// use cacheback::queue::sidekiq::Message;
    /// let msg = Message::new("Cacheback::RefreshCache", vec![], "cacheback", true.into());
    /// assert_eq!(msg.jid.len(), 24);
    /// assert_eq!(msg.enqueued_at, Some(msg.created_at));
    /// ```
    pub fn new(
        class: impl Into<String>,
        args: Vec<serde_json::Value>,
        queue: impl Into<String>,
        retry: serde_json::Value,
    ) -> Self {
        let created_at = now();
        Self {
            class: class.into(),
            args,
            jid: new_jid(),
            queue: queue.into(),
            retry,
            created_at,
            enqueued_at: Some(created_at),
            retry_count: None,
            error_message: None,
            error_class: None,
            failed_at: None,
            retried_at: None,
            extra: serde_json::Map::new(),
        }
    }

    /// How many retries this job has: `None` when a failure discards it
    /// (`"retry": false`, as Sidekiq).
    pub fn max_retries(&self) -> Option<u32> {
        match &self.retry {
            serde_json::Value::Bool(false) => None,
            serde_json::Value::Number(n) => {
                Some(n.as_u64().map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
            }
            _ => Some(DEFAULT_MAX_RETRIES),
        }
    }
}

/// Epoch seconds, as Sidekiq stores times.
pub(crate) fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A new job id: 24 lowercase hex digits, as Sidekiq's `SecureRandom.hex(12)`.
pub(crate) fn new_jid() -> String {
    crate::id::unique_hex(12)
}

/// Sidekiq 6's retry delay: `count⁴ + 15 + rand(10) × (count + 1)` seconds.
pub(crate) fn retry_delay(count: u32, jitter: u32) -> Duration {
    let count = u64::from(count);
    Duration::from_secs(count.saturating_pow(4) + 15 + u64::from(jitter % 10) * (count + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jids_are_24_lowercase_hex_and_unique() {
        let a = new_jid();
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(a, new_jid());
    }

    #[test]
    fn retry_delays_follow_sidekiq() {
        assert_eq!(retry_delay(0, 0), Duration::from_secs(15));
        assert_eq!(retry_delay(0, 9), Duration::from_secs(24));
        assert_eq!(retry_delay(3, 2), Duration::from_secs(81 + 15 + 8));
    }

    #[test]
    fn retry_field() {
        let msg = |retry: serde_json::Value| Message::new(REFRESH_CLASS, vec![], DEFAULT_QUEUE, retry);
        assert_eq!(msg(true.into()).max_retries(), Some(25));
        assert_eq!(msg(false.into()).max_retries(), None);
        assert_eq!(msg(0.into()).max_retries(), Some(0));
        assert_eq!(msg(5.into()).max_retries(), Some(5));
        let mut fresh = msg(true.into());
        fresh.enqueued_at = None;
        let json = serde_json::to_value(fresh).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["args", "class", "created_at", "jid", "queue", "retry"], "no nulls");
    }
}
