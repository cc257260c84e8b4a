//! Sidekiq's bookkeeping: the `retry` set with its backoff, the `dead` set
//! with its trimming, the `schedule` and `retry` sets' due jobs going back
//! onto their queues, and the `stat:*` counters.

use std::time::Duration;

use redis::AsyncCommands;

use super::client::push;
use super::{DEFAULT_QUEUE, Message, now, retry_delay};
use crate::connection::RedisConnection;
use crate::error::QueueError;

/// Dead jobs are kept this long (Sidekiq's default: six months)...
const DEAD_TIMEOUT: Duration = Duration::from_secs(180 * 24 * 3600);
/// ...and at most this many (Sidekiq's default).
const DEAD_MAX_JOBS: isize = 10_000;
/// The longest `error_message` kept (Sidekiq's).
const MAX_ERROR_MESSAGE_CHARS: usize = 10_000;

/// What became of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Done,
    Retried,
    Dead,
    Discarded,
}

/// Moves the due jobs of the `schedule` and `retry` sets back onto their
/// queues, with an `enqueued_at` of now in the form of the job's times. An
/// entry that is not a job goes to the dead set, wrapped in one (see
/// [`bury`]).
pub(super) async fn enqueue_due(conn: &mut RedisConnection) -> Result<usize, QueueError> {
    let mut moved = 0;
    for set in ["schedule", "retry"] {
        loop {
            // Scores are epoch seconds in every Sidekiq version.
            let due: Option<String> = pop_due_script()
                .key(set)
                .arg(now())
                .invoke_async(conn)
                .await
                .map_err(|e| QueueError::with_source(format!("Redis refused to pop from `{set}`"), e))?;
            let Some(raw) = due else { break };
            match Message::parse(&raw, DEFAULT_QUEUE) {
                Ok(mut msg) => {
                    msg.enqueued_at = Some(super::Stamp::now(msg.timestamps()));
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
///
/// As Ruby's `JobRetry`: `"retry": false` discards the job; a `retry_for`
/// (Sidekiq 7.1+, seconds) retries until that long after the first failure,
/// whatever the count (Sidekiq 8.1's rule); `"dead": false` discards a job
/// whose retries are exhausted instead of burying it. The times set on the
/// job take the form of its own (see [`Message::timestamps`]); the scores are
/// epoch seconds, as in every Sidekiq version.
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
    let stamp = super::Stamp::from_secs_f64(at, msg.timestamps());
    let count = match msg.retry_count {
        Some(previous) => {
            msg.retried_at = Some(stamp);
            previous.saturating_add(1)
        }
        None => {
            msg.failed_at = Some(stamp);
            0
        }
    };
    msg.retry_count = Some(count);
    msg.error_message = Some(error_message(&msg, &class, message));
    msg.error_class = Some(class);
    if let Some(serde_json::Value::String(queue)) = msg.extra.get("retry_queue") {
        msg.queue = queue.clone();
    }
    let exhausted = match msg.retry_for() {
        Some(window) => msg.failed_at.map_or(at, super::Stamp::as_secs_f64) + window < at,
        None => count >= max,
    };
    let json =
        serde_json::to_string(&msg).map_err(|e| QueueError::with_source("the job does not serialize", e))?;
    if !exhausted {
        let jitter = u32::from(blake3::hash(msg.jid.as_bytes()).as_bytes()[0]) + count;
        let delay = retry_delay(count, jitter).as_secs_f64();
        // At least the whole delay after the failure as the job records it
        // (a millisecond stamp rounds, possibly up), and `base + delay` can
        // round to one unit below it (at 1.7e9 s, a unit is 2.4e-7 s).
        let base = stamp.as_secs_f64().max(at);
        let when = base + delay;
        let when = if when - base < delay { when.next_up() } else { when };
        let () = conn
            .zadd("retry", json, when)
            .await
            .map_err(|e| QueueError::with_source("Redis refused ZADD retry", e))?;
        return Ok(Outcome::Retried);
    }
    if msg.extra.get("dead") == Some(&serde_json::Value::Bool(false)) {
        tracing::warn!(target: "cacheback", jid = %msg.jid, "Job retries exhausted; `dead: false`: discarded");
        return Ok(Outcome::Discarded);
    }
    tracing::warn!(target: "cacheback", jid = %msg.jid, "Job retries exhausted; sent to the dead set");
    kill(conn, &json).await?;
    Ok(Outcome::Dead)
}

/// A failure's `error_message`: an `ArgumentError` of a job whose `args` is
/// not an array says so, and the message is cut to Sidekiq's 10,000 chars.
fn error_message(msg: &Message, class: &str, message: String) -> String {
    let mut message = if class == "ArgumentError" && !msg.args.is_array() {
        format!("{message} (Job args must be an Array, not {})", msg.args.ruby_class())
    } else {
        message
    };
    if let Some((cut, _)) = message.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        message.truncate(cut);
    }
    message
}

/// Adds a raw entry to the dead set, trimmed as Sidekiq trims it: as it is if
/// it is a job, else (not JSON, or not a job object) wrapped in a
/// `Cacheback::InvalidJob` job whose one argument is the entry and whose
/// error says what is wrong, so that Ruby's `DeadSet` and the Web UI read
/// every entry. A wrapper names the queue the entry names, or `cacheback`.
pub(super) async fn bury(conn: &mut RedisConnection, raw: &str) -> Result<(), QueueError> {
    bury_from(conn, raw, None).await
}

/// [`bury`] for an entry taken from `queue`, which a wrapper then names.
pub(super) async fn bury_from(
    conn: &mut RedisConnection,
    raw: &str,
    queue: Option<&str>,
) -> Result<(), QueueError> {
    match Message::parse(raw, queue.unwrap_or(DEFAULT_QUEUE)) {
        Ok(_) => kill(conn, raw).await,
        Err(why) => {
            let named = || match serde_json::from_str::<serde_json::Value>(raw).ok()?.get("queue")? {
                serde_json::Value::String(queue) if !queue.is_empty() => Some(queue.clone()),
                _ => None,
            };
            let queue = queue.map(str::to_owned).or_else(named).unwrap_or_else(|| DEFAULT_QUEUE.to_owned());
            let wrapped = serde_json::to_string(&Message::invalid(raw, &why, &queue))
                .map_err(|e| QueueError::with_source("the job does not serialize", e))?;
            kill(conn, &wrapped).await
        }
    }
}

/// Adds a job to the dead set, scored now in epoch seconds, trimmed as
/// Sidekiq trims it.
async fn kill(conn: &mut RedisConnection, job: &str) -> Result<(), QueueError> {
    let at = now();
    redis::pipe()
        .atomic()
        .zadd("dead", job, at)
        .ignore()
        .zrembyscore("dead", "-inf", at - DEAD_TIMEOUT.as_secs_f64())
        .ignore()
        .zremrangebyrank("dead", 0, -DEAD_MAX_JOBS - 1)
        .ignore()
        .query_async::<()>(conn)
        .await
        .map_err(|e| QueueError::with_source("Redis refused ZADD dead", e))
}

/// Sidekiq's `stat:processed` and `stat:failed` counters, for a batch of jobs.
pub(super) async fn count(conn: &mut RedisConnection, processed: usize, failed: usize) {
    if processed == 0 {
        return;
    }
    let mut pipe = redis::pipe();
    pipe.incr("stat:processed", processed).ignore();
    if failed > 0 {
        pipe.incr("stat:failed", failed).ignore();
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
