//! A connection to the master a Redis Sentinel group names, that follows it
//! through a failover.
//!
//! `redis` 1.8 (its `sentinel` feature) finds the master when a client is
//! made, and no more: a `ConnectionManager` on that client reconnects to the
//! same address after an I/O error, and keeps writing to it once it has been
//! demoted (`READONLY` is no reason to reconnect for it; redis-rs#1438). So
//! [`SentinelLink`] asks the sentinels again itself, and swaps in a manager
//! on the master they name:
//!
//! * when a request fails on the connection, or with `READONLY` (a demoted
//!   master), `UNBLOCKED` (a blocking pop cut short by the demotion) or
//!   `MASTERDOWN`; the request is then retried once, on the new manager;
//! * when a sentinel announces `+switch-master` for the group (a watcher
//!   subscribed to one of them), so that reads move over too, without
//!   waiting for a write to fail.

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::ConnectionManager;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{RedisError, RedisResult};

use super::{SentinelGroup, manager_config, timed_out};

/// How long the watcher waits before trying the next sentinel after one
/// could not be subscribed to, or dropped its subscription.
const WATCH_RETRY: Duration = Duration::from_millis(500);

/// The master of a Sentinel group, as last resolved; shared by the clones of
/// a [`RedisConnection`](super::RedisConnection).
pub(super) struct SentinelLink {
    master: String,
    /// How the master is logged in to (database, credentials).
    node: SentinelNodeConnectionInfo,
    sentinel: tokio::sync::Mutex<Sentinel>,
    timeout: Duration,
    current: RwLock<Current>,
}

struct Current {
    manager: ConnectionManager,
    /// `host:port` of the master the manager talks to.
    address: String,
    /// When the sentinels were last asked (successfully or not).
    asked: Instant,
}

impl SentinelLink {
    /// The manager on the master as last resolved.
    pub(super) fn manager(&self) -> ConnectionManager {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).manager.clone()
    }

    /// `host:port` of the master as last resolved.
    pub(super) fn address(&self) -> String {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).address.clone()
    }

    /// Asks the sentinels for the master, unless they were asked after
    /// `since` (by a request that failed at the same time), and swaps in a
    /// manager on it when it moved. Returns whether it moved.
    pub(super) async fn resolve(&self, since: Instant) -> RedisResult<bool> {
        let mut sentinel = self.sentinel.lock().await;
        if self.read_current().asked > since {
            return Ok(false);
        }
        // Bounded: a hung server the sentinels still name would hold the
        // lock (and every later ask) for good.
        let asked =
            tokio::time::timeout(self.timeout, sentinel.async_master_for(&self.master, Some(&self.node)))
                .await
                .unwrap_or_else(|_| Err(timed_out(self.timeout)));
        let (client, address) = {
            let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            current.asked = Instant::now();
            let client = asked?;
            let address = client.get_connection_info().addr().to_string();
            if address == current.address {
                return Ok(false);
            }
            (client, address)
        };
        let manager = new_manager(client, self.timeout).await?;
        let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        tracing::info!(target: "cacheback", master = %self.master, from = %current.address, to = %address, "Redis Sentinel: the master moved; following it");
        *current = Current { manager, address, asked: Instant::now() };
        Ok(true)
    }

    fn read_current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether `err` says the server is no longer (or not yet) the master, so
/// that the sentinels should be asked where it is now.
pub(super) fn is_demoted(err: &RedisError) -> bool {
    const CODES: [&str; 3] = ["READONLY", "UNBLOCKED", "MASTERDOWN"];
    // Inside a transaction (`EXECABORT`) or a script, the code is in the text.
    err.code().is_some_and(|code| CODES.contains(&code))
        || CODES.iter().any(|code| err.detail().is_some_and(|detail| detail.contains(code)))
}

/// Connects to the master of `group`, within `timeout`, and starts
/// watching for `+switch-master`.
pub(super) async fn connect(group: &SentinelGroup, timeout: Duration) -> RedisResult<Arc<SentinelLink>> {
    let urls: Vec<String> = group.sentinels.iter().map(|s| url_of(s)).collect();
    let mut sentinel = Sentinel::build(urls.clone())?;
    let (master, node) = (group.master.as_str(), group.node_info());
    let connecting = async {
        let client = sentinel.async_master_for(master, Some(&node)).await?;
        let address = client.get_connection_info().addr().to_string();
        Ok::<_, RedisError>((new_manager(client, timeout).await?, address))
    };
    let (manager, address) =
        tokio::time::timeout(timeout, connecting).await.unwrap_or_else(|_| Err(timed_out(timeout)))?;
    let link = Arc::new(SentinelLink {
        master: master.to_owned(),
        node,
        sentinel: tokio::sync::Mutex::new(sentinel),
        timeout,
        current: RwLock::new(Current { manager, address, asked: Instant::now() }),
    });
    tokio::spawn(watch(Arc::downgrade(&link), urls, master.to_owned(), timeout));
    Ok(link)
}

/// `redis://host:port` for a sentinel given as `host:port`.
fn url_of(sentinel: &str) -> String {
    if sentinel.contains("://") { sentinel.to_owned() } else { format!("redis://{sentinel}") }
}

async fn new_manager(client: redis::Client, timeout: Duration) -> RedisResult<ConnectionManager> {
    tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, manager_config(timeout)))
        .await
        .unwrap_or_else(|_| Err(timed_out(timeout)))
}

/// Subscribes to `+switch-master` on one sentinel after another, and has the
/// link ask for the master on each switch of its group; ends once the link
/// is dropped (checked at least every second).
async fn watch(link: Weak<SentinelLink>, sentinels: Vec<String>, master: String, timeout: Duration) {
    for url in sentinels.iter().cycle() {
        if link.strong_count() == 0 {
            return;
        }
        let subscribed = async {
            let mut pubsub = redis::Client::open(url.as_str())?.get_async_pubsub().await?;
            pubsub.subscribe("+switch-master").await?;
            Ok::<_, RedisError>(pubsub)
        };
        let mut pubsub = match tokio::time::timeout(timeout, subscribed).await {
            Ok(Ok(pubsub)) => pubsub,
            _ => {
                tokio::time::sleep(WATCH_RETRY).await;
                continue;
            }
        };
        let mut messages = pubsub.on_message();
        loop {
            let message = match tokio::time::timeout(Duration::from_secs(1), messages.next()).await {
                Err(_) if link.strong_count() == 0 => return,
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(message)) => message,
            };
            // `<master name> <old ip> <old port> <new ip> <new port>`
            let payload: String = message.get_payload().unwrap_or_default();
            if payload.split(' ').next() != Some(master.as_str()) {
                continue;
            }
            let Some(link) = link.upgrade() else { return };
            if let Err(err) = link.resolve(Instant::now()).await {
                tracing::warn!(target: "cacheback", error = %err, master = %master, "Redis Sentinel announced a new master that cannot be reached yet");
            }
        }
        tokio::time::sleep(WATCH_RETRY).await;
    }
}
