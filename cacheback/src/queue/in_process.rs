use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};

use super::{Performer, RefreshPayload, RefreshQueue};
use crate::error::QueueError;
use crate::task::TaskOptions;
use crate::telemetry::{self, IN_PROCESS_QUEUE};

/// The default number of refreshes an [`InProcessQueue`] runs at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Runs refreshes as tokio tasks in this process: the embedded default, with
/// nothing to deploy.
///
/// Refreshes queued here are lost if the process exits; use a Sidekiq queue
/// when they must survive restarts or run on other machines. Queue names in
/// [`TaskOptions`] are ignored: one pool serves every job.
///
/// A *manual* queue holds refreshes until [`run_pending`](Self::run_pending)
/// drains it, like a worker in burst mode; tests use it to count what a read
/// queued.
///
/// ```
/// use cacheback::queue::InProcessQueue;
/// let queue = InProcessQueue::builder().concurrency(8).build();
/// assert_eq!(queue.enqueued(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct InProcessQueue {
    inner: Arc<Inner>,
}

struct Inner {
    performer: OnceLock<Weak<dyn Performer>>,
    manual: bool,
    /// A manual queue's refreshes, with when they were queued.
    pending: Mutex<VecDeque<(Instant, RefreshPayload)>>,
    permits: Arc<Semaphore>,
    running: AtomicUsize,
    idle: Notify,
    enqueued: AtomicU64,
    closed: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessQueue")
            .field("manual", &self.manual)
            .field("running", &self.running)
            .field("enqueued", &self.enqueued)
            .finish_non_exhaustive()
    }
}

/// Builds an [`InProcessQueue`].
///
/// ```
/// let queue = cacheback::queue::InProcessQueue::builder().manual().build();
/// assert_eq!(queue.pending(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct InProcessQueueBuilder {
    concurrency: usize,
    manual: bool,
}

impl InProcessQueueBuilder {
    /// How many refreshes run at once (default [`DEFAULT_CONCURRENCY`], 4).
    ///
    /// # Panics
    ///
    /// If `concurrency` is 0: a queue that runs nothing is a mistake, not a
    /// setting (`in_process.concurrency: 0` in the settings is an error that
    /// names the key).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        assert!(concurrency > 0, "an in-process queue's concurrency must be at least 1");
        self.concurrency = concurrency;
        self
    }

    /// Hold refreshes until [`InProcessQueue::run_pending`] is called.
    #[must_use]
    pub fn manual(mut self) -> Self {
        self.manual = true;
        self
    }

    /// Builds the queue.
    pub fn build(self) -> InProcessQueue {
        InProcessQueue {
            inner: Arc::new(Inner {
                performer: OnceLock::new(),
                manual: self.manual,
                pending: Mutex::new(VecDeque::new()),
                permits: Arc::new(Semaphore::new(self.concurrency)),
                running: AtomicUsize::new(0),
                idle: Notify::new(),
                enqueued: AtomicU64::new(0),
                closed: AtomicBool::new(false),
            }),
        }
    }
}

impl Default for InProcessQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessQueue {
    /// A queue running [`DEFAULT_CONCURRENCY`] refreshes at once.
    ///
    /// ```
    /// let queue = cacheback::queue::InProcessQueue::new();
    /// # let _ = queue;
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a queue.
    ///
    /// ```
    /// let queue = cacheback::queue::InProcessQueue::builder().concurrency(2).build();
    /// # let _ = queue;
    /// ```
    pub fn builder() -> InProcessQueueBuilder {
        InProcessQueueBuilder { concurrency: DEFAULT_CONCURRENCY, manual: false }
    }

    /// How many refreshes were queued since the queue was built.
    ///
    /// ```
    /// assert_eq!(cacheback::queue::InProcessQueue::new().enqueued(), 0);
    /// ```
    pub fn enqueued(&self) -> u64 {
        self.inner.enqueued.load(Ordering::SeqCst)
    }

    /// How many refreshes wait in a manual queue.
    ///
    /// ```
    /// assert_eq!(cacheback::queue::InProcessQueue::new().pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        self.pending_queue().len()
    }

    /// The refreshes waiting in a manual queue, oldest first.
    ///
    /// ```
    /// assert!(cacheback::queue::InProcessQueue::new().pending_payloads().is_empty());
    /// ```
    pub fn pending_payloads(&self) -> Vec<RefreshPayload> {
        self.pending_queue().iter().map(|(_, payload)| payload.clone()).collect()
    }

    /// Stops accepting refreshes: [`enqueue`](RefreshQueue::enqueue) fails from
    /// now on, so reads fail over to synchronous refreshes.
    ///
    /// ```
    /// let queue = cacheback::queue::InProcessQueue::new();
    /// queue.close();
    /// assert!(queue.is_closed());
    /// ```
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// ```
    /// assert!(!cacheback::queue::InProcessQueue::new().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Runs every refresh waiting in a manual queue, one after the other, and
    /// returns how many ran (a worker's burst mode).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let queue = cacheback::queue::InProcessQueue::builder().manual().build();
    /// assert_eq!(queue.run_pending().await, 0);
    /// # });
    /// ```
    pub async fn run_pending(&self) -> usize {
        let mut ran = 0;
        loop {
            let next = self.pending_queue().pop_front();
            let Some((queued, payload)) = next else { return ran };
            self.inner.run(queued, payload).await;
            ran += 1;
        }
    }

    /// Waits until no refresh is running or waiting to run in an automatic queue.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// cacheback::queue::InProcessQueue::new().wait_idle().await;
    /// # });
    /// ```
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    fn pending_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, RefreshPayload)>> {
        self.inner.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    async fn run(&self, queued: Instant, payload: RefreshPayload) {
        telemetry::queue_latency(IN_PROCESS_QUEUE, queued.elapsed().as_secs_f64());
        let Some(performer) = self.performer.get().and_then(Weak::upgrade) else {
            tracing::error!(
                target: "cacheback",
                job = %payload.job,
                "in-process queue is not attached to a live cacheback handle; refresh dropped"
            );
            return;
        };
        // `perform` logs its own failures; an in-process refresh has no retry.
        let result = if performer.perform(&payload).await.is_ok() { "processed" } else { "failed" };
        telemetry::worker_job(IN_PROCESS_QUEUE, result);
    }
}

/// Counts a spawned refresh as running until it ends, even by panic.
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[async_trait]
impl RefreshQueue for InProcessQueue {
    async fn enqueue(&self, payload: RefreshPayload, _options: &TaskOptions) -> Result<(), QueueError> {
        if self.is_closed() {
            return Err(QueueError::new("the in-process queue is closed"));
        }
        if self.inner.manual {
            self.pending_queue().push_back((Instant::now(), payload));
            self.inner.enqueued.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| QueueError::with_source("no tokio runtime to run the refresh on", e))?;
        self.inner.enqueued.fetch_add(1, Ordering::SeqCst);
        self.inner.running.fetch_add(1, Ordering::SeqCst);
        let running = Running(Arc::clone(&self.inner));
        let queued = Instant::now();
        runtime.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = Arc::clone(&running.0.permits).acquire_owned().await;
            running.0.run(queued, payload).await;
        });
        Ok(())
    }

    fn attach(&self, performer: Weak<dyn Performer>) {
        let _ = self.inner.performer.set(performer);
    }
}
