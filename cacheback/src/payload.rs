//! What travels from a reader to a worker: [`RefreshPayload`], and what
//! running it did, [`RefreshOutcome`]. Below both the engine and the queues.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything a worker needs to run one refresh: the registered job name, the
/// job's [`init_state`](crate::Job::init_state), the prepared call arguments,
/// and the cache key they were computed into.
///
/// ```
/// use cacheback::queue::RefreshPayload;
/// let payload = RefreshPayload::new("app::UserTweets", serde_json::json!(["bob"]), "app::UserTweets:0123");
/// let json = serde_json::to_value(&payload).unwrap();
/// assert_eq!(json["job"], "app::UserTweets");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// When the refresh was queued (absent in payloads of versions before
    /// 0.2): a worker skips it if the item was fetched since and is fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<crate::clock::Timestamp>,
    /// The trace context of the request that queued the refresh, as W3C
    /// Trace Context headers (`traceparent`, `tracestate`): with feature
    /// `opentelemetry`, the worker's `cacheback.refresh` span is its child.
    /// Absent when no trace is propagated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<BTreeMap<String, String>>,
}

impl RefreshPayload {
    /// A payload for the job named `job`, with `null` state, queued at no
    /// particular time, without trace context.
    ///
    /// ```
    /// let payload = cacheback::queue::RefreshPayload::new("app::Job", serde_json::json!([1]), "app::Job:1");
    /// assert_eq!((payload.state.is_null(), payload.queued_at, payload.trace), (true, None, None));
    /// ```
    pub fn new(job: impl Into<String>, args: serde_json::Value, key: impl Into<String>) -> Self {
        Self {
            job: job.into(),
            state: serde_json::Value::Null,
            args,
            key: key.into(),
            queued_at: None,
            trace: None,
        }
    }
}

/// What running a refresh payload did.
///
/// ```
/// use cacheback::queue::RefreshOutcome;
/// assert_ne!(RefreshOutcome::Refreshed, RefreshOutcome::SkippedFresh);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The job fetched and stored a fresh item.
    Refreshed,
    /// The item was fetched after the refresh was queued and is fresh
    /// (another refresh or a `set` got there first), so nothing was fetched.
    SkippedFresh,
}
