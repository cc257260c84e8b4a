//! The one way cacheback opens Redis: a reconnecting connection whose every
//! request (and the connecting itself) returns within its timeout, shared by
//! the Redis store and the Sidekiq queue and worker; to one server, to a
//! Redis Cluster (`redis`'s `cluster-async` client, which routes each command
//! by its keys' slots, follows `MOVED`/`ASK` and refreshes its slot map), or
//! to the master of a Sentinel group, followed through failovers
//! ([`sentinel`]).
//!
//! # Why this is hand-written
//!
//! `redis`'s [`ConnectionManager`] has a connection and a response timeout,
//! but neither bounds a request as a whole:
//!
//! * the response timeout applies per attempt, from the moment the command is
//!   sent, not to the wait for the connection the command needs;
//! * a request that finds the connection being re-established awaits the
//!   whole reconnect cycle (every attempt, each up to the connection timeout,
//!   and the backoff sleeps between them), bounded by none of them;
//! * when a reconnect cycle fails, the manager keeps its error and hands it to
//!   the next request, which only then starts a new cycle: the first request
//!   after Redis comes back fails with the outage's error.
//!
//! [`RedisConnection`] runs each request under one deadline covering all of
//! that, and retries a request that failed on a broken connection once (the
//! manager reconnects in between, and the retry awaits that reconnection), so
//! the first request after an outage goes through.

mod group;
mod sentinel;

pub use self::group::SentinelGroup;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// The default timeout of every Redis connection (stores, queues, workers),
/// for connecting and for each request: 2 s.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A [`ConnectionManager`] whose requests return within a deadline, retrying
/// once on a broken connection. Cheap to clone: clones share the connection.
///
/// Every request (`AsyncCommands` methods, pipelines, `Script::invoke_async`,
/// `redis::cmd(..).query_async`) runs under one deadline of `timeout`, covering
/// the wait for a (re)connection, both attempts and the responses. Past it,
/// the request fails with an I/O error (`TimedOut`) "timed out after N ms".
/// A Lua script call is one request, except the first after Redis lost its
/// script cache (`NOSCRIPT`, then `SCRIPT LOAD` and the call again: three,
/// each bounded).
///
/// Within the deadline, a request whose first attempt fails on the
/// connection (dropped, reset, refused, broken pipe, or the error a failed
/// reconnect left behind) is sent once more: on these errors the manager
/// starts a new connection and swaps it in before the error comes back
/// (`reconnect_if_dropped!`/`reconnect_if_io_error!` in redis 1.8's
/// `connection_manager.rs`), and the retry awaits it. (A response timeout
/// is an I/O error too, but the manager keeps its connection after one; as
/// the response timeout is the deadline, no time is left for a retry then.) A command that reached Redis before its connection broke may
/// thus run twice; for the one non-idempotent command cacheback sends, a
/// Sidekiq push (`LPUSH`), that is a duplicate refresh job, which the refresh
/// absorbs (it skips an item that is fresh by then).
#[derive(Clone)]
pub(crate) struct RedisConnection {
    link: Link,
    /// The deadline of each request; `None` only for blocking commands (see
    /// [`without_deadline`](Self::without_deadline)).
    timeout: Option<Duration>,
}

/// What a [`RedisConnection`] talks to.
#[derive(Clone)]
enum Link {
    /// One server, through a reconnecting manager.
    Single(ConnectionManager),
    /// A Redis Cluster: the crate's client reconnects, follows redirections
    /// and retries by itself, so a request is sent once, under the deadline.
    Cluster(ClusterConnection),
    /// The master of a Sentinel group: a manager on it, replaced when the
    /// sentinels name another (a request failing as on a demoted master is
    /// retried once, on the master they name then).
    Sentinel(Arc<sentinel::SentinelLink>),
}

/// Where a connection goes: what the stores' and queues' builders were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server's URL.
    Url(String),
    /// A Redis Cluster's seed nodes' URLs.
    Cluster(Vec<String>),
    /// The master of a Sentinel group.
    Sentinel(SentinelGroup),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(url) => f.write_str(url),
            Self::Cluster(nodes) => write!(f, "cluster {}", nodes.join(",")),
            Self::Sentinel(group) => write!(f, "sentinel {group}"),
        }
    }
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// The same connection without the overall deadline, still retrying once:
    /// the wait for a reconnection is bounded by the connection timeout, and
    /// each attempt by the response timeout counted from when its command is
    /// sent, so a slow reconnection never shortens the time a command has.
    /// For blocking commands (the worker's `BRPOP`): a deadline cutting a
    /// `BRPOP` that Redis already answered would lose the popped job.
    pub(crate) fn without_deadline(mut self) -> Self {
        self.timeout = None;
        self
    }
}

impl RedisConnection {
    /// Whether this is a connection to a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.link, Link::Cluster(_))
    }

    /// The addresses (`host`, `port`) of the cluster's primaries, each
    /// once; `None` for a connection to one server. Read from `CLUSTER
    /// NODES` (a primary flagged `fail` is left out: its replica is taking
    /// its slots).
    pub(crate) async fn primaries(&mut self) -> Option<RedisResult<Vec<(String, u16)>>> {
        if !self.is_cluster() {
            return None;
        }
        let nodes = self.route(redis::cmd("CLUSTER").arg("NODES"), SingleNodeRoutingInfo::Random).await;
        Some(nodes.and_then(|nodes| {
            let text: String = redis::from_redis_value(nodes)?;
            Ok(text
                .lines()
                .filter_map(|line| {
                    let mut fields = line.split(' ');
                    let address = fields.nth(1)?;
                    let flags = fields.next()?;
                    let primary = flags.split(',').any(|f| f == "master");
                    let failed = flags.split(',').any(|f| f == "fail" || f == "noaddr");
                    let (host, port) = address.split('@').next()?.rsplit_once(':')?;
                    (primary && !failed).then(|| Some((host.to_owned(), port.parse().ok()?)))?
                })
                .collect())
        }))
    }

    /// `host:port` of the master a Sentinel group named last; `None` for
    /// another kind of connection.
    pub(crate) fn sentinel_master(&self) -> Option<String> {
        match &self.link {
            Link::Sentinel(link) => Some(link.address()),
            _ => None,
        }
    }

    /// Sends `cmd` to one node of the cluster (`SCAN`, which the crate does
    /// not fan out, to each primary by address), under the deadline. On a
    /// connection to one server, sends it there.
    pub(crate) async fn route(&mut self, cmd: &Cmd, node: SingleNodeRoutingInfo) -> RedisResult<Value> {
        match &mut self.link {
            Link::Cluster(cluster) => {
                bounded(self.timeout, cluster.route_command(cmd.clone(), RoutingInfo::SingleNode(node))).await
            }
            Link::Single(_) | Link::Sentinel(_) => self.req_packed_command(cmd).await,
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let manager = match &mut self.link {
            Link::Single(manager) => manager,
            Link::Cluster(cluster) => {
                return Box::pin(bounded(self.timeout, cluster.req_packed_command(cmd)));
            }
            Link::Sentinel(link) => {
                let link = Arc::clone(link);
                return Box::pin(bounded(self.timeout, async move {
                    let started = Instant::now();
                    match link.manager().send_packed_command(cmd).await {
                        Err(err) if is_connection_error(&err) || sentinel::is_demoted(&err) => {
                            following(&link, &err, started).await;
                            link.manager().send_packed_command(cmd).await
                        }
                        done => done,
                    }
                }));
            }
        };
        Box::pin(bounded(self.timeout, async move {
            match manager.send_packed_command(cmd).await {
                Err(err) if is_connection_error(&err) => {
                    retrying(&err);
                    manager.send_packed_command(cmd).await
                }
                done => done,
            }
        }))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let manager = match &mut self.link {
            Link::Single(manager) => manager,
            Link::Cluster(cluster) => {
                return Box::pin(bounded(self.timeout, cluster.req_packed_commands(pipeline, offset, count)));
            }
            Link::Sentinel(link) => {
                let link = Arc::clone(link);
                return Box::pin(bounded(self.timeout, async move {
                    let started = Instant::now();
                    match link.manager().send_packed_commands(pipeline, offset, count).await {
                        Err(err) if is_connection_error(&err) || sentinel::is_demoted(&err) => {
                            following(&link, &err, started).await;
                            link.manager().send_packed_commands(pipeline, offset, count).await
                        }
                        done => done,
                    }
                }));
            }
        };
        Box::pin(bounded(self.timeout, async move {
            match manager.send_packed_commands(pipeline, offset, count).await {
                Err(err) if is_connection_error(&err) => {
                    retrying(&err);
                    manager.send_packed_commands(pipeline, offset, count).await
                }
                done => done,
            }
        }))
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Single(manager) => manager.get_db(),
            Link::Sentinel(link) => link.manager().get_db(),
            Link::Cluster(_) => 0,
        }
    }
}

/// Runs `request` under `timeout`, if any.
async fn bounded<T>(
    timeout: Option<Duration>,
    request: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    match timeout {
        Some(timeout) => {
            tokio::time::timeout(timeout, request).await.unwrap_or_else(|_| Err(timed_out(timeout)))
        }
        None => request.await,
    }
}

fn retrying(err: &RedisError) {
    tracing::debug!(target: "cacheback", error = %err, "Redis connection broken; retrying once on a new one");
}

/// A request to a Sentinel group's master failed with `err`: asks the
/// sentinels where the master is (unless a request failing since `started`
/// just did), before the request is retried on the master they name.
async fn following(link: &sentinel::SentinelLink, err: &RedisError, started: Instant) {
    tracing::debug!(target: "cacheback", error = %err, "Redis request to a Sentinel group's master failed; asking the sentinels, then retrying once");
    if let Err(err) = link.resolve(started).await {
        tracing::debug!(target: "cacheback", error = %err, "The sentinels named no reachable master");
    }
}

/// Whether `err` means the connection is broken (and the manager is
/// replacing it), so that the request may go through on the next one.
fn is_connection_error(err: &RedisError) -> bool {
    err.is_connection_dropped() || err.is_io_error() || err.is_unrecoverable_error()
}

/// The error of a request that missed its deadline: an I/O error, so it reads
/// as Redis being unreachable.
fn timed_out(timeout: Duration) -> RedisError {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("timed out after {} ms", timeout.as_millis()))
        .into()
}

/// Connects to `target`, within `timeout` overall; every request of the
/// connection then returns within `timeout` too (see [`RedisConnection`]).
/// On error, returns what failed (for the caller's message) and why.
pub(crate) async fn connect(
    target: &Target,
    timeout: Duration,
) -> Result<RedisConnection, (String, RedisError)> {
    match target {
        Target::Url(url) => connect_url(url, timeout).await,
        Target::Cluster(nodes) => connect_cluster(nodes, timeout).await,
        Target::Sentinel(group) => {
            let link = sentinel::connect(group, timeout)
                .await
                .map_err(|e| (format!("cannot connect to the master of the sentinels `{group}`"), e))?;
            Ok(RedisConnection { link: Link::Sentinel(link), timeout: Some(timeout) })
        }
    }
}

/// The manager settings of every connection to one server.
///
/// Each connection attempt and each response is bounded by `timeout` too,
/// so nothing the deadline gave up on lingers longer than that.
///
/// No reconnect retries in the manager: a reconnect is one attempt. When it
/// fails, its (I/O) error makes the next request start a new one, which
/// that request's retry awaits. So while Redis is down a request fails over
/// as soon as its connection is refused, rather than waiting out attempts
/// and backoff sleeps (or, with endless retries, its whole timeout on a
/// reconnect that cannot succeed); and the first request after Redis
/// returns connects, instead of getting the outage's error back.
fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(0)
}

async fn connect_url(url: &str, timeout: Duration) -> Result<RedisConnection, (String, RedisError)> {
    let client = redis::Client::open(url).map_err(|e| (format!("invalid Redis URL `{url}`"), e))?;
    let manager =
        tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, manager_config(timeout)))
            .await
            .unwrap_or_else(|_| Err(timed_out(timeout)))
            .map_err(|e| (format!("cannot connect to Redis at `{url}`"), e))?;
    Ok(RedisConnection { link: Link::Single(manager), timeout: Some(timeout) })
}

/// Connects to the Redis Cluster of the seed `nodes` (any of its nodes'
/// URLs; the client discovers the rest), within `timeout` overall; each
/// request then returns within `timeout` too. On error, as [`connect`].
async fn connect_cluster(
    nodes: &[String],
    timeout: Duration,
) -> Result<RedisConnection, (String, RedisError)> {
    let what = || format!("cannot connect to the Redis Cluster of `{}`", nodes.join(","));
    let client = redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .build()
        .map_err(|e| (what(), e))?;
    let cluster = tokio::time::timeout(timeout, client.get_async_connection())
        .await
        .unwrap_or_else(|_| Err(timed_out(timeout)))
        .map_err(|e| (what(), e))?;
    Ok(RedisConnection { link: Link::Cluster(cluster), timeout: Some(timeout) })
}
