//! The refresh queue seam: how a refresh gets from a reader to a worker.
//!
//! The engine hands a [`RefreshPayload`] to a [`RefreshQueue`]; whatever runs
//! the queue calls [`Cacheback::perform`](crate::Cacheback::perform) with it.
//! [`InProcessQueue`] (tokio tasks in this process) is the embedded default; a
//! Sidekiq queue plugs in through the same trait.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::engine::WeakCacheback;
use crate::error::QueueError;
use crate::job::TaskOptions;

mod in_process;
pub mod sidekiq;

pub use self::in_process::{DEFAULT_CONCURRENCY, InProcessQueue, InProcessQueueBuilder};

/// Everything a worker needs to run one refresh: the registered job name, the
/// job's [`init_state`](crate::Job::init_state), the prepared call arguments,
/// and the cache key they were computed into.
///
/// ```
/// use cacheback::queue::RefreshPayload;
/// let payload = RefreshPayload {
///     job: "app::UserTweets".into(),
///     state: serde_json::Value::Null,
///     args: serde_json::json!(["bob"]),
///     key: "app::UserTweets:0123".into(),
/// };
/// let json = serde_json::to_value(&payload).unwrap();
/// assert_eq!(json["job"], "app::UserTweets");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshPayload {
    /// The job's [name](crate::Job::name).
    pub job: String,
    /// The job's [`init_state`](crate::Job::init_state).
    #[serde(default)]
    pub state: serde_json::Value,
    /// The prepared call arguments.
    pub args: serde_json::Value,
    /// The cache key of the call.
    pub key: String,
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
    /// handle the queue serves; a queue that runs refreshes in this process
    /// keeps it. The default ignores it.
    fn attach(&self, _cache: WeakCacheback) {}

    /// Checks that the queue's backend answers.
    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}
