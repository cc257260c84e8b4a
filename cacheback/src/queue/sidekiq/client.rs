use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use super::{DEFAULT_QUEUE, Message, REFRESH_CLASS, Timestamps};
use crate::connection::{RedisConnection, Target};
use crate::error::QueueError;
use crate::queue::{RefreshPayload, RefreshQueue};
use crate::task::{Retry, TaskOptions};

/// Enqueues refreshes as Sidekiq jobs.
///
/// A job's queue and retry come from, in order: the per-job options given to
/// [`SidekiqQueueBuilder::task_options`] (configuration), the job's own
/// [`task_options`](crate::Job::task_options), the defaults. Retry off is
/// written as `"retry": 0`, so a failed refresh goes to the dead set instead
/// of vanishing.
///
/// ```no_run
/// use cacheback::Cacheback;
/// use cacheback::queue::sidekiq::SidekiqQueue;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let queue = SidekiqQueue::builder("redis://127.0.0.1:6379").default_queue("cacheback").connect().await.unwrap();
/// let cache = Cacheback::builder().queue(queue).build().unwrap();
/// # let _ = cache;
/// # });
/// ```
#[derive(Clone)]
pub struct SidekiqQueue {
    pub(super) conn: RedisConnection,
    target: Target,
    default_queue: String,
    default_retry: Retry,
    per_job: HashMap<String, TaskOptions>,
    timestamps: Timestamps,
}

impl std::fmt::Debug for SidekiqQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidekiqQueue")
            .field("target", &self.target.to_string())
            .field("default_queue", &self.default_queue)
            .field("timestamps", &self.timestamps)
            .finish()
    }
}

/// Builds a [`SidekiqQueue`].
///
/// ```
/// use cacheback::{Retry, TaskOptions};
/// let builder = cacheback::queue::sidekiq::SidekiqQueue::builder("redis://127.0.0.1/")
///     .default_queue("refresh")
///     .default_retry(Retry::Count(5))
///     .task_options("app::SlowJob", TaskOptions::default().queue("slow"))
///     .timestamps(cacheback::queue::sidekiq::Timestamps::Seconds);
/// # let _ = builder;
/// ```
#[derive(Debug, Clone)]
pub struct SidekiqQueueBuilder {
    target: Target,
    default_queue: String,
    default_retry: Retry,
    per_job: HashMap<String, TaskOptions>,
    timeout: Duration,
    timestamps: Timestamps,
}

impl SidekiqQueue {
    /// Configures a queue on the Redis at `url`.
    pub fn builder(url: impl Into<String>) -> SidekiqQueueBuilder {
        SidekiqQueueBuilder::new(Target::Url(url.into()))
    }

    /// Configures a queue on the master of a Redis Sentinel `group`,
    /// followed through failovers (as
    /// [`RedisStore::sentinel_builder`](crate::store::RedisStore::sentinel_builder)'s).
    ///
    /// ```
    /// use cacheback::SentinelGroup;
    /// let group = SentinelGroup::new("mymaster", ["127.0.0.1:26379"]);
    /// let builder = cacheback::queue::sidekiq::SidekiqQueue::sentinel_builder(group);
    /// # let _ = builder;
    /// ```
    pub fn sentinel_builder(group: crate::SentinelGroup) -> SidekiqQueueBuilder {
        SidekiqQueueBuilder::new(Target::Sentinel(group))
    }

    /// The queue of jobs without options.
    pub fn default_queue(&self) -> &str {
        &self.default_queue
    }

    /// The message this queue would push for `payload`.
    pub fn message(&self, payload: RefreshPayload, options: &TaskOptions) -> Result<Message, QueueError> {
        let configured = self.per_job.get(&payload.job);
        let queue = configured
            .and_then(|o| o.queue.clone())
            .or_else(|| options.queue.clone())
            .unwrap_or_else(|| self.default_queue.clone());
        let retry = configured.and_then(|o| o.retry).or(options.retry).unwrap_or(self.default_retry);
        let payload = serde_json::to_value(payload)
            .map_err(|e| QueueError::with_source("the refresh payload does not serialize", e))?;
        let retry = match retry {
            Retry::Enabled(true) => serde_json::Value::Bool(true),
            Retry::Enabled(false) => serde_json::Value::from(0),
            Retry::Count(n) => serde_json::Value::from(n),
        };
        Ok(Message::new(REFRESH_CLASS, vec![payload], queue, retry).with_timestamps(self.timestamps))
    }
}

impl SidekiqQueueBuilder {
    fn new(target: Target) -> Self {
        SidekiqQueueBuilder {
            target,
            default_queue: DEFAULT_QUEUE.to_owned(),
            default_retry: super::DEFAULT_RETRY,
            per_job: HashMap::new(),
            timeout: crate::connection::DEFAULT_TIMEOUT,
            timestamps: Timestamps::default(),
        }
    }

    /// The queue of jobs that name none (default `cacheback`).
    #[must_use]
    pub fn default_queue(mut self, queue: impl Into<String>) -> Self {
        self.default_queue = queue.into();
        self
    }

    /// The retry of jobs that set none (default `true`: 25 retries).
    #[must_use]
    pub fn default_retry(mut self, retry: Retry) -> Self {
        self.default_retry = retry;
        self
    }

    /// Options for the job named `job`, over the job's own.
    #[must_use]
    pub fn task_options(mut self, job: impl Into<String>, options: TaskOptions) -> Self {
        self.per_job.insert(job.into(), options);
        self
    }

    /// The most that connecting, and each enqueue (including any reconnection
    /// it waits on), may take (default 2 s): how long a request waits on an
    /// unreachable Redis before failing over.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The form of the times (`created_at`, `enqueued_at`) of the jobs it
    /// pushes (default [`Timestamps::Seconds`]: float epoch seconds, which
    /// every Sidekiq version reads; [`Timestamps::Milliseconds`] is Sidekiq
    /// 8's own form, which only Sidekiq 8 reads). Jobs the worker re-pushes
    /// keep the form they came with.
    #[must_use]
    pub fn timestamps(mut self, timestamps: Timestamps) -> Self {
        self.timestamps = timestamps;
        self
    }

    /// Connects.
    pub async fn connect(self) -> Result<SidekiqQueue, QueueError> {
        let conn = connect(&self.target, self.timeout).await?;
        Ok(SidekiqQueue {
            conn,
            target: self.target,
            default_queue: self.default_queue,
            default_retry: self.default_retry,
            per_job: self.per_job,
            timestamps: self.timestamps,
        })
    }
}

/// Connects to the queues' Redis at `target`, refusing a node of a Redis
/// Cluster ([`NOT_ON_A_CLUSTER`](super::NOT_ON_A_CLUSTER)).
pub(super) async fn connect(target: &Target, timeout: Duration) -> Result<RedisConnection, QueueError> {
    let mut conn = crate::connection::connect(target, timeout)
        .await
        .map_err(|(message, e)| QueueError::with_source(message, e))?;
    // An `INFO` the server refuses (an ACL) proves nothing either way.
    let info: Option<String> = redis::cmd("INFO").arg("cluster").query_async(&mut conn).await.ok();
    if info.is_some_and(|info| info.lines().any(|line| line.trim() == "cluster_enabled:1")) {
        return Err(QueueError::new(format!(
            "`{target}` is a node of a Redis Cluster: {}",
            super::NOT_ON_A_CLUSTER
        )));
    }
    Ok(conn)
}

/// Pushes `msg` onto its queue, as Sidekiq's client does.
pub(super) async fn push(conn: &mut RedisConnection, msg: &Message) -> Result<(), QueueError> {
    let json =
        serde_json::to_string(msg).map_err(|e| QueueError::with_source("the job does not serialize", e))?;
    redis::pipe()
        .atomic()
        .sadd("queues", &msg.queue)
        .ignore()
        .lpush(format!("queue:{}", msg.queue), json)
        .ignore()
        .query_async::<()>(conn)
        .await
        .map_err(|e| QueueError::with_source("Redis refused the job", e))
}

#[async_trait]
impl RefreshQueue for SidekiqQueue {
    async fn enqueue(&self, payload: RefreshPayload, options: &TaskOptions) -> Result<(), QueueError> {
        let msg = self.message(payload, options)?;
        push(&mut self.conn.clone(), &msg).await?;
        tracing::debug!(target: "cacheback", jid = %msg.jid, queue = %msg.queue, "Enqueued Sidekiq job");
        Ok(())
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn.clone()).await.map_err(|e| {
            QueueError::with_source(format!("Sidekiq Redis at `{}` does not answer", self.target), e)
        })?;
        Ok(())
    }
}
