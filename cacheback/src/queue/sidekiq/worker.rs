use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::client::connect;
use super::fetch::{self, Fetched};
use super::process::{self, DEFAULT_HEARTBEAT_LIFESPAN, Process, Work};
use super::sets::{self, Outcome};
use super::{
    DEFAULT_CONCURRENCY, DEFAULT_POLL_INTERVAL, DEFAULT_QUEUE, DEFAULT_SHUTDOWN_TIMEOUT, Message,
    REFRESH_CLASS,
};
use crate::connection::{RedisConnection, Target};
use crate::error::{Error, QueueError};
use crate::queue::{Performer, RefreshPayload};
use crate::telemetry;

/// How long an idle fetcher blocks on `BLMOVE` of a single queue before
/// looking at the shutdown flag.
const FETCH_TIMEOUT_SECS: f64 = 1.0;
/// How long an idle fetcher of several queues blocks on the first: the
/// others are looked at again after it (a lower-priority job waits at most
/// this long for an idle worker).
const FETCH_TIMEOUT_SEVERAL_SECS: f64 = 0.1;
/// The least response timeout of a fetcher's own connection: an idle
/// `BLMOVE` answers only after [`FETCH_TIMEOUT_SECS`], so a shorter response
/// timeout (the configured one may be 500 ms) would fail every idle fetch.
const FETCH_MIN_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The first wait of a fetcher after a failed fetch or connect; it doubles
/// at each failure in a row, up to [`FETCH_RETRY_MAX`].
const FETCH_RETRY_FIRST: Duration = Duration::from_millis(100);

/// The longest wait of a fetcher between two failed fetches.
const FETCH_RETRY_MAX: Duration = Duration::from_secs(1);
/// How many jobs a draining fetcher moves to its working list at once.
const DRAIN_BATCH: usize = 8;

/// Runs cacheback refreshes from Sidekiq queues.
///
/// * [`start`](Self::start) runs `concurrency` fetchers, a heartbeat and a
///   poller that moves due retries back onto their queues;
///   [`WorkerHandle::shutdown`] stops them gracefully.
/// * Fetching is reliable: a job moves atomically from its queue (in
///   priority order) into this process's working list, and leaves it when its
///   outcome is recorded. If the process dies (`SIGKILL`, a crash), its
///   heartbeat expires after the [heartbeat lifespan](SidekiqWorkerBuilder::heartbeat_lifespan)
///   and a live worker (one starting, or the periodic sweep) puts its jobs
///   back on their queues: a refresh runs at least once, and again at most
///   once per crash (a refresh that finds its item fetched since it was
///   queued skips the fetch).
/// * The heartbeat is Sidekiq's: `Sidekiq::ProcessSet` and
///   `Sidekiq::WorkSet` (the Web UI's Busy page) list the worker and the
///   refreshes it is running.
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
    process: Process,
    target: Target,
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
            .field("target", &self.inner.target.to_string())
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
    target: Target,
    queues: Vec<String>,
    concurrency: usize,
    shutdown_timeout: Duration,
    poll_interval: Duration,
    timeout: Duration,
    heartbeat_lifespan: Duration,
}

impl std::fmt::Debug for SidekiqWorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidekiqWorkerBuilder")
            .field("target", &self.target.to_string())
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

    /// How many refreshes run at once (default [`DEFAULT_CONCURRENCY`], 10).
    ///
    /// # Panics
    ///
    /// If `concurrency` is 0: a worker that runs nothing is a mistake, not
    /// a setting (`sidekiq.concurrency: 0` in the settings is an error that
    /// names the key).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        assert!(concurrency > 0, "a Sidekiq worker's concurrency must be at least 1");
        self.concurrency = concurrency;
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

    /// How long a worker process is trusted to be alive after its last
    /// heartbeat (default 60 s, Sidekiq Pro's): once it has passed, another
    /// worker puts the refreshes the process was running back on their
    /// queues. The recovery bound of a killed worker's refreshes is this
    /// lifespan plus a quarter of it (the sweep interval).
    #[must_use]
    pub fn heartbeat_lifespan(mut self, lifespan: Duration) -> Self {
        self.heartbeat_lifespan = lifespan.max(Duration::from_secs(1));
        self
    }

    /// Connects, and recovers the refreshes of worker processes that died.
    pub async fn connect(self) -> Result<SidekiqWorker, QueueError> {
        if self.queues.is_empty() {
            return Err(QueueError::new("a Sidekiq worker needs at least one queue"));
        }
        let mut conn = connect(&self.target, self.timeout).await?;
        let process = Process::new(&self.queues, self.concurrency, self.heartbeat_lifespan);
        process::recover(&mut conn, &process.identity).await?;
        Ok(SidekiqWorker {
            inner: Arc::new(Inner {
                performer: self.performer,
                process,
                target: self.target,
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

/// The refresh a fetcher is running, for the heartbeat's work list.
type InFlight = Arc<Mutex<Option<Work>>>;

impl SidekiqWorker {
    /// Configures a worker running refreshes from the Redis at `url` with
    /// `performer`: a [`Cacheback`](crate::Cacheback), which runs its
    /// registered jobs.
    pub fn builder(performer: impl Performer, url: impl Into<String>) -> SidekiqWorkerBuilder {
        Self::builder_for(performer, Target::Url(url.into()))
    }

    /// Configures a worker running refreshes from the master of a Redis
    /// Sentinel `group`, followed through failovers (as
    /// [`RedisStore::sentinel_builder`](crate::store::RedisStore::sentinel_builder)'s):
    /// a fetch cut short by the master's demotion asks the sentinels and
    /// fetches from the new master.
    ///
    /// ```
    /// # fn build(cache: cacheback::Cacheback) {
    /// use cacheback::SentinelGroup;
    /// let group = SentinelGroup::new("mymaster", ["127.0.0.1:26379"]);
    /// let builder = cacheback::queue::sidekiq::SidekiqWorker::sentinel_builder(cache, group);
    /// # let _ = builder;
    /// # }
    /// ```
    pub fn sentinel_builder(performer: impl Performer, group: crate::SentinelGroup) -> SidekiqWorkerBuilder {
        Self::builder_for(performer, Target::Sentinel(group))
    }

    fn builder_for(performer: impl Performer, target: Target) -> SidekiqWorkerBuilder {
        SidekiqWorkerBuilder {
            performer: Arc::new(performer),
            target,
            queues: vec![DEFAULT_QUEUE.to_owned()],
            concurrency: DEFAULT_CONCURRENCY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            timeout: crate::connection::DEFAULT_TIMEOUT,
            heartbeat_lifespan: DEFAULT_HEARTBEAT_LIFESPAN,
        }
    }

    /// This process's Sidekiq identity (`hostname:pid:nonce`), as
    /// `Sidekiq::ProcessSet` lists it.
    pub fn identity(&self) -> &str {
        &self.inner.process.identity
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
        let inner = &self.inner;
        inner.process.beat(&mut inner.conn.clone(), &[]).await?;
        let (stop, stopped) = watch::channel(false);
        let heartbeat = tokio::spawn(Arc::clone(inner).heartbeat_loop(stopped, Vec::new()));
        let mut tasks = JoinSet::new();
        for _ in 0..inner.concurrency {
            let inner = Arc::clone(inner);
            tasks.spawn(async move {
                let mut report = DrainReport::default();
                let mut conn = inner.conn.clone();
                loop {
                    let batch =
                        fetch::take(&mut conn, &inner.process.identity, &inner.queues, DRAIN_BATCH).await?;
                    if batch.is_empty() {
                        return Ok::<_, QueueError>(report);
                    }
                    let failed_before = report.failed;
                    for job in &batch {
                        report.processed += 1;
                        if inner.process(job).await? != Outcome::Done {
                            report.failed += 1;
                        }
                    }
                    fetch::ack(&mut conn, &inner.process.identity, &batch).await?;
                    sets::count(&mut conn, batch.len(), report.failed - failed_before).await;
                }
            });
        }
        let mut total = DrainReport::default();
        let mut failure = None;
        while let Some(done) = tasks.join_next().await {
            match done.map_err(|e| QueueError::with_source("a drain task panicked", e)).and_then(|r| r) {
                Ok(report) => {
                    total.processed += report.processed;
                    total.failed += report.failed;
                }
                Err(err) => failure = Some(err),
            }
        }
        let _ = stop.send(true);
        let _ = heartbeat.await;
        let mut conn = inner.conn.clone();
        fetch::requeue(&mut conn, &inner.process.identity, &inner.queues).await?;
        inner.process.leave(&mut conn).await?;
        failure.map_or(Ok(total), Err)
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
        tasks.spawn(Arc::clone(&self.inner).poll_loop(stopped.clone()));
        let heartbeat = tokio::spawn(Arc::clone(&self.inner).heartbeat_loop(stopped, in_flight));
        tracing::info!(
            target: "cacheback",
            queues = ?self.inner.queues,
            concurrency = self.inner.concurrency,
            "Sidekiq worker started"
        );
        WorkerHandle { stop, tasks, heartbeat, inner: Arc::clone(&self.inner) }
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
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    heartbeat: tokio::task::JoinHandle<()>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle").field("identity", &self.inner.process.identity).finish_non_exhaustive()
    }
}

impl WorkerHandle {
    /// Stops fetching, waits for in-flight refreshes up to the shutdown
    /// timeout, and puts any refresh still running then (everything left in
    /// this process's working lists) back on its queue; then leaves Sidekiq's
    /// process list. Returns how many were put back.
    pub async fn shutdown(mut self) -> usize {
        let _ = self.stop.send(true);
        let finished = tokio::time::timeout(self.inner.shutdown_timeout, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        let _ = self.heartbeat.await;
        let mut conn = self.inner.conn.clone();
        let identity = &self.inner.process.identity;
        let requeued = match fetch::requeue(&mut conn, identity, &self.inner.queues).await {
            Ok(n) => n,
            Err(err) => {
                // They stay in the working lists: the next worker to start recovers them.
                tracing::error!(target: "cacheback", error = %err, "Unable to requeue the refreshes cut short");
                return 0;
            }
        };
        if let Err(err) = self.inner.process.leave(&mut conn).await {
            tracing::warn!(target: "cacheback", error = %err, "Unable to remove the worker from Sidekiq's processes");
        }
        if requeued == 0 {
            tracing::info!(target: "cacheback", "Sidekiq worker stopped");
        } else {
            tracing::warn!(target: "cacheback", requeued, "Sidekiq worker stopped with refreshes cut short; they are back on their queues");
        }
        requeued
    }
}

impl Inner {
    /// The next job: without blocking from the queues in priority order,
    /// else blocking a while on the first.
    async fn next_job(&self, conn: &mut RedisConnection) -> Result<Option<Fetched>, QueueError> {
        let identity = &self.process.identity;
        if let Some(job) = fetch::take(conn, identity, &self.queues, 1).await?.pop() {
            return Ok(Some(job));
        }
        let block = if self.queues.len() == 1 { FETCH_TIMEOUT_SECS } else { FETCH_TIMEOUT_SEVERAL_SECS };
        fetch::wait(conn, identity, &self.queues[0], block).await
    }

    async fn fetch_loop(self: Arc<Self>, stopped: watch::Receiver<bool>, slot: InFlight) {
        let mut conn: Option<RedisConnection> = None;
        // After a failed fetch or connect: 100 ms, doubling up to 1 s, so a
        // fetch cut short by a failover (the master demoted, answering
        // `UNBLOCKED`, then `READONLY` until the sentinels switch) resumes
        // soon after the switch, and a Redis that stays down is asked once
        // a second.
        let mut retry_in = FETCH_RETRY_FIRST;
        while !*stopped.borrow() {
            let c = match &mut conn {
                Some(c) => c,
                // Without a deadline of its own: the response timeout (at least
                // FETCH_MIN_RESPONSE_TIMEOUT) counts from when the BLMOVE is sent,
                // so waiting for a reconnection never cuts a fetch short.
                None => match connect(&self.target, self.timeout.max(FETCH_MIN_RESPONSE_TIMEOUT)).await {
                    Ok(c) => conn.insert(c.without_deadline()),
                    Err(err) => {
                        tracing::error!(target: "cacheback", error = %err, "Sidekiq fetcher cannot connect; retrying");
                        tokio::time::sleep(retry_in).await;
                        retry_in = (retry_in * 2).min(FETCH_RETRY_MAX);
                        continue;
                    }
                },
            };
            let fetched = self.next_job(c).await;
            if fetched.is_ok() {
                retry_in = FETCH_RETRY_FIRST;
            }
            let job = match fetched {
                Ok(Some(job)) => job,
                Ok(None) => continue,
                Err(err) => {
                    tracing::error!(target: "cacheback", error = %err, "Sidekiq fetch failed; retrying");
                    tokio::time::sleep(retry_in).await;
                    retry_in = (retry_in * 2).min(FETCH_RETRY_MAX);
                    continue;
                }
            };
            let run_at = super::now() as u64;
            let work = Work { queue: job.queue.clone(), raw: job.raw.clone(), run_at };
            *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(work);
            match self.process(&job).await {
                Ok(outcome) => {
                    if let Err(err) = fetch::ack(c, &self.process.identity, std::slice::from_ref(&job)).await
                    {
                        tracing::error!(target: "cacheback", error = %err, "Unable to acknowledge a finished job");
                    }
                    sets::count(c, 1, usize::from(outcome != Outcome::Done)).await;
                }
                // Left in the working list: shutdown or recovery requeues it.
                Err(err) => {
                    tracing::error!(target: "cacheback", error = %err, job = %job.raw, "Unable to record a job's outcome")
                }
            }
            *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
    }

    /// Beats until stopped, and sweeps for dead processes under the lease.
    async fn heartbeat_loop(self: Arc<Self>, mut stopped: watch::Receiver<bool>, in_flight: Vec<InFlight>) {
        let mut conn = self.conn.clone();
        let mut last_sweep = tokio::time::Instant::now();
        while !*stopped.borrow() {
            let work: Vec<(usize, Work)> = in_flight
                .iter()
                .enumerate()
                .filter_map(|(tid, slot)| {
                    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().map(|w| (tid, w))
                })
                .collect();
            if let Err(err) = self.process.beat(&mut conn, &work).await {
                tracing::error!(target: "cacheback", error = %err, "Unable to write the worker's heartbeat");
            }
            if last_sweep.elapsed() >= self.process.sweep_interval() {
                last_sweep = tokio::time::Instant::now();
                let swept = match self.process.take_sweep_lease(&mut conn).await {
                    Ok(true) => process::recover(&mut conn, &self.process.identity).await.map(drop),
                    Ok(false) => Ok(()),
                    Err(err) => Err(err),
                };
                if let Err(err) = swept {
                    tracing::error!(target: "cacheback", error = %err, "Unable to recover the jobs of dead workers");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.process.beat_interval()) => {}
                _ = stopped.changed() => {}
            }
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

    /// Runs a job taken from `job.queue`, and records its outcome (in the
    /// sets and in the metrics).
    async fn process(&self, job: &Fetched) -> Result<Outcome, QueueError> {
        let outcome = self.run(job).await?;
        let result = match outcome {
            Outcome::Done => "processed",
            Outcome::Retried => "retried",
            Outcome::Dead => "dead",
            Outcome::Discarded => "discarded",
        };
        telemetry::worker_job(&job.queue, result);
        Ok(outcome)
    }

    async fn run(&self, job: &Fetched) -> Result<Outcome, QueueError> {
        let msg = match Message::parse(&job.raw, &job.queue) {
            Ok(msg) => msg,
            Err(err) => {
                tracing::error!(target: "cacheback", error = %err, job = %job.raw, "Entry is not a Sidekiq job; sent to the dead set");
                sets::bury_from(&mut self.conn.clone(), &job.raw, Some(&job.queue)).await?;
                return Ok(Outcome::Dead);
            }
        };
        telemetry::queue_latency(&job.queue, msg.latency());
        match self.perform(&msg).await {
            Ok(()) => Ok(Outcome::Done),
            Err((class, message)) => {
                tracing::error!(target: "cacheback", jid = %msg.jid, error_class = %class, "Refresh job failed: {message}");
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
