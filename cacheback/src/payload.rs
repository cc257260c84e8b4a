//! What travels from a reader to a worker: [`RefreshPayload`], and what
//! running it did, [`RefreshOutcome`]. Below both the engine and the queues.

use serde::{Deserialize, Serialize};

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
///     queued_at: None,
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
    /// When the refresh was queued (absent in payloads of versions before
    /// 0.2): a worker skips it if the item was fetched since and is fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<crate::clock::Timestamp>,
}

/// What running a refresh payload did.
///
/// ```
/// use cacheback::RefreshOutcome;
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
