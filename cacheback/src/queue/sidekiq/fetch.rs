//! Reliable fetch: a job moves atomically from its queue into this process's
//! *working list* (`cacheback:working:<identity>:<queue>`) and leaves it only
//! when its outcome is recorded (ran, retried or buried). A process that dies
//! leaves its jobs there, and the heartbeat's recovery (`process::recover`) puts them back on their queues once
//! its heartbeat has expired: at-least-once, where Sidekiq OSS's `BRPOP`
//! loses what a killed worker was running (Sidekiq Pro's `super_fetch` does
//! the same as this).
//!
//! Hand-written Lua, because the move of a batch and the recovery of a whole
//! list must each be one atomic step, which no Redis command does for several
//! jobs.

use redis::AsyncCommands;

use crate::connection::RedisConnection;
use crate::error::QueueError;

/// The working list of `identity` for `queue`.
pub(super) fn working_list(identity: &str, queue: &str) -> String {
    format!("cacheback:working:{identity}:{queue}")
}

/// A job taken from a queue: where it came from, and the job as stored.
#[derive(Debug, Clone)]
pub(super) struct Fetched {
    pub(super) queue: String,
    pub(super) raw: String,
}

/// Moves up to `batch` jobs from the first non-empty queue, in priority
/// order, into the working lists; without blocking.
pub(super) async fn take(
    conn: &mut RedisConnection,
    identity: &str,
    queues: &[String],
    batch: usize,
) -> Result<Vec<Fetched>, QueueError> {
    for queue in queues {
        let raws: Vec<String> = take_script()
            .key(format!("queue:{queue}"))
            .key(working_list(identity, queue))
            .arg(batch)
            .invoke_async(conn)
            .await
            .map_err(|e| QueueError::with_source("Redis refused to move jobs to the working list", e))?;
        if !raws.is_empty() {
            return Ok(raws.into_iter().map(|raw| Fetched { queue: queue.clone(), raw }).collect());
        }
    }
    Ok(Vec::new())
}

/// Waits up to `seconds` for a job on `queue` and moves it into the working
/// list (`BLMOVE`): what an idle fetcher blocks on.
pub(super) async fn wait(
    conn: &mut RedisConnection,
    identity: &str,
    queue: &str,
    seconds: f64,
) -> Result<Option<Fetched>, QueueError> {
    let raw: Option<String> = conn
        .blmove(
            format!("queue:{queue}"),
            working_list(identity, queue),
            redis::Direction::Right,
            redis::Direction::Left,
            seconds,
        )
        .await
        .map_err(|e| QueueError::with_source("Redis refused BLMOVE", e))?;
    Ok(raw.map(|raw| Fetched { queue: queue.to_owned(), raw }))
}

/// Removes finished jobs from the working lists, in one round trip.
pub(super) async fn ack(
    conn: &mut RedisConnection,
    identity: &str,
    done: &[Fetched],
) -> Result<(), QueueError> {
    if done.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for job in done {
        pipe.lrem(working_list(identity, &job.queue), 1, &job.raw).ignore();
    }
    pipe.query_async::<()>(conn).await.map_err(|e| QueueError::with_source("Redis refused LREM", e))
}

/// Puts every job of `identity`'s working lists back on its queue, at the
/// end that is popped next; returns how many.
pub(super) async fn requeue(
    conn: &mut RedisConnection,
    identity: &str,
    queues: &[String],
) -> Result<usize, QueueError> {
    let mut moved = 0;
    for queue in queues {
        let n: usize = requeue_script()
            .key(working_list(identity, queue))
            .key(format!("queue:{queue}"))
            .invoke_async(conn)
            .await
            .map_err(|e| QueueError::with_source("Redis refused to requeue a working list", e))?;
        moved += n;
    }
    Ok(moved)
}

/// KEYS: the queue, the working list. ARGV: how many at most.
fn take_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            r"
            local taken = {}
            for i = 1, tonumber(ARGV[1]) do
              local job = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
              if not job then break end
              taken[i] = job
            end
            return taken
            ",
        )
    })
}

/// KEYS: the working list, the queue. Moves every job back, the newest taken
/// first, so the oldest ends at the popping end and runs first.
fn requeue_script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            r"
            local n = 0
            while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do n = n + 1 end
            return n
            ",
        )
    })
}
