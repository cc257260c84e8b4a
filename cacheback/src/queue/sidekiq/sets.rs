//! Sidekiq's bookkeeping: the `retry` set with its backoff, the `dead` set
//! with its trimming, the `schedule` and `retry` sets' due jobs going back
//! onto their queues, and the `stat:*` counters.

use std::time::Duration;

use redis::AsyncCommands;

use super::client::push;
use super::{Message, now, retry_delay};
use crate::connection::RedisConnection;
use crate::error::QueueError;

/// Dead jobs are kept this long (Sidekiq's default: six months)...
const DEAD_TIMEOUT: Duration = Duration::from_secs(180 * 24 * 3600);
/// ...and at most this many (Sidekiq's default).
const DEAD_MAX_JOBS: isize = 10_000;
/// What became of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Done,
    Retried,
    Dead,
    Discarded,
}

/// Moves the due jobs of the `schedule` and `retry` sets back onto their queues.
pub(super) async fn enqueue_due(conn: &mut RedisConnection) -> Result<usize, QueueError> {
    let mut moved = 0;
    for set in ["schedule", "retry"] {
        loop {
            let due: Option<String> = pop_due_script()
                .key(set)
                .arg(now())
                .invoke_async(conn)
                .await
                .map_err(|e| QueueError::with_source(format!("Redis refused to pop from `{set}`"), e))?;
            let Some(raw) = due else { break };
            match serde_json::from_str::<Message>(&raw) {
                Ok(mut msg) => {
                    msg.enqueued_at = Some(now());
                    push(conn, &msg).await?;
                    moved += 1;
                }
                Err(err) => {
                    tracing::error!(target: "cacheback", error = %err, job = %raw, "Invalid job in `{set}`; sent to the dead set");
                    bury(conn, &raw).await?;
                }
            }
        }
    }
    Ok(moved)
}

/// Sidekiq's retry: the `retry` set with backoff, then the `dead` set.
pub(super) async fn retry_or_bury(
    conn: &mut RedisConnection,
    mut msg: Message,
    class: String,
    message: String,
) -> Result<Outcome, QueueError> {
    let Some(max) = msg.max_retries() else {
        tracing::warn!(target: "cacheback", jid = %msg.jid, "Job has `retry: false`: discarded");
        return Ok(Outcome::Discarded);
    };
    let at = now();
    let count = match msg.retry_count {
        Some(previous) => {
            msg.retried_at = Some(at);
            previous + 1
        }
        None => {
            msg.failed_at = Some(at);
            0
        }
    };
    msg.retry_count = Some(count);
    msg.error_class = Some(class);
    msg.error_message = Some(message);
    if let Some(serde_json::Value::String(queue)) = msg.extra.get("retry_queue") {
        msg.queue = queue.clone();
    }
    let json =
        serde_json::to_string(&msg).map_err(|e| QueueError::with_source("the job does not serialize", e))?;
    if count < max {
        let jitter = u32::from(blake3::hash(msg.jid.as_bytes()).as_bytes()[0]) + count;
        let when = at + retry_delay(count, jitter).as_secs_f64();
        let () = conn
            .zadd("retry", json, when)
            .await
            .map_err(|e| QueueError::with_source("Redis refused ZADD retry", e))?;
        return Ok(Outcome::Retried);
    }
    tracing::warn!(target: "cacheback", jid = %msg.jid, "Job retries exhausted; sent to the dead set");
    bury(conn, &json).await?;
    Ok(Outcome::Dead)
}

/// Adds a job to the dead set, trimmed as Sidekiq trims it.
pub(super) async fn bury(conn: &mut RedisConnection, raw: &str) -> Result<(), QueueError> {
    let at = now();
    redis::pipe()
        .atomic()
        .zadd("dead", raw, at)
        .ignore()
        .zrembyscore("dead", "-inf", at - DEAD_TIMEOUT.as_secs_f64())
        .ignore()
        .zremrangebyrank("dead", 0, -DEAD_MAX_JOBS - 1)
        .ignore()
        .query_async::<()>(conn)
        .await
        .map_err(|e| QueueError::with_source("Redis refused ZADD dead", e))
}

/// Sidekiq's `stat:processed` and `stat:failed` counters.
pub(super) async fn count(conn: &mut RedisConnection, ok: bool) {
    let mut pipe = redis::pipe();
    pipe.incr("stat:processed", 1).ignore();
    if !ok {
        pipe.incr("stat:failed", 1).ignore();
    }
    if let Err(err) = pipe.query_async::<()>(conn).await {
        tracing::warn!(target: "cacheback", error = %err, "Unable to count a job in the Sidekiq stats");
    }
}

/// Pops the first member of a sorted set scored at or before now, atomically.
fn pop_due_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            r"
            local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
            if due[1] then
              redis.call('ZREM', KEYS[1], due[1])
              return due[1]
            end
            return false
            ",
        )
    })
}
