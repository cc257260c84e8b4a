//! Sidekiq refreshes: throughput through one worker, and the latency from a
//! stale read to the fresh value with an idle worker.
//!
//! Run: `cargo bench -p cacheback --bench sidekiq` (needs Redis at
//! `CACHEBACK_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/15`).
//! Prints `name value unit` lines:
//!
//! * `sidekiq_refresh_jobs_per_sec`: N queued refreshes of N distinct keys
//!   (trivial fetch, Redis cache store) drained by one worker with 32
//!   concurrent refreshes; beside it, `sidekiq_raw_rpop_per_sec`: the same
//!   number of jobs only popped (`RPOP`) at the same concurrency, the floor of
//!   any Redis-list worker; `sidekiq_refresh_share_of_floor` is the ratio.
//!   The worker fetches reliably (jobs move to a working list and are
//!   acknowledged), which the floor does not.
//! * `sidekiq_stale_to_fresh_*_ms`: a stale `get` queues a refresh; the time
//!   until `raw_get` sees the new value, with the worker idle in `BRPOP`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cacheback::queue::RefreshPayload;
use cacheback::queue::sidekiq::{SidekiqQueue, SidekiqWorker};
use cacheback::store::RedisStore;
use cacheback::{Cacheback, FetchError, Job, ManualClock, TaskOptions};
use redis::AsyncCommands;

static VERSION: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
struct Numbered;

impl Job for Numbered {
    type Args = (u64,);
    type Output = u64;
    async fn fetch(&self, (n,): &(u64,)) -> Result<u64, FetchError> {
        Ok(n + VERSION.load(Ordering::SeqCst))
    }
}

const JOBS: usize = 20_000;
const CONCURRENCY: usize = 32;

fn print(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.2} {unit}");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run());
}

async fn run() {
    let url = cacheback_test_support::redis_url();
    let id = std::process::id();
    let queue_name = format!("cacheback-bench-{id}");
    let store =
        RedisStore::builder(&url).key_prefix(format!("cacheback-bench:{id}:")).connect().await.unwrap();
    let queue = SidekiqQueue::builder(&url).default_queue(&queue_name).connect().await.unwrap();
    let clock = ManualClock::at(1_700_000_000.0);
    let cache = Cacheback::builder()
        .store("default", store.clone())
        .queue(queue.clone())
        .clock(clock.clone())
        .register_default::<Numbered>()
        .build()
        .unwrap();
    let worker = SidekiqWorker::builder(cache.clone(), &url)
        .queues([queue_name.clone()])
        .concurrency(CONCURRENCY)
        .connect()
        .await
        .unwrap();
    let mut redis = redis::Client::open(url.as_str()).unwrap().get_connection_manager().await.unwrap();
    let list = format!("queue:{queue_name}");

    // --- throughput --------------------------------------------------------
    let job = cache.job(Numbered);
    let messages: Vec<String> = (0..JOBS as u64)
        .map(|n| {
            let payload =
                RefreshPayload::new(Numbered::name(), serde_json::json!([n]), job.key(&(n,)).unwrap());
            serde_json::to_string(&queue.message(payload, &TaskOptions::default()).unwrap()).unwrap()
        })
        .collect();
    let fill = |redis: &mut redis::aio::ConnectionManager| {
        let mut redis = redis.clone();
        let messages = messages.clone();
        let list = list.clone();
        async move {
            for chunk in messages.chunks(1000) {
                let () = redis.lpush(&list, chunk).await.unwrap();
            }
        }
    };

    fill(&mut redis).await;
    let start = Instant::now();
    let report = worker.drain().await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!((report.processed, report.failed), (JOBS, 0));
    assert_eq!(*job.get(&(JOBS as u64 - 1,)).await.unwrap().unwrap(), JOBS as u64 - 1);

    fill(&mut redis).await;
    let popped = Arc::new(AtomicU64::new(0));
    let start_raw = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (mut redis, list, popped) = (redis.clone(), list.clone(), Arc::clone(&popped));
        tasks.spawn(async move {
            while let Some(raw) = redis.rpop::<_, Option<String>>(&list, None).await.unwrap() {
                std::hint::black_box(raw);
                popped.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let raw_elapsed = start_raw.elapsed();
    assert_eq!(popped.load(Ordering::Relaxed), JOBS as u64);

    print("sidekiq_refresh_jobs_per_sec", JOBS as f64 / elapsed.as_secs_f64(), "jobs/s");
    print("sidekiq_raw_rpop_per_sec", JOBS as f64 / raw_elapsed.as_secs_f64(), "jobs/s");
    print("sidekiq_refresh_share_of_floor", 100.0 * raw_elapsed.as_secs_f64() / elapsed.as_secs_f64(), "%");

    // --- stale read -> fresh value, idle worker -------------------------------
    let handle = worker.start();
    tokio::time::sleep(Duration::from_millis(200)).await; // the fetchers are idle in BRPOP
    let mut samples = Vec::new();
    for round in 0..100u64 {
        let args = (1_000_000 + round,);
        job.refresh(&args).await.unwrap();
        clock.advance(Duration::from_secs(601));
        VERSION.fetch_add(1, Ordering::SeqCst);
        let before = *job.raw_get(&args).await.unwrap().unwrap().data.unwrap();
        let start = Instant::now();
        job.get(&args).await.unwrap(); // STALE: queues the refresh
        loop {
            let now = *job.raw_get(&args).await.unwrap().unwrap().data.unwrap();
            if now != before {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "refresh did not land");
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(20)).await; // idle again
    }
    handle.shutdown().await;
    samples.sort_by(f64::total_cmp);
    print("sidekiq_stale_to_fresh_median_ms", samples[samples.len() / 2], "ms");
    print("sidekiq_stale_to_fresh_p99_ms", samples[samples.len() * 99 / 100], "ms");

    let () = redis.del(&list).await.unwrap();
    let () = redis.srem("queues", &queue_name).await.unwrap();
    cacheback::store::CacheStore::clear(&store).await.unwrap();
}
