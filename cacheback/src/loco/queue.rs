//! Refreshes on loco's own queue (`task_queue: loco`): [`LocoQueue`] puts them
//! on `ctx.queue_provider`, [`RefreshWorker`] (a loco `BackgroundWorker`)
//! runs them.
//!
//! What loco 1.2's queues do, and so what this queue is built around: they
//! never retry a failed job (it is marked `failed`, the error in its
//! `task_data`), cannot make a job unique, and leave a job whose worker the
//! dequeuing process did not register in `processing` until their reaper. So
//! the engine's claim, not the queue, keeps one queued refresh per stale key;
//! a failed refresh leaves the stale item in place, and the first reader
//! after its claim expires queues another.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use loco_rs::app::AppContext;
use loco_rs::bgworker::{BackgroundWorker, Queue};
use loco_rs::config::WorkerMode;

use super::context::from_context;
use crate::error::QueueError;
use crate::payload::RefreshPayload;
use crate::queue::{Performer, RefreshQueue};
use crate::task::TaskOptions;

/// The class name of cacheback's refreshes on loco's queue: the `name` column
/// of `pg_loco_queue` and `sqlt_loco_queue` rows.
pub const REFRESH_JOB_CLASS: &str = "CachebackRefresh";

/// A [`RefreshQueue`] on the loco app's queue, as loco's own
/// `perform_later` would run a job: with `workers.mode: BackgroundQueue` the
/// refresh is a job on `ctx.queue_provider` (run by [`RefreshWorker`] in the
/// process that dequeues it); with `ForegroundBlocking` it runs in the
/// reader's request, with `BackgroundAsync` as a task of the reader's process.
///
/// An enqueue that fails (loco's queue unreachable, or no queue provider
/// configured) fails over to a refresh in the request, as with every queue.
///
/// ```no_run
/// # fn f(ctx: &loco_rs::app::AppContext) {
/// let queue = cacheback::loco::LocoQueue::new(ctx, None);
/// # let _ = queue;
/// # }
/// ```
pub struct LocoQueue {
    provider: Option<Arc<Queue>>,
    mode: WorkerMode,
    default_queue: Option<String>,
    performer: OnceLock<Weak<dyn Performer>>,
}

impl std::fmt::Debug for LocoQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocoQueue")
            .field("provider", &self.provider.as_ref().map(|queue| queue.describe()))
            .field("mode", &self.mode)
            .finish()
    }
}

impl LocoQueue {
    /// The queue of `ctx` (its provider and worker mode); refreshes whose
    /// task options name no queue go to `default_queue`, where the provider
    /// honours names.
    pub fn new(ctx: &AppContext, default_queue: Option<String>) -> Self {
        Self {
            provider: ctx.queue_provider.clone(),
            mode: ctx.config.workers.mode.clone(),
            default_queue,
            performer: OnceLock::new(),
        }
    }

    fn performer(&self) -> Result<Arc<dyn Performer>, QueueError> {
        self.performer
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| QueueError::new("the engine this queue served is gone"))
    }
}

#[async_trait]
impl RefreshQueue for LocoQueue {
    async fn enqueue(&self, payload: RefreshPayload, options: &TaskOptions) -> Result<(), QueueError> {
        match self.mode {
            WorkerMode::BackgroundQueue => {
                let provider = self.provider.as_ref().ok_or_else(|| {
                    QueueError::new(
                        "loco has no queue provider (QueueProviderMissing): `workers.mode: \
                         BackgroundQueue` needs a `queue:` in the config",
                    )
                })?;
                let queue = options.queue.clone().or_else(|| self.default_queue.clone());
                provider
                    .enqueue(REFRESH_JOB_CLASS.to_owned(), queue, &payload, None, None)
                    .await
                    .map_err(|e| QueueError::with_source("loco's queue refused the refresh", e))?;
                Ok(())
            }
            WorkerMode::ForegroundBlocking => {
                let performer = self.performer()?;
                if let Err(error) = performer.perform(&payload).await {
                    tracing::error!(target: "cacheback", job = %payload.job, %error, "refresh failed");
                }
                Ok(())
            }
            WorkerMode::BackgroundAsync => {
                let performer = self.performer()?;
                tokio::spawn(async move {
                    if let Err(error) = performer.perform(&payload).await {
                        tracing::error!(target: "cacheback", job = %payload.job, %error, "refresh failed");
                    }
                });
                Ok(())
            }
        }
    }

    fn attach(&self, performer: Weak<dyn Performer>) {
        let _ = self.performer.set(performer);
    }

    async fn ping(&self) -> Result<(), QueueError> {
        match (&self.mode, &self.provider) {
            (WorkerMode::BackgroundQueue, Some(provider)) => {
                provider.ping().await.map_err(|e| QueueError::with_source("loco's queue does not answer", e))
            }
            (WorkerMode::BackgroundQueue, None) => Err(QueueError::new("loco has no queue provider")),
            _ => Ok(()),
        }
    }
}

/// cacheback's loco `BackgroundWorker`: runs the refreshes [`LocoQueue`]
/// puts on loco's queue. Register it in `Hooks::connect_workers`; loco runs
/// it under `cargo loco start --worker` and `--server-and-worker`.
///
/// A payload that does not parse, names an unregistered job or whose
/// refresh fails is logged (target `cacheback`) and returned as an error,
/// which loco records on the job (status `failed`, the error in its
/// `task_data`; loco retries nothing: `cargo loco task cacheback
/// command:retry-dead` puts them back). It never panics.
///
/// ```
/// # use loco_rs::{app::AppContext, bgworker::{BackgroundWorker, Queue}, Result};
/// // impl Hooks for App { ...
/// async fn connect_workers(ctx: &AppContext, queue: &Queue) -> Result<()> {
///     queue.register(cacheback::loco::RefreshWorker::build(ctx)).await?;
///     Ok(())
/// }
/// ```
pub struct RefreshWorker {
    ctx: AppContext,
}

#[async_trait]
impl BackgroundWorker<serde_json::Value> for RefreshWorker {
    fn build(ctx: &AppContext) -> Self {
        Self { ctx: ctx.clone() }
    }

    fn class_name() -> String {
        REFRESH_JOB_CLASS.to_owned()
    }

    /// The payload is taken as any JSON and parsed here, so a bad one is
    /// cacheback's error (logged), not a silent failure inside loco.
    async fn perform(&self, args: serde_json::Value) -> loco_rs::Result<()> {
        let payload: RefreshPayload = serde_json::from_value(args).map_err(|e| {
            tracing::error!(target: "cacheback", error = %e, "a refresh on loco's queue is not a refresh payload");
            loco_rs::Error::Message(format!("cacheback: not a refresh payload: {e}"))
        })?;
        // The engine is looked up per job: loco builds its workers before
        // every initializer has run.
        let cache = from_context(&self.ctx).ok_or_else(|| {
            loco_rs::Error::Message("cacheback: the cacheback initializer has not run".to_owned())
        })?;
        cache.perform(&payload).await.map(drop).map_err(|error| {
            tracing::error!(target: "cacheback", job = %payload.job, %error, "refresh failed");
            loco_rs::Error::Message(format!("cacheback: refresh of {} failed: {error}", payload.job))
        })
    }
}

/// The numbers of cacheback's refreshes on loco's queue (rows named
/// [`REFRESH_JOB_CLASS`]), as `cargo loco task cacheback command:stats`
/// prints them.
///
/// ```
/// let stats = cacheback::loco::LocoQueueStats { table: "pg_loco_queue", queued: 1, processing: 0, failed: 2 };
/// assert_eq!(stats.failed, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocoQueueStats {
    /// The queue's table (`pg_loco_queue` or `sqlt_loco_queue`).
    pub table: &'static str,
    /// Refreshes waiting to run.
    pub queued: u64,
    /// Refreshes a worker has taken (or whose worker died: loco's reaper
    /// puts those back).
    pub processing: u64,
    /// Refreshes that failed (loco retries none; `command:retry-dead` does).
    pub failed: u64,
}

/// The table and URL of the app's loco queue, when it is one of loco's
/// database queues; `None` on its Redis queue (or none). Read through the
/// config's serialized form, as the SQLite variant exists only with loco's
/// `db-sqlite` feature, which is the app's to choose.
fn database_queue(ctx: &AppContext) -> Option<(&'static str, String)> {
    let config = serde_json::to_value(ctx.config.queue.as_ref()?).ok()?;
    let table = match config.get("kind")?.as_str()? {
        "Postgres" => "pg_loco_queue",
        "Sqlite" => "sqlt_loco_queue",
        _ => return None,
    };
    Some((table, config.get("uri")?.as_str()?.to_owned()))
}

#[cfg(feature = "sea-orm")]
async fn queue_database(uri: &str) -> Result<sea_orm::DatabaseConnection, crate::error::Error> {
    sea_orm::Database::connect(uri).await.map_err(|e| crate::error::Error::QueueUnavailable {
        source: QueueError::with_source("cannot connect to loco's queue database", e),
    })
}

#[cfg(feature = "sea-orm")]
fn queue_error(e: sea_orm::DbErr) -> crate::error::Error {
    crate::error::Error::QueueUnavailable {
        source: QueueError::with_source("reading loco's queue failed", e),
    }
}

/// The numbers of cacheback's refreshes on the app's loco queue, read from
/// its table; `None` when loco's queue is its Redis one (whose jobs this does
/// not count) or there is none.
///
/// # Errors
///
/// [`Error::QueueUnavailable`](crate::Error::QueueUnavailable): the queue's
/// database cannot be reached or read.
#[cfg(feature = "sea-orm")]
pub async fn loco_queue_stats(ctx: &AppContext) -> Result<Option<LocoQueueStats>, crate::error::Error> {
    use sea_orm::{ConnectionTrait, Statement};
    let Some((table, uri)) = database_queue(ctx) else {
        return Ok(None);
    };
    let db = queue_database(&uri).await?;
    let backend = db.get_database_backend();
    let param = if backend == sea_orm::DbBackend::Sqlite { "?1" } else { "$1" };
    let sql = format!("SELECT status, COUNT(*) FROM {table} WHERE name = {param} GROUP BY status");
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [REFRESH_JOB_CLASS.into()]))
        .await
        .map_err(queue_error)?;
    let mut stats = LocoQueueStats { table, queued: 0, processing: 0, failed: 0 };
    for row in rows {
        let status: String = row.try_get_by_index(0).map_err(queue_error)?;
        let count = u64::try_from(row.try_get_by_index::<i64>(1).map_err(queue_error)?).unwrap_or(0);
        match status.as_str() {
            "queued" => stats.queued = count,
            "processing" => stats.processing = count,
            "failed" => stats.failed = count,
            _ => {}
        }
    }
    Ok(Some(stats))
}

/// Puts cacheback's failed refreshes on the app's loco queue back in line,
/// through loco's own `retry_failed` (one job at a time, leaving other
/// workers' failed jobs alone); returns how many.
///
/// # Errors
///
/// [`Error::QueueUnavailable`](crate::Error::QueueUnavailable): loco's queue
/// is not a database one, has no provider in this process, or fails.
#[cfg(feature = "sea-orm")]
pub async fn retry_failed_refreshes(ctx: &AppContext) -> Result<u64, crate::error::Error> {
    use sea_orm::{ConnectionTrait, Statement};
    let unavailable =
        |message: &str| crate::error::Error::QueueUnavailable { source: QueueError::new(message) };
    let (table, uri) =
        database_queue(ctx).ok_or_else(|| unavailable("loco's queue is not its PostgreSQL or SQLite one"))?;
    let provider = ctx
        .queue_provider
        .as_ref()
        .ok_or_else(|| unavailable("loco has no queue provider in this process"))?;
    let db = queue_database(&uri).await?;
    let backend = db.get_database_backend();
    let param = if backend == sea_orm::DbBackend::Sqlite { "?1" } else { "$1" };
    let sql = format!("SELECT id FROM {table} WHERE name = {param} AND status = 'failed'");
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [REFRESH_JOB_CLASS.into()]))
        .await
        .map_err(queue_error)?;
    let mut retried = 0;
    for row in rows {
        let id: String = row.try_get_by_index(0).map_err(queue_error)?;
        retried +=
            provider.retry_failed(Some(&id)).await.map_err(|e| crate::error::Error::QueueUnavailable {
                source: QueueError::with_source("loco's queue refused the retry", e),
            })?;
    }
    Ok(retried)
}
