//! Refreshes as Sidekiq jobs in Redis: [`SidekiqQueue`] enqueues them in
//! Sidekiq's wire format, [`SidekiqWorker`] runs them, retrying with Sidekiq's
//! backoff through the `retry` sorted set and keeping what failed for good in
//! the `dead` set. Ruby Sidekiq (6.x, 7.x, 8.x) reads our jobs
//! (`Sidekiq::Queue`, `Sidekiq::Stats`, the Web UI), and every entry we write
//! is a job object its API iterates; our worker runs the jobs Ruby pushes,
//! with Sidekiq 8's millisecond times as well as earlier versions' seconds.
//!
//! Written on the `redis` crate rather than on rusty-sidekiq: rusty-sidekiq
//! 0.15 stores `created_at`, `enqueued_at`, `failed_at` and `retried_at` in
//! milliseconds, which Ruby Sidekiq before 8 reads as seconds, and writes
//! absent fields as `null`, so what it leaves in the queues, `retry` and
//! `dead` misleads Ruby.
//!
//! A job is `SADD queues <queue>` + `LPUSH queue:<queue> <json>`:
//!
//! ```json
//! {"class":"Cacheback::RefreshCache","args":[{"job":"app::UserTweets","state":null,"args":["bob"],"key":"app::UserTweets:0f.."}],
//!  "jid":"9c1a0e4b6f7d2a3c5e8b1d0f","queue":"cacheback","retry":true,"created_at":1732450000.123,"enqueued_at":1732450000.123}
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

mod admin;
mod client;
mod fetch;
mod message;
mod process;
mod sets;
mod worker;

pub use self::admin::{QueueStats, RetryDeadReport, SidekiqStats};
// The wire model is hidden, not private: Sidekiq's JSON (above) is the
// contract, and these types are how our own tests and benchmarks read what is
// in Redis. Public but outside the API we keep stable (see CHANGELOG, 0.1).
pub use self::client::{SidekiqQueue, SidekiqQueueBuilder};
#[doc(hidden)]
pub use self::message::{Args, InvalidJob, Message, Stamp};
pub use self::process::DEFAULT_HEARTBEAT_LIFESPAN;
pub use self::worker::{DrainReport, SidekiqWorker, SidekiqWorkerBuilder, WorkerHandle};

/// The Sidekiq class of cacheback refreshes.
pub const REFRESH_CLASS: &str = "Cacheback::RefreshCache";

/// The default queue name.
pub const DEFAULT_QUEUE: &str = "cacheback";

/// Why the Sidekiq queue refuses a Redis Cluster: Sidekiq's own rule, as a
/// worker's fetch (`BRPOP`, `LMOVE`) names several queue keys at once, which
/// a Cluster refuses across slots.
///
/// ```
/// assert!(cacheback::queue::sidekiq::NOT_ON_A_CLUSTER.contains("Cluster"));
/// ```
pub const NOT_ON_A_CLUSTER: &str = "Sidekiq's queues cannot live on a Redis Cluster (Sidekiq's own rule: a \
     worker's fetch, BRPOP/LMOVE, spans several queue keys, which a Cluster refuses across slots); keep the \
     cache on the Cluster and the queue on a plain or Sentinel Redis";

/// Sidekiq's default number of retries for `"retry": true`.
pub const DEFAULT_MAX_RETRIES: u32 = 25;
/// The retry of jobs whose task options set none: Sidekiq's, `retry: true`
/// ([`DEFAULT_MAX_RETRIES`] retries).
pub const DEFAULT_RETRY: crate::task::Retry = crate::task::Retry::Enabled(true);
/// How many refreshes a worker runs at once by default (Sidekiq's 10).
pub const DEFAULT_CONCURRENCY: usize = 10;
/// How long a stopping worker waits for in-flight refreshes by default (Sidekiq's 25 s).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);
/// How often due retries go back onto their queues by default (Sidekiq's 5 s).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The Sidekiq class of the jobs that carry what was not a job: an entry of a
/// queue or of the `schedule` or `retry` set that is not JSON, or is JSON but
/// not a job object, goes into the `dead` set as a job of this class, its one
/// argument the entry as it was, its `error_message` saying what is wrong.
pub const INVALID_JOB_CLASS: &str = "Cacheback::InvalidJob";

/// The form of the times in the jobs cacheback creates.
///
/// Sidekiq 6.x and 7.x write `created_at`, `enqueued_at`, `failed_at` and
/// `retried_at` as float epoch seconds; Sidekiq 8 as integer epoch
/// milliseconds. Sidekiq 8 reads both (a JSON float is seconds, an integer
/// milliseconds); earlier versions read only seconds. A job keeps the form it
/// came with: this only chooses the form of new jobs.
///
/// ```
/// use cacheback::queue::sidekiq::Timestamps;
/// assert_eq!(Timestamps::default(), Timestamps::Seconds);
/// let form: Timestamps = serde_json::from_str(r#""milliseconds""#).unwrap();
/// assert_eq!(form, Timestamps::Milliseconds);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timestamps {
    /// Float epoch seconds (`1732450000.123`), as Sidekiq 6.x and 7.x write
    /// them: every version reads them.
    #[default]
    Seconds,
    /// Integer epoch milliseconds (`1732450000123`), as Sidekiq 8 writes them:
    /// only Sidekiq 8 reads them right.
    Milliseconds,
}

/// Epoch seconds, as Sidekiq stores times: the system clock's.
pub(crate) fn now() -> f64 {
    crate::clock::Clock::now(&crate::clock::SystemClock)
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
}
