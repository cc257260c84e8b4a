//! Operating a Sidekiq queue: its numbers ([`SidekiqQueue::stats`]) and
//! putting the dead set's refreshes back to work ([`SidekiqQueue::retry_dead`]).
//! What `cargo loco task cacheback` runs.

use redis::AsyncCommands;

use super::client::SidekiqQueue;
use super::process::WORKERS;
use super::{Message, REFRESH_CLASS, Stamp, now};
use crate::error::QueueError;

/// One queue's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    /// The queue's name.
    pub queue: String,
    /// How many jobs wait on it (`LLEN queue:<name>`).
    pub size: u64,
    /// How long, in seconds, its oldest job has waited (0 when empty), as
    /// Sidekiq's `Queue#latency`.
    pub latency: f64,
}

/// The numbers of a Sidekiq Redis, as [`SidekiqQueue::stats`] reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct SidekiqStats {
    /// The queues asked about, in the order asked.
    pub queues: Vec<QueueStats>,
    /// Jobs waiting to be retried (`ZCARD retry`), every class.
    pub retry: u64,
    /// Jobs in the dead set (`ZCARD dead`), every class.
    pub dead: u64,
    /// Of those, cacheback's refreshes (class [`REFRESH_CLASS`]).
    pub dead_refreshes: u64,
    /// cacheback worker processes registered (`cacheback:workers`).
    pub workers: u64,
    /// Of those, the ones whose heartbeat has not expired.
    pub live_workers: u64,
}

/// What [`SidekiqQueue::retry_dead`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryDeadReport {
    /// Refreshes moved from the dead set back onto their queues.
    pub retried: u64,
    /// Dead jobs left where they were: not cacheback's refreshes (or not of
    /// the queue asked for).
    pub skipped: u64,
}

impl SidekiqQueue {
    /// The numbers of `queues`, the `retry` and `dead` sets and cacheback's
    /// worker processes. Reads only.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let queue = cacheback::queue::sidekiq::SidekiqQueue::builder("redis://127.0.0.1/").connect().await.unwrap();
    /// let stats = queue.stats(&["cacheback".to_owned()]).await.unwrap();
    /// println!("{} queued, {} dead", stats.queues[0].size, stats.dead);
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// Redis fails.
    pub async fn stats(&self, queues: &[String]) -> Result<SidekiqStats, QueueError> {
        let mut conn = self.conn.clone();
        let failed = |what: &'static str| move |e| QueueError::with_source(what, e);
        let mut per_queue = Vec::with_capacity(queues.len());
        for queue in queues {
            let key = format!("queue:{queue}");
            let size: u64 = conn.llen(&key).await.map_err(failed("Redis refused LLEN"))?;
            // Jobs are pushed on the left and taken from the right: the
            // oldest is the last.
            let oldest: Vec<String> =
                conn.lrange(&key, -1, -1).await.map_err(failed("Redis refused LRANGE"))?;
            let latency = oldest
                .first()
                .and_then(|raw| Message::parse(raw, queue).ok())
                .map_or(0.0, |msg| msg.latency().max(0.0));
            per_queue.push(QueueStats { queue: queue.clone(), size, latency });
        }
        let retry: u64 = conn.zcard("retry").await.map_err(failed("Redis refused ZCARD"))?;
        let dead_jobs: Vec<String> =
            conn.zrange("dead", 0, -1).await.map_err(failed("Redis refused ZRANGE"))?;
        let dead_refreshes = dead_jobs.iter().filter(|raw| is_refresh(raw)).count() as u64;
        let identities: Vec<String> = conn.hkeys(WORKERS).await.map_err(failed("Redis refused HKEYS"))?;
        let mut live_workers = 0;
        for identity in &identities {
            let alive: bool = conn.exists(identity).await.map_err(failed("Redis refused EXISTS"))?;
            live_workers += u64::from(alive);
        }
        Ok(SidekiqStats {
            queues: per_queue,
            retry,
            dead: dead_jobs.len() as u64,
            dead_refreshes,
            workers: identities.len() as u64,
            live_workers,
        })
    }

    /// Puts the dead set's cacheback refreshes (of `queue` only, if given)
    /// back onto their queues, as
    /// Sidekiq's "Retry Now" does: each leaves `dead` and is pushed with its
    /// retry count and error cleared (a fresh set of retries) and
    /// `enqueued_at` now. Jobs of other classes (or queues) stay dead. Each move is one
    /// atomic step, so a job is never both dead and queued, nor pushed twice
    /// by concurrent calls.
    ///
    /// ```no_run
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let queue = cacheback::queue::sidekiq::SidekiqQueue::builder("redis://127.0.0.1/").connect().await.unwrap();
    /// let report = queue.retry_dead(None).await.unwrap();
    /// println!("{} refreshes queued again", report.retried);
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// Redis fails (the jobs moved so far stay moved).
    pub async fn retry_dead(&self, queue: Option<&str>) -> Result<RetryDeadReport, QueueError> {
        let mut conn = self.conn.clone();
        let dead: Vec<String> = conn
            .zrange("dead", 0, -1)
            .await
            .map_err(|e| QueueError::with_source("Redis refused ZRANGE dead", e))?;
        let mut report = RetryDeadReport::default();
        for raw in dead {
            let Some(mut msg) = Message::parse(&raw, super::DEFAULT_QUEUE)
                .ok()
                .filter(|m| m.class == REFRESH_CLASS && queue.is_none_or(|queue| m.queue == queue))
            else {
                report.skipped += 1;
                continue;
            };
            msg.retry_count = None;
            msg.error_message = None;
            msg.error_class = None;
            msg.failed_at = None;
            msg.retried_at = None;
            msg.enqueued_at = Some(Stamp::from_secs_f64(now(), msg.timestamps()));
            let json = serde_json::to_string(&msg)
                .map_err(|e| QueueError::with_source("the job does not serialize", e))?;
            let moved: u64 = retry_script()
                .key("dead")
                .key("queues")
                .key(format!("queue:{}", msg.queue))
                .arg(&raw)
                .arg(&msg.queue)
                .arg(json)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| QueueError::with_source("Redis refused to move a dead job", e))?;
            report.retried += moved;
        }
        Ok(report)
    }
}

fn is_refresh(raw: &str) -> bool {
    Message::parse(raw, super::DEFAULT_QUEUE).is_ok_and(|msg| msg.class == REFRESH_CLASS)
}

/// KEYS: `dead`, `queues`, the job's queue. ARGV: the dead entry, the queue's
/// name, the job to push. Moves it only if it is still dead.
fn retry_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            r"
            if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
            redis.call('SADD', KEYS[2], ARGV[2])
            redis.call('LPUSH', KEYS[3], ARGV[3])
            return 1
            ",
        )
    })
}
