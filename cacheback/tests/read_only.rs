//! A store that reads but refuses writes (a master that a failover demoted,
//! an out-of-memory Redis, an ACL without write rights): no read that has its
//! answer fails, and nothing is queued while the store refuses the claims.
//! The store is a private replica (`replica-read-only yes`, Redis's default)
//! of a private master, through which the items are written; the machine's
//! shared Redis is untouched.

mod common;

use std::time::{Duration, Instant};

use cacheback::queue::InProcessQueue;
use cacheback::store::RedisStore;
use cacheback::telemetry::REFUSED_WRITES_TOTAL;
use cacheback::{CacheStatus, Cacheback, Error, Job};
use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The refused writes the snapshotter's recorder counted, by `op`
/// (`replace`, `set`, `claim`), read once: a snapshot resets the counters.
fn refused(snapshotter: &Snapshotter) -> [u64; 3] {
    let mut counts = [0; 3];
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.key().name() != REFUSED_WRITES_TOTAL {
            continue;
        }
        let op = key.key().labels().find(|l| l.key() == "op").map(|l| l.value().to_owned());
        let index = ["replace", "set", "claim"].iter().position(|o| op.as_deref() == Some(*o));
        match (index, value) {
            (Some(i), DebugValue::Counter(n)) => counts[i] += n,
            other => panic!("an unexpected refused-writes metric: {op:?} {other:?}"),
        }
    }
    counts
}

/// An engine on the Redis at `port`, with a manual queue (so what a read
/// queues stays visible) and the fixture's jobs and clock.
async fn engine(port: u16, env: &Env) -> (Cacheback, InProcessQueue) {
    let url = format!("redis://127.0.0.1:{port}");
    let store = RedisStore::builder(&url).key_prefix("read-only:").connect().await.unwrap();
    let queue = InProcessQueue::builder().manual().build();
    let builder = Cacheback::builder().store("default", store).queue(queue.clone()).clock(env.clock.clone());
    (register_dummies(builder, env).build().unwrap(), queue)
}

/// Makes the Redis at `replica` a replica of the one at `master`; returns
/// once it is in sync.
async fn replicate(replica: u16, master: u16) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{replica}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master).query_async(&mut conn).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await.unwrap();
        if info.contains("master_link_status:up") {
            return conn;
        }
        assert!(Instant::now() < deadline, "the replica did not sync:\n{info}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the replica holds `key` (of the store prefixed `read-only:`).
async fn replicated(conn: &mut redis::aio::MultiplexedConnection, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis::cmd("EXISTS").arg(format!("read-only:item:{key}")).query_async::<bool>(conn).await.unwrap()
    {
        assert!(Instant::now() < deadline, "{key} did not reach the replica");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_writes_fails_no_read_and_queues_nothing() {
    let (master, replica) = (PrivateRedis::start_anywhere(), PrivateRedis::start_anywhere());
    let mut conn = replicate(replica.port, master.port).await;
    let env = fixture(Backend::Memory).env();
    let (writer, _) = engine(master.port, &env).await;
    let (reader, queue) = engine(replica.port, &env).await;
    // The handles record into a recorder of the test's own (they keep the
    // recorder they were made with).
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (job, empty) = metrics::with_local_recorder(&recorder, || {
        (reader.job(DummyJob(env.clone())), reader.job(EmptyDummyJob(env.clone())))
    });
    let (logs, _guard) = Logs::capture();

    // A stale item: its STALE path's compare-and-set re-store is refused.
    writer.job(DummyJob(env.clone())).set(&foo(), ("stale".into(), 1.0)).await.unwrap();
    replicated(&mut conn, &job.key(&foo()).unwrap()).await;
    env.clock.advance(DummyJob(env.clone()).lifetime() + Duration::from_secs(1));
    for _ in 0..50 {
        let found = job.lookup(&foo()).await.expect("a refused re-store is not an error page");
        assert_eq!((found.status, found.sync_fetch), (CacheStatus::Stale, Some(false)));
        assert_eq!(found.value.unwrap().0, "stale");
    }
    assert_eq!(queue.pending(), 0, "no refresh queued while the store refuses its claim");

    // A MISS fetched in the read: the data is served, uncached.
    let other = ("other".to_owned(),);
    for n in 1..=3 {
        let found = job.lookup(&other).await.expect("a refused store of fetched data is not an error page");
        assert_eq!((found.status, found.sync_fetch), (CacheStatus::Miss, Some(true)));
        assert_eq!(found.value.unwrap().0, "JOB-EXECUTED:other");
        assert_eq!(found.expiry, None, "served without the cache");
        assert_eq!(env.fetches(), n, "each read fetches: nothing is kept");
    }
    // A MISS answered empty: nothing queued either.
    assert_eq!(empty.get(&other).await.unwrap(), None);
    assert_eq!(queue.pending(), 0);

    // Every refusal is counted.
    // replace: 50 stale re-stores and the empty miss's claim; set and claim:
    // each fetched miss.
    assert_eq!(refused(&snapshotter), [51, 3, 3]);

    // The refusals are logged, not once per read: one warning per job and
    // alias every 10 s.
    let text = logs.text();
    assert!(text.contains("read only replica"), "the store's error, in the warning:\n{text}");
    let warnings = text.matches("The store refused a write of a read").count();
    assert_eq!(warnings, 2, "one for each of the two jobs:\n{text}");

    // What must land still says it did not.
    let err = job.refresh(&foo()).await.unwrap_err();
    assert!(matches!(&err, Error::Store { op: "set", .. }), "{err:?}");
}
