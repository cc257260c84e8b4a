//! A [`LocalCache`](crate::LocalCache) kept coherent with a
//! [`RedisStore`](crate::store::RedisStore) by Redis's server-assisted
//! client-side caching: one RESP3 connection per server
//! that takes writes (the one server, the master a Sentinel group names, or
//! each primary of a Cluster) in `CLIENT TRACKING ON BCAST PREFIX
//! <prefix>item:` mode, whose invalidation pushes evict the copies.
//!
//! # Why not `redis`'s `cache-aio`
//!
//! The crate's client-side cache (feature `cache-aio`) is marked
//! experimental, caches the replies of plain commands on its own connection
//! (not the Lua scripts' replies, nor decoded items, which are what the local
//! copy holds), and would keep a second copy beside ours. What the copy needs
//! is only the invalidations. `BCAST` rather than the default mode: the
//! server keeps no per-key state of what each process read, and the
//! invalidations of a key reach every process whatever connection read it.
//! `NOLOOP` is not asked for: it spares the connection that *writes* its own
//! invalidations, and the tracking connection writes nothing; a write of
//! this process thus evicts its own copy too, which the next read copies
//! again.
//!
//! When a tracking connection drops, fails a ping, or the servers that take
//! writes change (a failover), the copy is emptied and not served until
//! every connection tracks again.

use std::time::Duration;

use redis::{
    AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisResult, Value,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::connection::{RedisConnection, Target};

/// How often the tracking connections are pinged and the servers that take
/// writes looked up again (a failover moves them).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The wait between two attempts to track again after a loss.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// The name of the tracking connections in `CLIENT LIST`.
pub(crate) const CLIENT_NAME: &str = "cacheback-tracking";

/// Where a Redis store's writes are: what a tracker connects to.
pub(crate) struct Source {
    /// The store's connection: where the servers that take writes are.
    pub(crate) conn: RedisConnection,
    pub(crate) target: Target,
    /// `<prefix>item:`: the keys of the store's items.
    pub(crate) item_prefix: String,
    pub(crate) timeout: Duration,
}

/// What a tracker tells the copy it keeps coherent.
pub(crate) enum Event<'a> {
    /// Tracking is up: copies may be kept and served (none from before).
    Tracking,
    /// Tracking was lost: no copy may be served.
    Lost,
    /// The item under this key (the store's key, without the prefix) was written.
    Written(&'a str),
    /// Anything may have been written (`FLUSHDB`).
    Flushed,
    /// The tracker checks its connections (once a second): whether the copy
    /// is still there to keep coherent.
    Checking,
}

/// Where a tracker's events go; `false` once the copy is gone (the tracker
/// then stops).
pub(crate) type Sink = Box<dyn Fn(Event<'_>) -> bool + Send + Sync>;

/// Opens the tracking connections of `source`, then tracks in the
/// background, telling `sink`, until it returns `false`. Returns once every
/// connection tracks (after telling `sink` [`Event::Tracking`]), or why it
/// cannot.
pub(crate) async fn start(source: Source, sink: Sink) -> RedisResult<()> {
    let mut tracker = Tracker {
        conn: source.conn,
        target: source.target,
        item_prefix: source.item_prefix,
        sink,
        timeout: source.timeout,
    };
    let session = tracker.open().await?;
    (tracker.sink)(Event::Tracking);
    tokio::spawn(tracker.run(session));
    Ok(())
}

struct Tracker {
    conn: RedisConnection,
    target: Target,
    /// What the tracking connections track, and what is stripped off a key
    /// to find its copy.
    item_prefix: String,
    sink: Sink,
    timeout: Duration,
}

/// The tracking connections of the servers that take writes.
struct Session {
    servers: Vec<String>,
    connections: Vec<redis::aio::MultiplexedConnection>,
    pushes: UnboundedReceiver<PushInfo>,
}

/// Why a session ended.
enum Ended {
    /// The copy is gone: nothing is left to keep coherent.
    Dropped,
    /// Tracking was lost; the copy must not be served until it is back.
    Lost(String),
}

impl Tracker {
    /// Serves sessions, opening a new one after each loss, until the local
    /// copy is dropped.
    async fn run(mut self, mut session: Session) {
        loop {
            let Ended::Lost(why) = self.serve(&mut session).await else { return };
            if !(self.sink)(Event::Lost) {
                return;
            }
            tracing::warn!(target: "cacheback", reason = %why, "Local copy not served: Redis cannot tell of writes until tracking is back");
            session = loop {
                tokio::time::sleep(RETRY_EVERY).await;
                if !(self.sink)(Event::Checking) {
                    return;
                }
                match self.open().await {
                    Ok(session) => break session,
                    Err(err) => tracing::debug!(target: "cacheback", error = %err, "Tracking not back yet"),
                }
            };
            if !(self.sink)(Event::Tracking) {
                return;
            }
            tracing::info!(target: "cacheback", "Local copy served again: Redis tells of writes");
        }
    }

    /// Evicts what the pushes name, until the session is lost or the copy dropped.
    async fn serve(&mut self, session: &mut Session) -> Ended {
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.tick().await;
        loop {
            tokio::select! {
                push = session.pushes.recv() => {
                    let Some(push) = push else { return Ended::Lost("the tracking connections closed".into()) };
                    match push.kind {
                        PushKind::Invalidate if !self.invalidate(&push.data) => return Ended::Dropped,
                        PushKind::Disconnection => return Ended::Lost("a tracking connection dropped".into()),
                        _ => {}
                    }
                }
                _ = check.tick() => {
                    if !(self.sink)(Event::Checking) {
                        return Ended::Dropped;
                    }
                    if let Err(why) = self.check(session).await {
                        return Ended::Lost(why);
                    }
                }
            }
        }
    }

    /// Whether every tracking connection answers, and still reaches the
    /// servers that take writes.
    async fn check(&mut self, session: &mut Session) -> Result<(), String> {
        for connection in &mut session.connections {
            let pong =
                tokio::time::timeout(self.timeout, redis::cmd("PING").query_async::<()>(connection)).await;
            match pong {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(format!("a tracking connection failed: {err}")),
                Err(_) => return Err("a tracking connection does not answer".to_owned()),
            }
        }
        match self.servers().await {
            Ok(servers) if servers == session.servers => Ok(()),
            Ok(servers) => Err(format!("the servers that take writes are now {}", servers.join(","))),
            Err(err) => Err(format!("cannot tell which servers take writes: {err}")),
        }
    }

    /// Tells the sink of the keys an invalidation push names, or of a
    /// flush for a push without keys (`FLUSHDB`, `FLUSHALL`); `false` once
    /// the copy is gone.
    fn invalidate(&self, data: &[Value]) -> bool {
        for value in data {
            let Value::Array(keys) = value else {
                return (self.sink)(Event::Flushed);
            };
            for key in keys {
                let Value::BulkString(key) = key else { continue };
                let Some(key) = std::str::from_utf8(key).ok().and_then(|k| k.strip_prefix(&self.item_prefix))
                else {
                    continue;
                };
                if !(self.sink)(Event::Written(key)) {
                    return false;
                }
            }
        }
        true
    }

    /// Connects a tracking connection to each server that takes writes.
    async fn open(&mut self) -> RedisResult<Session> {
        let servers = self.servers().await?;
        let (pushes, received) = unbounded_channel();
        let mut connections = Vec::with_capacity(servers.len());
        for server in &servers {
            connections.push(self.track(server, pushes.clone()).await?);
        }
        Ok(Session { servers, connections, pushes: received })
    }

    /// The URLs of the servers that take writes now.
    async fn servers(&mut self) -> RedisResult<Vec<String>> {
        Ok(match &self.target {
            Target::Url(url) => vec![url.clone()],
            Target::Sentinel { .. } => {
                self.conn.sentinel_master().map(|at| format!("redis://{at}")).into_iter().collect()
            }
            Target::Cluster(_) => {
                let mut primaries: Vec<String> = match self.conn.primaries().await {
                    Some(primaries) => {
                        primaries?.into_iter().map(|(host, port)| format!("redis://{host}:{port}")).collect()
                    }
                    None => Vec::new(),
                };
                primaries.sort();
                primaries
            }
        })
    }

    /// A RESP3 connection to `server` tracking the store's items, its
    /// pushes sent to `pushes`.
    async fn track(
        &self,
        server: &str,
        pushes: UnboundedSender<PushInfo>,
    ) -> RedisResult<redis::aio::MultiplexedConnection> {
        let info = server.into_connection_info()?;
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let config = AsyncConnectionConfig::new()
            .set_push_sender(pushes)
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connecting = async {
            let mut connection = client.get_multiplexed_async_connection_with_config(&config).await?;
            redis::cmd("CLIENT").arg("SETNAME").arg(CLIENT_NAME).query_async::<()>(&mut connection).await?;
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("BCAST")
                .arg("PREFIX")
                .arg(&self.item_prefix)
                .query_async::<()>(&mut connection)
                .await?;
            Ok(connection)
        };
        tokio::time::timeout(self.timeout, connecting).await.unwrap_or_else(|_| {
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "tracking connection timed out").into())
        })
    }
}
