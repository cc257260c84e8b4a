use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::client::connect;
use super::sets::{self, Outcome};
use super::{
    DEFAULT_CONCURRENCY, DEFAULT_POLL_INTERVAL, DEFAULT_QUEUE, DEFAULT_SHUTDOWN_TIMEOUT, Message,
    REFRESH_CLASS,
};
use crate::connection::RedisConnection;
use crate::error::{Error, QueueError};
use crate::queue::{Performer, RefreshPayload};

/// How long a fetcher blocks on `BRPOP` before looking at the shutdown flag.
const FETCH_TIMEOUT_SECS: f64 = 1.0;
/// The least response timeout of a fetcher's own connection: an idle `BRPOP`
/// answers only after [`FETCH_TIMEOUT_SECS`], so a shorter response timeout
/// (the configured one may be 500 ms) would fail every idle fetch.
const FETCH_MIN_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs cacheback refreshes from Sidekiq queues.
///
/// * [`start`](Self::start) runs `concurrency` fetchers (each blocked on
///   `BRPOP` of the queues, in priority order) and a poller that moves due
///   retries back onto their queues; [`WorkerHandle::shutdown`] stops them
///   gracefully.
/// * [`drain`](Self::drain) runs until the queues are empty: Sidekiq's burst
///   mode, for tests and one-off runs.
///
/// A failed refresh is retried with Sidekiq's backoff through the `retry` set,
/// then kept in the `dead` set; the stale value stays in the cache meanwhile.
/// A job that is not JSON goes straight to the dead set; an unknown class, a
/// job name that is not registered or arguments that do not decode fail like
/// any job, and the worker goes on.
///
/// ```no_run
/// use cacheback::Cacheback;
/// use cacheback::queue::sidekiq::SidekiqWorker;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = Cacheback::builder().build().unwrap(); // with the app's jobs registered
/// let worker = SidekiqWorker::builder(cache, "redis://127.0.0.1:6379")
///     .queues(["cacheback"])
///     .concurrency(10)
///     .connect()
///     .await
///     .unwrap();
/// worker.run_until_signal().await; // SIGINT/SIGTERM: finish in-flight refreshes, then return
/// # });
/// ```
#[derive(Clone)]
pub struct SidekiqWorker {
    inner: Arc<Inner>,
}

struct Inner {
    performer: Arc<dyn Performer>,
    url: String,
    conn: RedisConnection,
    queues: Vec<String>,
    concurrency: usize,
    shutdown_timeout: Duration,
    poll_interval: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for SidekiqWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidekiqWorker")
            .field("url", &self.inner.url)
            .field("queues", &self.inner.queues)
            .field("concurrency", &self.inner.concurrency)
            .finish()
    }
}

/// Builds a [`SidekiqWorker`].
///
/// ```
/// # fn build(cache: cacheback::Cacheback) {
/// use std::time::Duration;
/// let builder = cacheback::queue::sidekiq::SidekiqWorker::builder(cache, "redis://127.0.0.1/")
///     .queues(["critical", "cacheback"])
///     .concurrency(4)
///     .shutdown_timeout(Duration::from_secs(10));
/// # let _ = builder;
/// # }
/// ```
pub struct SidekiqWorkerBuilder {
    performer: Arc<dyn Performer>,
    url: String,
    queues: Vec<String>,
    concurrency: usize,
    shutdown_timeout: Duration,
    poll_interval: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for SidekiqWorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidekiqWorkerBuilder")
            .field("url", &self.url)
            .field("queues", &self.queues)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl SidekiqWorkerBuilder {
    /// The queues to run, highest priority first (default: `cacheback`).
    #[must_use]
    pub fn queues<S: Into<String>>(mut self, queues: impl IntoIterator<Item = S>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// How many refreshes run at once (default 10, at least 1).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// How long [`WorkerHandle::shutdown`] waits for in-flight refreshes
    /// before putting them back on their queue (default 25 s, Sidekiq's).
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How often due retries are moved back onto their queues (default 5 s,
    /// with jitter).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The most that connecting, and each bookkeeping request (including any
    /// reconnection it waits on), may take (default 2 s). Fetches wait at
    /// least 2 s: their `BRPOP` blocks for 1 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects.
    pub async fn connect(self) -> Result<SidekiqWorker, QueueError> {
        if self.queues.is_empty() {
            return Err(QueueError::new("a Sidekiq worker needs at least one queue"));
        }
        let conn = connect(&self.url, self.timeout).await?;
        Ok(SidekiqWorker {
            inner: Arc::new(Inner {
                performer: self.performer,
                url: self.url,
                conn,
                queues: self.queues,
                concurrency: self.concurrency,
                shutdown_timeout: self.shutdown_timeout,
                poll_interval: self.poll_interval,
                timeout: self.timeout,
            }),
        })
    }
}

/// What [`SidekiqWorker::drain`] did.
///
/// ```
/// let report = cacheback::queue::sidekiq::DrainReport::default();
/// assert_eq!(report.processed, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Jobs taken from the queues.
    pub processed: usize,
    /// Of those, jobs that failed (retried, dead or discarded).
    pub failed: usize,
}

/// The job a fetcher is running, as `(queue, raw job)`: what a forced
/// shutdown puts back.
type InFlight = Arc<Mutex<Option<(String, String)>>>;

impl SidekiqWorker {
    /// Configures a worker running refreshes from the Redis at `url` with
    /// `performer`: a [`Cacheback`](crate::Cacheback), which runs its
    /// registered jobs.
    pub fn builder(performer: impl Performer, url: impl Into<String>) -> SidekiqWorkerBuilder {
        SidekiqWorkerBuilder {
            performer: Arc::new(performer),
            url: url.into(),
            queues: vec![DEFAULT_QUEUE.to_owned()],
            concurrency: DEFAULT_CONCURRENCY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            timeout: crate::connection::DEFAULT_TIMEOUT,
        }
    }

    /// The queues it runs, highest priority first.
    pub fn queues(&self) -> &[String] {
        &self.inner.queues
    }

    /// Runs jobs until every queue is empty, `concurrency` at a time (burst mode).
    ///
    /// # Errors
    ///
    /// Redis failed.
    pub async fn drain(&self) -> Result<DrainReport, QueueError> {
        let mut tasks = JoinSet::new();
        for _ in 0..self.inner.concurrency {
            let inner = Arc::clone(&self.inner);
            tasks.spawn(async move {
                let mut report = DrainReport::default();
                let mut conn = inner.conn.clone();
                while let Some(raw) = inner.pop(&mut conn).await? {
                    report.processed += 1;
                    if inner.process(&raw).await? != Outcome::Done {
                        report.failed += 1;
                    }
                }
                Ok::<_, QueueError>(report)
            });
        }
        let mut total = DrainReport::default();
        while let Some(done) = tasks.join_next().await {
            let report = done.map_err(|e| QueueError::with_source("a drain task panicked", e))??;
            total.processed += report.processed;
            total.failed += report.failed;
        }
        Ok(total)
    }

    /// Moves the jobs of the `schedule` and `retry` sets that are due onto
    /// their queues; returns how many.
    ///
    /// # Errors
    ///
    /// Redis failed.
    pub async fn enqueue_due(&self) -> Result<usize, QueueError> {
        sets::enqueue_due(&mut self.inner.conn.clone()).await
    }

    /// Starts the fetchers and the retry poller.
    pub fn start(&self) -> WorkerHandle {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut in_flight = Vec::new();
        for _ in 0..self.inner.concurrency {
            let slot = Arc::new(Mutex::new(None));
            in_flight.push(Arc::clone(&slot));
            tasks.spawn(Arc::clone(&self.inner).fetch_loop(stopped.clone(), slot));
        }
        tasks.spawn(Arc::clone(&self.inner).poll_loop(stopped));
        tracing::info!(
            target: "cacheback",
            queues = ?self.inner.queues,
            concurrency = self.inner.concurrency,
            "Sidekiq worker started"
        );
        WorkerHandle {
            stop,
            tasks,
            in_flight,
            conn: self.inner.conn.clone(),
            shutdown_timeout: self.inner.shutdown_timeout,
        }
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(&self) {
        let handle = self.start();
        wait_for_signal().await;
        tracing::info!(target: "cacheback", "Shutting down the Sidekiq worker");
        handle.shutdown().await;
    }
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(err) => {
                tracing::error!(target: "cacheback", error = %err, "cannot listen for SIGTERM");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// A running worker.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    in_flight: Vec<InFlight>,
    conn: RedisConnection,
    shutdown_timeout: Duration,
}

impl WorkerHandle {
    /// Stops fetching, waits for in-flight refreshes up to the shutdown
    /// timeout, and puts any refresh still running then back on its queue.
    /// Returns how many were put back.
    pub async fn shutdown(mut self) -> usize {
        let _ = self.stop.send(true);
        let finished = tokio::time::timeout(self.shutdown_timeout, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_ok() {
            tracing::info!(target: "cacheback", "Sidekiq worker stopped");
            return 0;
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let mut requeued = 0;
        for slot in &self.in_flight {
            let job = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            if let Some((queue, raw)) = job {
                let pushed: Result<(), _> = self.conn.rpush(format!("queue:{queue}"), &raw).await;
                match pushed {
                    Ok(()) => requeued += 1,
                    Err(err) => {
                        tracing::error!(target: "cacheback", error = %err, job = %raw, "Unable to requeue a job")
                    }
                }
            }
        }
        tracing::warn!(target: "cacheback", requeued, "Sidekiq worker stopped with refreshes cut short; they are back on their queues");
        requeued
    }
}

impl Inner {
    /// Takes the next job without blocking, from the first non-empty queue.
    async fn pop(&self, conn: &mut RedisConnection) -> Result<Option<String>, QueueError> {
        for queue in &self.queues {
            let raw: Option<String> = conn
                .rpop(format!("queue:{queue}"), None)
                .await
                .map_err(|e| QueueError::with_source("Redis refused RPOP", e))?;
            if raw.is_some() {
                return Ok(raw);
            }
        }
        Ok(None)
    }

    async fn fetch_loop(self: Arc<Self>, stopped: watch::Receiver<bool>, slot: InFlight) {
        let keys: Vec<String> = self.queues.iter().map(|q| format!("queue:{q}")).collect();
        let mut conn: Option<RedisConnection> = None;
        while !*stopped.borrow() {
            let c = match &mut conn {
                Some(c) => c,
                // Without a deadline of its own: the response timeout (at least
                // FETCH_MIN_RESPONSE_TIMEOUT) counts from when the BRPOP is sent,
                // so waiting for a reconnection never cuts a BRPOP short.
                None => match connect(&self.url, self.timeout.max(FETCH_MIN_RESPONSE_TIMEOUT)).await {
                    Ok(c) => conn.insert(c.without_deadline()),
                    Err(err) => {
                        tracing::error!(target: "cacheback", error = %err, "Sidekiq fetcher cannot connect; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            // Never cancelled mid-flight: a popped job must not be dropped.
            let popped: Result<Option<(String, String)>, _> = c.brpop(&keys, FETCH_TIMEOUT_SECS).await;
            let (key, raw) = match popped {
                Ok(Some(job)) => job,
                Ok(None) => continue,
                Err(err) => {
                    tracing::error!(target: "cacheback", error = %err, "Sidekiq fetch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let queue = key.strip_prefix("queue:").unwrap_or(&key).to_owned();
            *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((queue, raw.clone()));
            if let Err(err) = self.process(&raw).await {
                tracing::error!(target: "cacheback", error = %err, job = %raw, "Unable to record a job's outcome");
            }
            *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
    }

    async fn poll_loop(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let mut round: u64 = 0;
        while !*stopped.borrow() {
            if let Err(err) = sets::enqueue_due(&mut self.conn.clone()).await {
                tracing::error!(target: "cacheback", error = %err, "Unable to enqueue due retries");
            }
            // Jitter between 0.5 and 1.5 poll intervals, so processes spread out.
            round += 1;
            let jitter = f64::from(u32::try_from(round * 7919 % 1000).unwrap_or(0)) / 1000.0;
            let pause = self.poll_interval.mul_f64(0.5 + jitter);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => {}
            }
        }
    }

    async fn process(&self, raw: &str) -> Result<Outcome, QueueError> {
        let msg: Message = match serde_json::from_str(raw) {
            Ok(msg) => msg,
            Err(err) => {
                tracing::error!(target: "cacheback", error = %err, job = %raw, "Job is not valid JSON; sent to the dead set");
                sets::count(&mut self.conn.clone(), false).await;
                sets::bury(&mut self.conn.clone(), raw).await?;
                return Ok(Outcome::Dead);
            }
        };
        match self.perform(&msg).await {
            Ok(()) => {
                sets::count(&mut self.conn.clone(), true).await;
                Ok(Outcome::Done)
            }
            Err((class, message)) => {
                tracing::error!(target: "cacheback", jid = %msg.jid, error_class = %class, "Refresh job failed: {message}");
                sets::count(&mut self.conn.clone(), false).await;
                sets::retry_or_bury(&mut self.conn.clone(), msg, class, message).await
            }
        }
    }

    async fn perform(&self, msg: &Message) -> Result<(), (String, String)> {
        if msg.class != REFRESH_CLASS {
            return Err(("NameError".to_owned(), format!("uninitialized constant {}", msg.class)));
        }
        let [arg] = msg.args.as_slice() else {
            return Err((
                "ArgumentError".to_owned(),
                format!("wrong number of arguments (given {}, expected 1)", msg.args.len()),
            ));
        };
        let payload: RefreshPayload = serde_json::from_value(arg.clone())
            .map_err(|e| ("ArgumentError".to_owned(), format!("not a cacheback refresh payload: {e}")))?;
        Arc::clone(&self.performer)
            .perform(&payload)
            .await
            .map(drop)
            .map_err(|e| (error_class(&e).to_owned(), e.to_string()))
    }
}

/// The Sidekiq `error_class` of a refresh failure.
fn error_class(err: &Error) -> &'static str {
    match err {
        Error::UnknownJob { .. } => "Cacheback::UnknownJob",
        Error::Payload { .. } => "Cacheback::InvalidPayload",
        Error::Fetch { .. } => "Cacheback::FetchError",
        Error::Store { .. } | Error::VerifyWrite { .. } => "Cacheback::StoreError",
        _ => "Cacheback::Error",
    }
}
