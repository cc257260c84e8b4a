//! The refresh queue seam: how a refresh gets from a reader to a worker.
//!
//! The engine hands a [`RefreshPayload`] to a [`RefreshQueue`]; whatever runs
//! the queue hands it to a [`Performer`] (the engine:
//! [`Cacheback::perform`](crate::Cacheback::perform)). Queues know the engine
//! only through that trait.
//! [`InProcessQueue`] (tokio tasks in this process) is the embedded default; a
//! Sidekiq queue plugs in through the same trait.

use std::fmt::Debug;
use std::sync::{Arc, Weak};

use async_trait::async_trait;

use crate::error::{Error, QueueError};
pub use crate::payload::RefreshOutcome;
pub use crate::payload::RefreshPayload;
use crate::task::TaskOptions;

mod in_process;
pub mod sidekiq;

pub use self::in_process::{DEFAULT_CONCURRENCY, InProcessQueue, InProcessQueueBuilder};

/// Runs refreshes: what a queue hands its payloads to. The engine
/// ([`Cacheback`](crate::Cacheback)) is one; a queue asks for nothing more.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use cacheback::queue::{Performer, RefreshPayload};
/// use cacheback::Error;
/// use cacheback::queue::RefreshOutcome;
///
/// /// Counts what it is given and refreshes nothing.
/// struct Counting(std::sync::atomic::AtomicUsize);
///
/// #[async_trait]
/// impl Performer for Counting {
///     async fn perform(self: Arc<Self>, _: &RefreshPayload) -> Result<RefreshOutcome, Error> {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
///         Ok(RefreshOutcome::SkippedFresh)
///     }
/// }
/// ```
#[async_trait]
pub trait Performer: Send + Sync + 'static {
    /// Runs one refresh (for the engine: [`Cacheback::perform`](crate::Cacheback::perform)).
    async fn perform(self: Arc<Self>, payload: &RefreshPayload) -> Result<RefreshOutcome, Error>;
}

/// A queue of refreshes.
///
/// ```
/// use async_trait::async_trait;
/// use cacheback::queue::{RefreshPayload, RefreshQueue};
/// use cacheback::{QueueError, TaskOptions};
///
/// /// A queue that refuses everything: every refresh fails over to a
/// /// synchronous one in the request.
/// #[derive(Debug)]
/// struct Refusing;
///
/// #[async_trait]
/// impl RefreshQueue for Refusing {
///     async fn enqueue(&self, _: RefreshPayload, _: &TaskOptions) -> Result<(), QueueError> {
///         Err(QueueError::new("refused"))
///     }
/// }
/// ```
#[async_trait]
pub trait RefreshQueue: Send + Sync + Debug + 'static {
    /// Queues one refresh.
    async fn enqueue(&self, payload: RefreshPayload, options: &TaskOptions) -> Result<(), QueueError>;

    /// Called once by [`Builder::build`](crate::Builder::build) with the
    /// engine the queue serves, as a weak reference (the engine holds its
    /// queue): a queue that runs refreshes in this process keeps it. The
    /// default ignores it.
    fn attach(&self, _performer: Weak<dyn Performer>) {}

    /// Checks that the queue's backend answers.
    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}
