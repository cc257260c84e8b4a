//! A worker process as Sidekiq sees it: its heartbeat, which Ruby's
//! `Sidekiq::ProcessSet` and `Sidekiq::WorkSet` (the Web UI's Busy page)
//! read, and which tells other processes it is alive.
//!
//! Each beat writes, in one transaction, what Sidekiq 6/7 write:
//! `SADD processes <identity>`; the hash `<identity>` (`info`, `busy`,
//! `beat`, `quiet`, `rss`, `rtt_us`) expiring after the heartbeat lifespan;
//! the hash of the refreshes in flight (thread id → `{queue, payload,
//! run_at}`), as `<identity>:workers` (Sidekiq 6) and `<identity>:work`
//! (Sidekiq 7 and 8); and this process's queues under
//! [`WORKERS`], so that another process can recover its
//! working lists once `<identity>` has expired.

use std::time::Duration;

use redis::AsyncCommands;
use serde::Serialize;

use super::fetch::requeue;
use super::now;
use crate::connection::RedisConnection;
use crate::error::QueueError;

/// The hash of the processes that may hold working lists: identity → the
/// JSON array of its queues. Unlike Sidekiq's `processes` set, which Ruby's
/// `ProcessSet` prunes of dead processes, an entry stays until the process's
/// jobs are recovered.
pub(super) const WORKERS: &str = "cacheback:workers";

/// How long a process is trusted to be alive after its last beat, by
/// default: Sidekiq's 60 s.
pub const DEFAULT_HEARTBEAT_LIFESPAN: Duration = Duration::from_secs(60);

/// A refresh in flight, as the Busy page shows it.
#[derive(Debug, Clone)]
pub(super) struct Work {
    pub(super) queue: String,
    pub(super) raw: String,
    pub(super) run_at: u64,
}

/// `info` of the process hash: what Sidekiq's `Process` reads.
#[derive(Serialize)]
struct Info<'a> {
    hostname: &'a str,
    started_at: f64,
    pid: u32,
    tag: &'a str,
    concurrency: usize,
    queues: &'a [String],
    labels: [&'a str; 1],
    identity: &'a str,
    version: &'a str,
}

/// This worker process: its identity and what its beats say.
#[derive(Debug, Clone)]
pub(super) struct Process {
    pub(super) identity: String,
    info: String,
    queues: String,
    lifespan: Duration,
}

impl Process {
    pub(super) fn new(queues: &[String], concurrency: usize, lifespan: Duration) -> Self {
        let hostname = hostname();
        let pid = std::process::id();
        // Sidekiq's identity: `hostname:pid:nonce`.
        let identity = format!("{hostname}:{pid}:{}", crate::id::unique_hex(6));
        let info = serde_json::to_string(&Info {
            hostname: &hostname,
            started_at: now(),
            pid,
            tag: "cacheback",
            concurrency,
            queues,
            labels: ["cacheback"],
            identity: &identity,
            version: env!("CARGO_PKG_VERSION"),
        })
        .unwrap_or_default();
        let queues = serde_json::to_string(queues).unwrap_or_default();
        Self { identity, info, queues, lifespan }
    }

    /// How often to beat: twelve times a lifespan (Sidekiq: every 5 s of 60).
    pub(super) fn beat_interval(&self) -> Duration {
        (self.lifespan / 12).max(Duration::from_millis(50))
    }

    /// How often to look for dead processes: four times a lifespan.
    pub(super) fn sweep_interval(&self) -> Duration {
        (self.lifespan / 4).max(Duration::from_millis(100))
    }

    /// One beat: the process hash, its work, its registration.
    pub(super) async fn beat(
        &self,
        conn: &mut RedisConnection,
        work: &[(usize, Work)],
    ) -> Result<(), QueueError> {
        let ttl = i64::try_from(self.lifespan.as_millis()).unwrap_or(i64::MAX).max(1);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.sadd("processes", &self.identity).ignore();
        pipe.hset_multiple(
            &self.identity,
            &[
                ("info", self.info.clone()),
                ("busy", work.len().to_string()),
                ("beat", now().to_string()),
                ("quiet", "false".to_owned()),
                ("rss", "0".to_owned()),
                ("rtt_us", "0".to_owned()),
            ],
        )
        .ignore();
        pipe.pexpire(&self.identity, ttl).ignore();
        for work_key in work_keys(&self.identity) {
            pipe.del(&work_key).ignore();
            for (tid, work) in work {
                let value =
                    serde_json::json!({ "queue": work.queue, "payload": work.raw, "run_at": work.run_at });
                pipe.hset(&work_key, format!("cb{tid}"), value.to_string()).ignore();
            }
            pipe.pexpire(&work_key, ttl).ignore();
        }
        // After the process hash: a process is never registered without a live heartbeat.
        pipe.hset(WORKERS, &self.identity, &self.queues).ignore();
        pipe.query_async::<()>(conn)
            .await
            .map_err(|e| QueueError::with_source("Redis refused the heartbeat", e))
    }

    /// Removes the process from Sidekiq's view and from the registry (its
    /// working lists must be empty by then).
    pub(super) async fn leave(&self, conn: &mut RedisConnection) -> Result<(), QueueError> {
        redis::pipe()
            .atomic()
            .srem("processes", &self.identity)
            .ignore()
            .del(&self.identity)
            .ignore()
            .del(&work_keys(&self.identity))
            .ignore()
            .hdel(WORKERS, &self.identity)
            .ignore()
            .query_async::<()>(conn)
            .await
            .map_err(|e| QueueError::with_source("Redis refused to remove the process", e))
    }

    /// Takes the lease of the next recovery sweep, so that of all the live
    /// processes one sweeps per interval.
    pub(super) async fn take_sweep_lease(&self, conn: &mut RedisConnection) -> Result<bool, QueueError> {
        let ms = u64::try_from(self.sweep_interval().as_millis()).unwrap_or(u64::MAX);
        let taken: Option<String> = redis::cmd("SET")
            .arg("cacheback:recovery-lease")
            .arg(&self.identity)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .query_async(conn)
            .await
            .map_err(|e| QueueError::with_source("Redis refused the recovery lease", e))?;
        Ok(taken.is_some())
    }
}

/// Recovers the jobs of every registered process whose heartbeat (its
/// Sidekiq process key, kept alive by its beats) has expired: they go back on
/// their queues, and the process is forgotten. Returns how many jobs.
pub(super) async fn recover(conn: &mut RedisConnection, own_identity: &str) -> Result<usize, QueueError> {
    let workers: Vec<(String, String)> =
        conn.hgetall(WORKERS).await.map_err(|e| QueueError::with_source("Redis refused HGETALL", e))?;
    let mut recovered = 0;
    for (identity, queues) in workers {
        if identity == own_identity {
            continue;
        }
        let alive: bool =
            conn.exists(&identity).await.map_err(|e| QueueError::with_source("Redis refused EXISTS", e))?;
        if alive {
            continue;
        }
        let queues: Vec<String> = serde_json::from_str(&queues).unwrap_or_default();
        let moved = requeue(conn, &identity, &queues).await?;
        let () = redis::pipe()
            .hdel(WORKERS, &identity)
            .ignore()
            .srem("processes", &identity)
            .ignore()
            .del(&work_keys(&identity))
            .ignore()
            .query_async(conn)
            .await
            .map_err(|e| QueueError::with_source("Redis refused to forget a dead process", e))?;
        if moved > 0 {
            tracing::warn!(
                target: "cacheback",
                process = %identity,
                jobs = moved,
                "Recovered the jobs of a worker process that died; they are back on their queues"
            );
        }
        recovered += moved;
    }
    Ok(recovered)
}

/// The hashes of a process's work: Sidekiq 6's name, and Sidekiq 7's.
pub(super) fn work_keys(identity: &str) -> [String; 2] {
    [format!("{identity}:workers"), format!("{identity}:work")]
}

/// The host's name, as Sidekiq shows it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
