//! At-least-once refreshes: a worker process killed with SIGKILL in the
//! middle of a refresh leaves the job in its working list; once its
//! heartbeat expires, a live worker puts it back on its queue and runs it,
//! with no reader asking. Meanwhile Ruby's `Sidekiq::ProcessSet` and
//! `Sidekiq::WorkSet` (the Web UI's Busy page) show the worker and its refresh.

mod common;

use std::borrow::Cow;
use std::time::{Duration, Instant};

use cacheback::queue::sidekiq::{SidekiqQueue, SidekiqWorker};
use cacheback::{Cacheback, Dispatch, FetchError, Job};
use common::*;
use redis::AsyncCommands;

/// Set in the worker process the test starts: `<key prefix>|<queue>`.
const CHILD: &str = "CACHEBACK_RELIABLE_FETCH_CHILD";
/// The heartbeat lifespan of both workers: the recovery bound is this plus a quarter.
const LIFESPAN: Duration = Duration::from_secs(2);

/// A report whose fetch never ends in the child process (so its refresh is
/// in flight when the process is killed) and is instant in the test's.
#[derive(Default)]
struct Report;

impl Job for Report {
    type Args = (u32,);
    type Output = String;
    async fn fetch(&self, (n,): &(u32,)) -> Result<String, FetchError> {
        if std::env::var(CHILD).is_ok() {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(format!("report {n} by process {}", std::process::id()))
    }
    fn name() -> Cow<'static, str> {
        "reliable_fetch::Report".into()
    }
}

async fn engine(prefix: &str, queue: &str) -> Cacheback {
    let sidekiq = SidekiqQueue::builder(redis_url()).default_queue(queue).connect().await.unwrap();
    // The URL is `redis_url()`: the child process is told it in CACHEBACK_TEST_REDIS_URL.
    Cacheback::builder()
        .store("default", redis_store(prefix).await)
        .queue(sidekiq)
        .register_default::<Report>()
        .build()
        .unwrap()
}

async fn worker(cache: Cacheback, url: &str, queue: &str) -> SidekiqWorker {
    SidekiqWorker::builder(cache, url)
        .queues([queue])
        .concurrency(2)
        .heartbeat_lifespan(LIFESPAN)
        .poll_interval(Duration::from_millis(200))
        .connect()
        .await
        .unwrap()
}

/// The worker process that the tests below start and kill.
#[test]
#[ignore = "the worker process that the other tests of this file start and kill"]
fn worker_process() {
    let spec = std::env::var(CHILD).expect("started by a test of this file (spawn_worker)");
    let (prefix, queue) = spec.split_once('|').unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let worker = worker(engine(prefix, queue).await, &redis_url(), queue).await;
        worker.run_until_signal().await;
    });
}

/// A worker process; SIGKILLed when dropped, so a failing test leaves none behind.
struct WorkerProcess(std::process::Child);

impl WorkerProcess {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL: no shutdown, nothing requeued by the process.
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `worker_process` (this test binary again) for `prefix` and `queue` on `url`.
fn spawn_worker(url: &str, prefix: &str, queue: &str) -> WorkerProcess {
    WorkerProcess(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "worker_process", "--ignored", "--nocapture", "--test-threads", "1"])
            .env(CHILD, format!("{prefix}|{queue}"))
            .env("CACHEBACK_TEST_REDIS_URL", url)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Waits until a worker of `queue` holds one job in its working list; returns
/// the worker's identity and the list's key.
async fn in_flight(redis: &redis::aio::MultiplexedConnection, queue: &str) -> (String, String) {
    until(Duration::from_secs(30), || {
        let mut redis = redis.clone();
        async move {
            let workers: Vec<(String, String)> = redis.hgetall("cacheback:workers").await.unwrap();
            for (identity, queues) in workers {
                let list = format!("cacheback:working:{identity}:{queue}");
                if queues.contains(queue) && redis.llen::<_, usize>(&list).await.unwrap() == 1 {
                    return Some((identity, list));
                }
            }
            None
        }
    })
    .await
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most `limit`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_refresh_is_recovered_without_a_reader() {
    let prefix = unique_prefix("reliable-fetch");
    let queue = format!("reliable-fetch-{}", prefix.replace(':', "-"));
    let cache = engine(&prefix, &queue).await;
    let report = cache.job(Report);
    assert_eq!(report.async_refresh(&(7,)).await.unwrap(), Dispatch::Enqueued);
    let mut redis =
        redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();

    let mut child = spawn_worker(&redis_url(), &prefix, &queue);

    // The refresh is in flight in the child: its working list holds it, and
    // Ruby's Busy page shows the process and its refresh.
    let (identity, list) = in_flight(&redis, &queue).await;
    let busy = until(Duration::from_secs(5), || async {
        let seen = ruby_sidekiq(
            "procs = Sidekiq::ProcessSet.new.select { |p| p['identity'] == ENV['ID'] }\n\
             work = Sidekiq::WorkSet.new.select { |pid, _tid, _w| pid == ENV['ID'] }\n\
             puts 'RESULT ' + JSON.generate({\n\
               'procs' => procs.map { |p| { 'busy' => p['busy'], 'queues' => p['queues'], 'pid' => p['pid'] } },\n\
               'work' => work.map { |_pid, _tid, w| { 'queue' => w['queue'], 'class' => w['payload']['class'],\n\
                                                      'job' => w['payload']['args'][0]['job'] } } })",
            &[("ID", &identity)],
        );
        // The work entry is written when the job starts, the busy count at
        // the next heartbeat: wait for both.
        (seen["work"].as_array().is_some_and(|w| !w.is_empty()) && seen["procs"][0]["busy"] == 1).then_some(seen)
    })
    .await;
    assert_eq!(busy["procs"][0]["busy"], 1, "{busy}");
    assert_eq!(busy["procs"][0]["queues"][0], queue.as_str());
    assert_eq!(busy["procs"][0]["pid"], child.id());
    assert_eq!(busy["work"][0]["queue"], queue.as_str());
    assert_eq!(busy["work"][0]["class"], "Cacheback::RefreshCache");
    assert_eq!(busy["work"][0]["job"], "reliable_fetch::Report");

    // SIGKILL: no shutdown, nothing requeued by the child.
    child.kill();
    let killed = Instant::now();
    assert_eq!(
        redis.llen::<_, usize>(&list).await.unwrap(),
        1,
        "the killed worker's job is in its working list"
    );
    assert!(report.raw_get(&(7,)).await.unwrap().is_none(), "not refreshed yet");

    // A live worker recovers and runs it, without any reader.
    let live = worker(cache.clone(), &redis_url(), &queue).await;
    let handle = live.start();
    let refreshed =
        until(LIFESPAN * 4, || async { report.raw_get(&(7,)).await.unwrap().and_then(|item| item.data) })
            .await;
    let recovered_after = killed.elapsed();
    eprintln!("refreshed {recovered_after:?} after the SIGKILL (heartbeat lifespan {LIFESPAN:?})");
    assert_eq!(*refreshed, format!("report 7 by process {}", std::process::id()));
    assert!(recovered_after <= LIFESPAN + LIFESPAN / 4 + Duration::from_secs(1), "{recovered_after:?}");

    assert_eq!(handle.shutdown().await, 0);
    let lists: Vec<String> = redis.keys(format!("cacheback:working:*:{queue}")).await.unwrap();
    for list in &lists {
        assert_eq!(redis.llen::<_, usize>(list).await.unwrap(), 0, "{list} is empty");
    }
    let dead: Vec<String> = redis.zrange("dead", 0, -1).await.unwrap();
    assert!(dead.iter().all(|job| !job.contains(&queue)), "nothing of this test in dead");
    let gone = ruby_sidekiq(
        "puts 'RESULT ' + JSON.generate(Sidekiq::ProcessSet.new.map { |p| p['identity'] } & [ENV['ID'], ENV['LIVE']])",
        &[("ID", &identity), ("LIVE", live.identity())],
    );
    assert_eq!(gone, serde_json::json!([]), "the dead process, and the one that stopped, left the Busy page");
    let workers: Vec<String> = redis.hkeys("cacheback:workers").await.unwrap();
    assert!(!workers.contains(&identity), "and the registry");
    let () = redis.del(format!("queue:{queue}")).await.unwrap();
}

/// The documented production setup: the store's default prefix `cacheback:`
/// and the Sidekiq queue in the same Redis database. A `clear` while a
/// refresh is in flight removes the items and claims, and neither the
/// worker's bookkeeping (its working list, the registry) nor keys of others
/// (another app's, a look-alike prefix): the killed worker's refresh still
/// runs on a new worker. On a private Redis, as the store's prefix is the
/// default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clear_during_an_in_flight_refresh_loses_nothing() {
    let server = PrivateRedis::start_anywhere();
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let prefix = cacheback::store::DEFAULT_KEY_PREFIX;
    let queue = "cacheback";
    let sidekiq = SidekiqQueue::builder(&url).default_queue(queue).connect().await.unwrap();
    let store = cacheback::store::RedisStore::connect(&url).await.unwrap();
    let cache = Cacheback::builder()
        .store("default", store.clone())
        .queue(sidekiq)
        .register_default::<Report>()
        .build()
        .unwrap();
    let report = cache.job(Report);
    let mut redis =
        redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let foreign = ["cacheback-other:item:x", "otherapp:item:x", "cacheback:session:x", "cacheback:item"];
    for key in foreign {
        let () = redis.set(key, "theirs").await.unwrap();
    }
    report.set(&(1,), "cached".to_owned()).await.unwrap();
    assert_eq!(report.async_refresh(&(7,)).await.unwrap(), Dispatch::Enqueued);

    let mut child = spawn_worker(&url, prefix, queue);
    let (identity, list) = in_flight(&redis, queue).await;
    cacheback::store::CacheStore::clear(&store).await.unwrap();

    assert!(report.raw_get(&(1,)).await.unwrap().is_none(), "the store's items are cleared");
    assert_eq!(
        redis.llen::<_, usize>(&list).await.unwrap(),
        1,
        "the in-flight refresh is still in its working list"
    );
    let workers: Vec<String> = redis.hkeys("cacheback:workers").await.unwrap();
    assert!(workers.contains(&identity), "the worker registry is kept");
    for key in foreign {
        assert_eq!(
            redis.get::<_, Option<String>>(key).await.unwrap().as_deref(),
            Some("theirs"),
            "{key} is kept"
        );
    }

    child.kill();
    let live = worker(cache.clone(), &url, queue).await;
    let handle = live.start();
    let refreshed =
        until(LIFESPAN * 4, || async { report.raw_get(&(7,)).await.unwrap().and_then(|item| item.data) })
            .await;
    assert_eq!(*refreshed, format!("report 7 by process {}", std::process::id()));
    assert_eq!(handle.shutdown().await, 0);
    assert_eq!(
        redis.llen::<_, usize>(&list).await.unwrap(),
        0,
        "the recovered job left the dead worker's list"
    );
    drop(server);
}
