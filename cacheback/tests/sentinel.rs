//! What only a Redis Sentinel group asks of the store and the Sidekiq queue:
//! the settings' `sentinel:`, and following the master through
//! `SENTINEL FAILOVER` (reads, claims, enqueues and the worker's fetch).
//! Everything the store does elsewhere runs on the group's master through
//! `on_every_store!` (the `sentinel::` tests).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cacheback::queue::sidekiq::{SidekiqQueue, SidekiqWorker};
use cacheback::settings::Settings;
use cacheback::store::StoredValue;
use cacheback::{Clock, SentinelGroup};
use common::*;
use serde_json::json;

/// The failover test swaps the group's master and replica: the others of
/// this file run before or after it, not during.
static TOPOLOGY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The master's `host:port`, as the first sentinel that answers names it.
fn master_address() -> String {
    let (master, sentinels) = redis_sentinel();
    for sentinel in &sentinels {
        let asked = redis::Client::open(format!("redis://{sentinel}"))
            .and_then(|c| c.get_connection())
            .and_then(|mut c| {
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&master)
                    .query::<Vec<String>>(&mut c)
            });
        if let Ok(address) = asked {
            return format!("{}:{}", address[0], address[1]);
        }
    }
    panic!("no sentinel of {sentinels:?} answers");
}

fn on(address: &str) -> redis::Connection {
    redis::Client::open(format!("redis://{address}")).unwrap().get_connection().unwrap()
}

/// `sentinel:` in the settings, as the `<master>@<host:port>,...` string an
/// environment variable holds, for a cache and for the Sidekiq queue; the
/// mistakes are refused naming their key.
#[tokio::test]
async fn settings_put_a_store_and_the_queue_behind_sentinels() {
    let _topology = TOPOLOGY.read().await;
    let (master, sentinels) = redis_sentinel();
    let group = format!("{master}@{}", sentinels.join(","));
    let queue = unique_prefix("sentinel-queue");
    let settings = Settings::from_json(json!({
        "caches": { "default": { "backend": "redis", "sentinel": group, "key_prefix": unique_prefix("settings") } },
        "task_queue": "sidekiq",
        "sidekiq": { "sentinel": group, "queues": [queue] },
    }))
    .unwrap();
    let cache = settings.builder().await.unwrap().build().unwrap();
    let store = cache.store("default").unwrap();
    store.set("k", StoredValue::Encoded("[1.0]".into()), Duration::from_secs(60)).await.unwrap();
    assert!(format!("{store:?}").contains("sentinel"), "{store:?}");
    let written: Option<String> = redis::cmd("GET")
        .arg(format!("{}item:k", store_prefix(&format!("{store:?}"))))
        .query(&mut on(&master_address()))
        .unwrap();
    assert_eq!(written.as_deref(), Some("[1.0]"), "the item is on the master the sentinels name");
    store.clear().await.unwrap();
    let worker = settings.sidekiq.as_ref().unwrap().worker(cache.clone()).await.unwrap();
    assert_eq!(worker.queues(), [queue]);

    let cases = [
        (
            json!({ "backend": "redis", "url": redis_url(), "sentinel": group }),
            "caches.default.sentinel",
            "one of",
        ),
        (json!({ "backend": "redis", "sentinel": "127.0.0.1:26379" }), "caches.default", "names no master"),
        (
            json!({ "backend": "redis", "sentinel": "nobody@127.0.0.1:1" }),
            "caches.default.sentinel",
            "cannot connect",
        ),
    ];
    for (config, key, says) in cases {
        let err = match Settings::from_json(json!({ "caches": { "default": config } })) {
            Ok(settings) => settings.builder().await.unwrap_err().to_string(),
            Err(err) => err.to_string(),
        };
        assert!(err.contains(key) && err.contains(says), "{config}: {err}");
    }
    // The master's database and credentials, in the map form.
    let prefix = unique_prefix("settings-db");
    let on_db = Settings::from_json(json!({
        "caches": { "default": {
            "backend": "redis", "key_prefix": prefix,
            "sentinel": { "master": master, "sentinels": sentinels, "db": 3 },
        } },
    }))
    .unwrap();
    let cache = on_db.builder().await.unwrap().build().unwrap();
    let store = cache.store("default").unwrap();
    store.set("k", StoredValue::Encoded("[3.0]".into()), Duration::from_secs(60)).await.unwrap();
    let mut node = on(&master_address());
    let _: () = redis::cmd("SELECT").arg(3).query(&mut node).unwrap();
    let written: Option<String> = redis::cmd("GET").arg(format!("{prefix}item:k")).query(&mut node).unwrap();
    assert_eq!(written.as_deref(), Some("[3.0]"), "the item is in the master's database 3");
    store.clear().await.unwrap();
    let wrong = Settings::from_json(json!({
        "caches": { "default": {
            "backend": "redis",
            "sentinel": { "master": master, "sentinels": sentinels, "password": "not-the-password" },
        } },
    }))
    .unwrap();
    let err = wrong.builder().await.unwrap_err().to_string();
    assert!(err.contains("caches.default.sentinel") && !err.contains("not-the-password"), "{err}");

    let both = Settings::from_json(json!({
        "task_queue": "sidekiq", "sidekiq": { "url": redis_url(), "sentinel": group },
    }))
    .unwrap();
    let err = both.builder().await.unwrap_err().to_string();
    assert!(err.contains("initializers.cacheback.sidekiq.sentinel") && err.contains("not both"), "{err}");
}

/// A stream of reads that each find the item of `param` stale (the clock
/// moved past its lifetime), recording the errors readers get.
struct StaleReads {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl StaleReads {
    fn start(engine: &Fixture, param: &(String,)) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (stopped, job, clock, param) =
            (stop.clone(), engine.dummy(), engine.clock().clone(), param.clone());
        let task = tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stopped.load(Ordering::SeqCst) {
                clock.advance(Duration::from_secs(601)); // every read finds it stale
                if let Err(err) = job.lookup(&param).await {
                    errors.push(err.to_string());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            errors
        });
        Self { stop, task }
    }

    /// Stops the reads; the errors they got.
    async fn errors(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// An engine on the test Sentinel group whose refreshes go to a Sidekiq
/// queue of its own behind the same sentinels (its copy coherent if asked),
/// and a worker running them: the engine, the queue's name, the worker.
async fn with_a_worker(
    label: &str,
    coherent: bool,
) -> (Fixture, String, cacheback::queue::sidekiq::WorkerHandle) {
    let (master, sentinels) = redis_sentinel();
    let queue_name = unique_prefix(label).replace(':', "-");
    let queue = SidekiqQueue::sentinel_builder(SentinelGroup::new(&master, sentinels.clone()))
        .default_queue(&queue_name)
        .connect()
        .await
        .unwrap();
    let mut engine = fixture(Backend::Sentinel).refresh_queue(queue);
    if coherent {
        engine = engine.coherent_local(Duration::from_secs(600));
    }
    let engine = engine.build().await;
    let worker =
        SidekiqWorker::sentinel_builder(engine.cache.clone(), SentinelGroup::new(&master, sentinels))
            .queues([queue_name.clone()])
            .concurrency(2)
            .connect()
            .await
            .unwrap();
    let running = worker.start();
    (engine, queue_name, running)
}

/// The key prefix in a `RedisStore`'s `Debug` text.
fn store_prefix(debug: &str) -> String {
    debug.split("prefix: \"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

/// `SENTINEL FAILOVER` under a stream of reads that find the item stale
/// (claims, and enqueues onto the Sidekiq queue behind the same sentinels),
/// with a Sidekiq worker fetching: no reader gets an error meanwhile (the
/// usual fallbacks serve them), the store writes to the new master, the
/// worker fetches from it, and the stale refreshes land again. The times
/// that takes are printed (`cargo test -p cacheback --test sentinel -- --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_reads_enqueues_and_a_worker() {
    let _topology = TOPOLOGY.write().await;
    let (master, sentinels) = redis_sentinel();
    let (a, queue_name, running) = with_a_worker("failover", true).await;
    // Another process, whose coherent copy must follow the master too.
    let b =
        fixture(Backend::Sentinel).coherent_local(Duration::from_secs(600)).prefix(&a.prefix).build().await;
    let param = ("failover".to_owned(),);
    a.dummy().refresh(&param).await.unwrap();
    let shared = ("shared".to_owned(),);
    a.dummy().set(&shared, ("before".to_owned(), 0.0)).await.unwrap();
    assert_eq!(b.dummy().get(&shared).await.unwrap().unwrap().0, "before");

    let reads = StaleReads::start(&a, &param);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let old_master = master_address();
    let started = Instant::now();
    let at_failover = a.clock().now();
    let mut sentinel = on(&sentinels[0]);
    let _: () = redis::cmd("SENTINEL").arg("FAILOVER").arg(&master).query(&mut sentinel).unwrap();

    // The store writes to the new master.
    let store = a.cache.store("default").unwrap();
    let prefix = format!("{}default:", a.prefix);
    let written = loop {
        assert!(started.elapsed() < Duration::from_secs(30), "the store never wrote to a new master");
        let new_master = master_address();
        if new_master != old_master
            && store.set("probe", StoredValue::Encoded("[2.0]".into()), Duration::from_secs(60)).await.is_ok()
        {
            let there: Option<String> =
                redis::cmd("GET").arg(format!("{prefix}item:probe")).query(&mut on(&new_master)).unwrap();
            if there.as_deref() == Some("[2.0]") {
                break started.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The stale refreshes land again.
    let refreshed = loop {
        assert!(started.elapsed() < Duration::from_secs(30), "no refresh landed after the failover");
        if let Ok(Some(item)) = a.dummy().raw_get(&param).await
            && item.fetched_at.is_some_and(|at| at > at_failover + 601.0)
        {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let errors = reads.errors().await;
    assert!(errors.is_empty(), "a reader got an error: {errors:?}");

    // The worker fetches from the new master: a refresh queued now is run.
    let queued = ("queued after the failover".to_owned(),);
    a.dummy().async_refresh(&queued).await.unwrap();
    let fetched = loop {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the worker never ran a job queued on the new master"
        );
        if a.dummy().raw_get(&queued).await.unwrap().is_some() {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The other process's copy hears of writes on the new master (where
    // the store writes by now).
    a.dummy().set(&shared, ("on the new master".to_owned(), 0.0)).await.unwrap();
    let coherent = copies_follow_the_failover(&a, &b, &shared, started).await;
    let left: usize =
        redis::cmd("LLEN").arg(format!("queue:{queue_name}")).query(&mut on(&master_address())).unwrap();
    assert_eq!(left, 0, "the new master's queue was drained");
    eprintln!(
        "sentinel failover: the store writes to the new master after {} ms, stale refreshes land after {} ms, \
         the worker runs a job queued on it after {} ms, the other process's copy is coherent after {} ms",
        written.as_millis(),
        refreshed.as_millis(),
        fetched.as_millis(),
        coherent.as_millis()
    );
    running.shutdown().await;
    store.clear().await.unwrap();
}

/// How a test loses the master.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// SIGKILL; the server is then started again as the new master's replica.
    Killed,
    /// SIGSTOP (it accepts connections and answers nothing); then SIGCONT,
    /// and the sentinels make it the new master's replica.
    Hung,
}

/// The master killed (SIGKILL) under a stream of stale reads, with the
/// refresh queue behind the same sentinels and a live worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_killed_under_reads() {
    the_master_lost(Loss::Killed).await;
}

/// The master hung (SIGSTOP) under a stream of stale reads: each read
/// waits the store's timeout at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_hung_under_reads() {
    the_master_lost(Loss::Hung).await;
}

/// No reader gets an error while the sentinels notice the loss
/// (`down-after-milliseconds`) and promote the replica, and refreshes land
/// again on the new master; the time that takes is printed. The lost server
/// then comes back as the new master's replica, so the group has a replica
/// again for the tests that follow.
async fn the_master_lost(loss: Loss) {
    let _topology = TOPOLOGY.write().await;
    let (master, sentinels) = redis_sentinel();
    let (a, _, running) = with_a_worker("lost", false).await;
    let param = ("lost".to_owned(),);
    a.dummy().refresh(&param).await.unwrap();
    let reads = StaleReads::start(&a, &param);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let old_master = master_address();
    let mut node = on(&old_master);
    let info: String = redis::cmd("INFO").arg("server").query(&mut node).unwrap();
    let pid = info.lines().find_map(|l| l.strip_prefix("process_id:")).unwrap().trim().to_owned();
    let dir: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("dir").query(&mut node).unwrap();
    let lost = Instant::now();
    let at_loss = a.clock().now();
    let signal = match loss {
        Loss::Killed => "-KILL",
        Loss::Hung => "-STOP",
    };
    std::process::Command::new("kill").args([signal, &pid]).status().unwrap();

    let landed = loop {
        assert!(lost.elapsed() < Duration::from_secs(40), "no refresh landed after the promotion");
        if let Ok(Some(item)) = a.dummy().raw_get(&param).await
            && item.fetched_at.is_some_and(|at| at > at_loss + 601.0)
            && master_address() != old_master
        {
            break lost.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let errors = reads.errors().await;
    assert!(errors.is_empty(), "a reader got an error: {errors:?}");
    eprintln!("sentinel: master {loss:?}: refreshes land again {} ms after", landed.as_millis());
    running.shutdown().await;
    a.cache.store("default").unwrap().clear().await.unwrap();

    // The lost server comes back as the new master's replica (scripts/test
    // stops it by its port).
    match loss {
        Loss::Killed => {
            let (host, port) = old_master.rsplit_once(':').unwrap();
            let new_master = master_address();
            let (new_host, new_port) = new_master.rsplit_once(':').unwrap();
            std::process::Command::new("redis-server")
                .args(["--port", port, "--bind", host, "--save", "", "--appendonly", "no", "--dir", &dir[1]])
                .args(["--replicaof", new_host, new_port, "--daemonize", "yes"])
                .status()
                .unwrap();
        }
        Loss::Hung => {
            std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replicas: Option<usize> = redis::cmd("SENTINEL")
            .arg("replicas")
            .arg(&master)
            .query::<Vec<Vec<String>>>(&mut on(&sentinels[0]))
            .ok()
            .map(|replicas| {
                replicas
                    .iter()
                    .filter(|fields| fields.windows(2).any(|pair| pair[0] == "flags" && pair[1] == "slave"))
                    .count()
            });
        let role = redis::Client::open(format!("redis://{old_master}"))
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("ROLE").query::<redis::Value>(&mut c));
        let replica = matches!(role, Ok(redis::Value::Array(ref parts)) if matches!(parts.first(), Some(redis::Value::BulkString(b)) if b == b"slave"));
        if replicas == Some(1) && replica {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lost server did not come back as a replica: {replicas:?} {role:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
