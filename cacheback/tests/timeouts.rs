//! Timeouts mean what the docs say: against a Redis that stops answering
//! (a peer that keeps the connection open and never replies), every store and
//! queue operation, and connecting, fails within its configured timeout. And
//! after an outage, the first operation reconnects instead of failing with the
//! outage's error.
//!
//! A hung Redis is either a listener that accepts connections and never
//! writes (for connecting), or a proxy in front of a private `redis-server`
//! switched to "black hole" mode once the client is connected (for requests on
//! an established connection).

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ::redis::AsyncCommands;
use bytes::Bytes;
use cacheback::queue::sidekiq::{SidekiqQueue, SidekiqWorker};
use cacheback::queue::{RefreshPayload, RefreshQueue};
use cacheback::store::{CacheStore, RedisStore, StoredValue};
use cacheback::{Cacheback, Job, TaskOptions};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What an operation may take beyond its timeout (scheduling, the error path).
const SLACK: Duration = Duration::from_millis(300);

const SHORT: Duration = Duration::from_millis(500);
/// The default timeout of stores and queues.
const DEFAULT: Duration = Duration::from_secs(2);

// ----------------------------------------------------------------------
// Hung peers.
// ----------------------------------------------------------------------

/// A listener that accepts connections and never answers; returns its port.
/// The accepted sockets stay open for the life of the test process.
fn hung_listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming().flatten() {
            held.push(socket);
        }
    });
    port
}

/// A TCP proxy in front of a private `redis-server` that can turn into a
/// black hole: it then forwards nothing more, in either direction, and keeps
/// every socket open.
struct Proxy {
    port: u16,
    black_hole: Arc<AtomicBool>,
    /// Bumped to close every connection made before.
    generation: tokio::sync::watch::Sender<u64>,
    _redis: PrivateRedis,
}

impl Proxy {
    async fn start() -> Self {
        let redis = PrivateRedis::start_anywhere();
        let upstream = redis.port;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let black_hole = Arc::new(AtomicBool::new(false));
        let (generation, generations) = tokio::sync::watch::channel(0_u64);
        let flag = Arc::clone(&black_hole);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = Arc::clone(&flag);
                let mut generations = generations.clone();
                let born = *generations.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let both_ways = async {
                        tokio::join!(
                            forward(client_read, server_write, Arc::clone(&flag)),
                            forward(server_read, client_write, flag),
                        )
                    };
                    tokio::select! {
                        _ = both_ways => {}
                        _ = generations.wait_for(|g| *g != born) => {}
                    }
                });
            }
        });
        Self { port, black_hole, generation, _redis: redis }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// From now on, nothing gets through, and nothing is closed.
    fn hang(&self) {
        self.black_hole.store(true, Ordering::SeqCst);
    }

    /// Closes every connection, and hangs from now on: a client reconnects
    /// to a Redis that accepts its connection and never answers.
    fn reset_and_hang(&self) {
        self.hang();
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    black_hole: Arc<AtomicBool>,
) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if black_hole.load(Ordering::SeqCst) {
            // Swallow this and everything after, holding both sockets open.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Runs `op`, which must fail, and checks it took about `timeout`: at least
/// most of it (it did wait on the hung peer), at most `timeout + SLACK`.
/// Returns how long it took.
async fn fails_within<T: std::fmt::Debug, E: std::fmt::Display>(
    what: &str,
    timeout: Duration,
    op: impl Future<Output = Result<T, E>>,
) -> Duration {
    let started = Instant::now();
    let result = op.await;
    let took = started.elapsed();
    eprintln!("{what} (timeout {} ms): failed after {} ms", timeout.as_millis(), took.as_millis());
    let err = match result {
        Ok(value) => panic!("{what} succeeded against a hung Redis: {value:?}"),
        Err(err) => err,
    };
    assert!(took <= timeout + SLACK, "{what} took {took:?}, timeout {timeout:?}: {err}");
    assert!(took + Duration::from_millis(100) >= timeout, "{what} failed early ({took:?}): {err}");
    took
}

/// The full text of an error and its sources.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// A store connected through a proxy that then hangs.
async fn hung_store(timeout: Option<Duration>) -> (Proxy, RedisStore) {
    let proxy = Proxy::start().await;
    let builder = RedisStore::builder(proxy.url()).key_prefix(unique_prefix("timeouts"));
    let builder = match timeout {
        Some(timeout) => builder.timeout(timeout),
        None => builder,
    };
    let store = builder.connect().await.unwrap();
    store.ping().await.expect("the proxy forwards until it hangs");
    proxy.hang();
    (proxy, store)
}

fn encoded(text: &str) -> StoredValue {
    StoredValue::Encoded(Bytes::from(text.as_bytes().to_vec()))
}

/// A refresh of `DummyJob("foo")` under `key` (built from its wire form, so
/// fields added later take their defaults).
fn payload_for(key: &str) -> RefreshPayload {
    serde_json::from_value(serde_json::json!({"job": DummyJob::name(), "args": ["foo"], "key": key})).unwrap()
}

fn payload() -> RefreshPayload {
    payload_for("timeouts:foo")
}

// ----------------------------------------------------------------------
// Every operation returns within its timeout.
// ----------------------------------------------------------------------

#[tokio::test]
async fn a_read_from_a_hung_redis_fails_within_its_timeout() {
    let (_proxy, store) = hung_store(Some(SHORT)).await;
    let (_, _guard) = Logs::capture();
    let started = Instant::now();
    let err = store.get("k").await.unwrap_err();
    let took = started.elapsed();
    eprintln!("read (timeout 500 ms): failed after {} ms: {}", took.as_millis(), chain(&err));
    assert!(took <= SHORT + SLACK && took + Duration::from_millis(100) >= SHORT, "{took:?}");
    assert!(chain(&err).contains("timed out after 500 ms"), "{}", chain(&err));
    // And again: the connection stays hung, each read is bounded all the same.
    fails_within("second read", SHORT, store.get("k")).await;
}

#[tokio::test]
async fn a_read_with_the_default_timeout_fails_within_2_s() {
    let (_proxy, store) = hung_store(None).await;
    fails_within("read", DEFAULT, store.get("k")).await;
}

#[tokio::test]
async fn a_write_to_a_hung_redis_fails_within_its_timeout() {
    let (_proxy, store) = hung_store(Some(SHORT)).await;
    fails_within("write", SHORT, store.set("k", encoded("v"), Duration::from_secs(60))).await;
    fails_within("delete", SHORT, store.delete("k")).await;
}

#[tokio::test]
async fn a_claim_on_a_hung_redis_fails_within_its_timeout() {
    let (_proxy, store) = hung_store(Some(SHORT)).await;
    let now = 1_700_000_000.0;
    fails_within("claim", SHORT, store.claim("k", "token", now, now + 60.0)).await;
    fails_within("ping", SHORT, store.ping()).await;
}

#[tokio::test]
async fn an_enqueue_on_a_hung_redis_fails_within_its_timeout() {
    let proxy = Proxy::start().await;
    let queue = SidekiqQueue::builder(proxy.url())
        .default_queue(unique_prefix("q").replace(':', "-"))
        .timeout(SHORT)
        .connect()
        .await
        .unwrap();
    queue.ping().await.unwrap();
    proxy.hang();
    fails_within("enqueue", SHORT, queue.enqueue(payload(), &TaskOptions::default())).await;
}

/// The connection breaks and the reconnection hangs: a request (the one that
/// meets the broken connection, and those after it) waits on the reconnection
/// no longer than its timeout, not a cycle of attempts and backoff.
#[tokio::test]
async fn requests_waiting_on_a_hung_reconnection_fail_within_their_timeout() {
    let proxy = Proxy::start().await;
    let store = RedisStore::builder(proxy.url())
        .key_prefix(unique_prefix("timeouts"))
        .timeout(SHORT)
        .connect()
        .await
        .unwrap();
    let queue = SidekiqQueue::builder(proxy.url())
        .default_queue(unique_prefix("q").replace(':', "-"))
        .timeout(SHORT)
        .connect()
        .await
        .unwrap();
    store.ping().await.unwrap();
    queue.ping().await.unwrap();
    proxy.reset_and_hang();
    tokio::time::sleep(Duration::from_millis(50)).await;
    fails_within("read on a reset connection", SHORT, store.get("k")).await;
    fails_within("read during the reconnection", SHORT, store.get("k")).await;
    fails_within(
        "write during the reconnection",
        SHORT,
        store.set("k", encoded("v"), Duration::from_secs(60)),
    )
    .await;
    fails_within("enqueue on a reset connection", SHORT, queue.enqueue(payload(), &TaskOptions::default()))
        .await;
    fails_within("enqueue during the reconnection", SHORT, queue.enqueue(payload(), &TaskOptions::default()))
        .await;
}

#[tokio::test]
async fn connecting_to_a_hung_redis_fails_within_the_timeout() {
    let url = format!("redis://127.0.0.1:{}", hung_listener());
    fails_within("store connect", SHORT, RedisStore::builder(&url).timeout(SHORT).connect()).await;
    fails_within("store connect", DEFAULT, RedisStore::builder(&url).connect()).await;
    fails_within("queue connect", SHORT, SidekiqQueue::builder(&url).timeout(SHORT).connect()).await;
    let cache = Cacheback::builder().build().unwrap();
    fails_within("worker connect", SHORT, SidekiqWorker::builder(cache, &url).timeout(SHORT).connect()).await;
}

// ----------------------------------------------------------------------
// After an outage, the first operation goes through.
// ----------------------------------------------------------------------

#[tokio::test]
async fn the_first_operations_after_redis_returns_succeed() {
    let mut redis = PrivateRedis::start_anywhere();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let store = RedisStore::builder(&url).timeout(SHORT).connect().await.unwrap();
    let queue = SidekiqQueue::builder(&url).timeout(SHORT).connect().await.unwrap();
    store.set("k", encoded("v"), Duration::from_secs(600)).await.unwrap();
    queue.enqueue(payload(), &TaskOptions::default()).await.unwrap();

    redis.stop();
    // During the outage, operations fail over at once (the connection is refused).
    for _ in 0..2 {
        let started = Instant::now();
        store.get("k").await.expect_err("Redis is down");
        queue.enqueue(payload(), &TaskOptions::default()).await.expect_err("Redis is down");
        eprintln!("read + enqueue while Redis is down: failed after {} ms", started.elapsed().as_millis());
        assert!(started.elapsed() < SHORT, "{:?}", started.elapsed());
    }
    // Long enough for any reconnection the clients started to give up.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let _redis = PrivateRedis::start(redis.port);
    let restarted = Instant::now();
    queue.enqueue(payload(), &TaskOptions::default()).await.expect("the first enqueue after the restart");
    eprintln!("Redis restart to first successful enqueue: {} ms", restarted.elapsed().as_millis());
    let started = Instant::now();
    let read = store.get("k").await.expect("the first read after the restart");
    assert!(read.is_none(), "a new, empty Redis");
    eprintln!("first read after the restart: {} ms", started.elapsed().as_millis());
    store.set("k", encoded("v"), Duration::from_secs(600)).await.unwrap();
}

/// The worker's first stat write after a restart (on its own connection, which
/// met the outage) counts the job instead of failing with the outage's error.
#[tokio::test]
async fn a_worker_counts_its_first_job_after_redis_returns() {
    let mut redis = PrivateRedis::start_anywhere();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let fx = fixture(Backend::Memory).build().await;
    let queue = SidekiqQueue::builder(&url).connect().await.unwrap();
    let worker = SidekiqWorker::builder(fx.cache.clone(), &url)
        .timeout(SHORT)
        .concurrency(1)
        .poll_interval(Duration::from_secs(3600))
        .connect()
        .await
        .unwrap();
    let handle = worker.start();

    redis.stop();
    // The worker's own connection meets the outage, then any reconnection
    // it started gives up.
    worker.enqueue_due().await.expect_err("Redis is down");
    worker.enqueue_due().await.expect_err("Redis is down");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let _redis = PrivateRedis::start(redis.port);
    let restarted = Instant::now();
    // Pushed on a new connection: the worker's are the ones under test.
    let mut conn =
        ::redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let msg = queue.message(payload_for(&fx.dummy().key(&foo()).unwrap()), &TaskOptions::default()).unwrap();
    let _: i64 =
        conn.lpush(format!("queue:{}", msg.queue), serde_json::to_string(&msg).unwrap()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let processed: Option<u64> = conn.get("stat:processed").await.unwrap();
        if processed == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "the worker did not count its first job after the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("Redis restart to the worker's first counted job: {} ms", restarted.elapsed().as_millis());
    assert_eq!(fx.env.fetches(), 1, "the job ran");
    let failed: Option<u64> = conn.get("stat:failed").await.unwrap();
    assert_eq!(failed, None);
    assert_eq!(handle.shutdown().await, 0);
}
