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
    Cacheback::builder()
        .store("default", redis_store(prefix).await)
        .queue(sidekiq)
        .register_default::<Report>()
        .build()
        .unwrap()
}

async fn worker(cache: Cacheback, queue: &str) -> SidekiqWorker {
    SidekiqWorker::builder(cache, redis_url())
        .queues([queue])
        .concurrency(2)
        .heartbeat_lifespan(LIFESPAN)
        .poll_interval(Duration::from_millis(200))
        .connect()
        .await
        .unwrap()
}

/// The worker process of `a_killed_worker_s_refresh_is_recovered_without_a_reader`.
#[test]
#[ignore = "the worker process that `a_killed_worker_s_refresh_is_recovered_without_a_reader` starts and kills"]
fn worker_process() {
    let spec =
        std::env::var(CHILD).expect("started by a_killed_worker_s_refresh_is_recovered_without_a_reader");
    let (prefix, queue) = spec.split_once('|').unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let worker = worker(engine(prefix, queue).await, queue).await;
        worker.run_until_signal().await;
    });
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

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker_process", "--ignored", "--nocapture", "--test-threads", "1"])
        .env(CHILD, format!("{prefix}|{queue}"))
        .env("CACHEBACK_TEST_REDIS_URL", redis_url())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // The refresh is in flight in the child: its working list holds it, and
    // Ruby's Busy page shows the process and its refresh.
    let working = until(Duration::from_secs(30), || {
        let mut redis = redis.clone();
        let queue = queue.clone();
        async move {
            let workers: Vec<(String, String)> = redis.hgetall("cacheback:workers").await.unwrap();
            for (identity, queues) in workers {
                let list = format!("cacheback:working:{identity}:{queue}");
                if queues.contains(&queue) && redis.llen::<_, usize>(&list).await.unwrap() == 1 {
                    return Some((identity, list));
                }
            }
            None
        }
    })
    .await;
    let (identity, list) = working;
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
        (seen["work"].as_array().is_some_and(|w| !w.is_empty())).then_some(seen)
    })
    .await;
    assert_eq!(busy["procs"][0]["busy"], 1, "{busy}");
    assert_eq!(busy["procs"][0]["queues"][0], queue.as_str());
    assert_eq!(busy["procs"][0]["pid"], child.id());
    assert_eq!(busy["work"][0]["queue"], queue.as_str());
    assert_eq!(busy["work"][0]["class"], "Cacheback::RefreshCache");
    assert_eq!(busy["work"][0]["job"], "reliable_fetch::Report");

    // SIGKILL: no shutdown, nothing requeued by the child.
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    assert_eq!(
        redis.llen::<_, usize>(&list).await.unwrap(),
        1,
        "the killed worker's job is in its working list"
    );
    assert!(report.raw_get(&(7,)).await.unwrap().is_none(), "not refreshed yet");

    // A live worker recovers and runs it, without any reader.
    let live = worker(cache.clone(), &queue).await;
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
