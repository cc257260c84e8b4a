//! How long until one process sees another's write through its local copy:
//! a coherent copy (`LocalCache::keep_coherent`: Redis's invalidations
//! evict it) against a copy living its time to live (1 s, the sandbox's
//! `ttl_ms`), in the same run.
//!
//! Run: `cargo bench -p cacheback --bench coherence` (needs Redis at
//! `CACHEBACK_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/15`).
//!
//! Two engines, A and B, each with its own connection and copy, on one
//! store. A round: B holds a copy of the item; A writes a new value; B reads
//! in a loop (yielding between reads) until it answers the new value. The
//! time runs from just before A's write to B's first read of the new value.
//! Prints `name value unit` lines: `coherence_<copy>_p50` and `_p99` in
//! milliseconds, and `coherence_ttl_coherent_p99_ratio`.

use std::time::{Duration, Instant};

use cacheback::store::RedisStore;
use cacheback::{Cacheback, FetchError, Job, LocalCache};
use tokio::runtime::Runtime;

#[derive(Debug, Clone, Default)]
struct Value;

impl Job for Value {
    type Args = (String,);
    type Output = u64;
    async fn fetch(&self, _: &(String,)) -> Result<u64, FetchError> {
        Ok(0)
    }
}

async fn engine(url: &str, prefix: &str, ttl: Duration, coherent: bool) -> Cacheback {
    let store = RedisStore::builder(url)
        .key_prefix(prefix)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("the coherence benchmark needs Redis at {url}: {e}"));
    let local = LocalCache::new(ttl);
    if coherent {
        local.keep_coherent(&store).await.unwrap();
    }
    Cacheback::builder()
        .store("default", store)
        .local_cache("default", local)
        .register_default::<Value>()
        .build()
        .unwrap()
}

/// `rounds` rounds of A writing and B reading until it sees the write;
/// returns each round's time in milliseconds, sorted.
async fn rounds(url: &str, name: &str, ttl: Duration, coherent: bool, rounds: u64) -> Vec<f64> {
    let prefix = format!("cacheback-bench-coherence:{name}:{}:", std::process::id());
    let (a, b) = (engine(url, &prefix, ttl, coherent).await, engine(url, &prefix, ttl, coherent).await);
    let (a, b) = (a.job(Value), b.job(Value));
    let args = ("item".to_owned(),);
    let mut times = Vec::new();
    for round in 1..=rounds {
        a.set(&args, round * 2).await.unwrap();
        while b.get(&args).await.unwrap().as_deref() != Some(&(round * 2)) {
            tokio::task::yield_now().await;
        }
        // B holds a copy of the current value (its next reads are local HITs).
        let started = Instant::now();
        a.set(&args, round * 2 + 1).await.unwrap();
        while b.get(&args).await.unwrap().as_deref() != Some(&(round * 2 + 1)) {
            tokio::task::yield_now().await;
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    a.delete(&args).await.unwrap();
    times.sort_by(f64::total_cmp);
    times
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let url = cacheback_test_support::redis_url();
    run(&rt, &url);
}

fn run(rt: &Runtime, url: &str) {
    let coherent = rt.block_on(rounds(url, "coherent", Duration::from_secs(60), true, 500));
    let ttl = rt.block_on(rounds(url, "ttl", Duration::from_secs(1), false, 20));
    for (name, times) in [("coherent", &coherent), ("ttl", &ttl)] {
        println!("coherence_{name}_p50 {:.3} ms", percentile(times, 0.5));
        println!("coherence_{name}_p99 {:.3} ms", percentile(times, 0.99));
    }
    println!(
        "coherence_ttl_coherent_p99_ratio {:.1} x",
        percentile(&ttl, 0.99) / percentile(&coherent, 0.99)
    );
}
