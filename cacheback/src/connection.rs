//! The one way cacheback opens Redis: a reconnecting connection with bounded
//! waits, shared by the Redis store and the Sidekiq queue and worker.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The default connect and response timeout of every Redis connection
/// (stores, queues, workers): 2 s.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects to `url`; `timeout` bounds connecting and every response, so a
/// request waits at most that long on an unreachable Redis before failing over.
/// On error, returns what failed (for the caller's message) and why.
pub(crate) async fn connect(
    url: &str,
    timeout: Duration,
) -> Result<ConnectionManager, (String, redis::RedisError)> {
    let client = redis::Client::open(url).map_err(|e| (format!("invalid Redis URL `{url}`"), e))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|e| (format!("cannot connect to Redis at `{url}`"), e))
}
