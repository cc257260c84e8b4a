//! HIT `get` on a 100-row payload, against each store's same-run floor.
//!
//! Run: `cargo bench -p cacheback --bench hit` (needs Redis at
//! `CACHEBACK_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/15`).
//!
//! Prints `name value unit` lines. Each figure is the median over samples,
//! taken alternately from the engine and from its floor so both see the same
//! machine state:
//!
//! * memory floor: `MemoryStore::get` of the key + the downcast to the item
//!   (what any in-process cache must do);
//! * redis floor: a raw `GET` of the same key on the same connection + the JSON
//!   decode of the same bytes;
//! * redis + local copy: the engine with a [`LocalCache`] in front of the same
//!   Redis store, against the same redis floor;
//! * metrics: the in-memory HIT through a handle made after a Prometheus
//!   recorder (`metrics-exporter-prometheus`) was installed, against the same
//!   HIT through a handle made before (the facade's no-op): what recording
//!   costs a HIT.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cacheback::store::{CacheStore, MemoryStore, RedisStore, StoredValue};
use cacheback::{Cacheback, CachedItem, FetchError, Job, JobHandle, LocalCache};
use chrono::{DateTime, FixedOffset};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

/// A row shaped like the sandbox's `DummyModel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    id: i32,
    name: String,
    date_created: DateTime<FixedOffset>,
}

fn rows() -> Vec<Row> {
    let base = DateTime::parse_from_rfc3339("2012-08-07T08:23:24.718+00:00").unwrap();
    (0..100)
        .map(|i| Row {
            id: i + 1,
            name: format!("Item_{i}"),
            date_created: base + chrono::Duration::milliseconds(i64::from(i) * 7),
        })
        .collect()
}

#[derive(Default)]
struct Items;

impl Job for Items {
    type Args = (String,);
    type Output = Vec<Row>;
    async fn fetch(&self, _: &(String,)) -> Result<Vec<Row>, FetchError> {
        Ok(rows())
    }
}

const SAMPLES: usize = 301;

/// One timed step.
type Step = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// A HIT `get` through the engine, checked to return the 100 rows.
fn engine_get(job: &Arc<JobHandle<Items>>, args: &(String,)) -> Step {
    let (job, args) = (Arc::clone(job), args.clone());
    Box::pin(async move {
        let rows = job.get(&args).await.unwrap().unwrap();
        assert_eq!(rows.len(), 100);
        black_box(rows);
    })
}

/// The Redis floor: a raw `GET` of the item's key and the JSON decode of its bytes.
fn redis_floor(conn: &redis::aio::ConnectionManager, key: &Arc<str>) -> Step {
    let (mut conn, key) = (conn.clone(), Arc::clone(key));
    Box::pin(async move {
        let bytes: Vec<u8> = conn.get(&*key).await.unwrap();
        let (expiry, rows, _fetched): (f64, Option<Vec<Row>>, serde::de::IgnoredAny) =
            serde_json::from_slice(&bytes).unwrap();
        assert_eq!(rows.as_ref().unwrap().len(), 100);
        black_box((expiry, rows));
    })
}

/// Median nanoseconds per iteration of `a` and `b`, sampled alternately.
fn compare(
    rt: &tokio::runtime::Runtime,
    iters: usize,
    mut a: impl FnMut() -> Step,
    mut b: impl FnMut() -> Step,
) -> (f64, f64) {
    let time = |f: &mut dyn FnMut() -> Step| {
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..iters {
                f().await;
            }
        });
        start.elapsed().as_nanos() as f64 / iters as f64
    };
    // Warm up both.
    time(&mut a);
    time(&mut b);
    let (mut xs, mut ys) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for _ in 0..SAMPLES {
        xs.push(time(&mut a));
        ys.push(time(&mut b));
    }
    (median(xs), median(ys))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn print(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let args = ("Item_1".to_owned(),);

    // --- in-memory -------------------------------------------------------
    let memory = MemoryStore::new();
    let cache_memory =
        Cacheback::builder().store("default", memory.clone()).register_default::<Items>().build().unwrap();
    let job = Arc::new(cache_memory.job(Items));
    let key: Arc<str> = job.key(&args).unwrap().into();
    rt.block_on(job.refresh(&args)).unwrap();
    let (engine, floor) = compare(
        &rt,
        2_000,
        || engine_get(&job, &args),
        || {
            let (memory, key) = (memory.clone(), Arc::clone(&key));
            Box::pin(async move {
                let Some(StoredValue::Shared(any)) = memory.get(&key).await.unwrap() else {
                    panic!("missing")
                };
                let item = any.downcast::<CachedItem<Vec<Row>>>().unwrap();
                assert_eq!(item.data.as_ref().unwrap().len(), 100);
                black_box(item.data.clone());
            })
        },
    );
    let unrecorded = Arc::clone(&job);
    print("hit_memory_get_median", engine / 1000.0, "us");
    print("hit_memory_floor_median", floor / 1000.0, "us");
    print("hit_memory_ratio", engine / floor, "x");

    // --- Redis -----------------------------------------------------------
    let url = cacheback_test_support::redis_url();
    let prefix = format!("cacheback-bench:{}:", std::process::id());
    let store = rt
        .block_on(RedisStore::builder(&url).key_prefix(&prefix).connect())
        .unwrap_or_else(|e| panic!("the Redis benchmark needs Redis at {url}: {e}"));
    let cache =
        Cacheback::builder().store("default", store.clone()).register_default::<Items>().build().unwrap();
    let job = Arc::new(cache.job(Items));
    rt.block_on(job.refresh(&args)).unwrap();
    let raw_key: Arc<str> = format!("{prefix}item:{}", job.key(&args).unwrap()).into();
    let conn = rt.block_on(redis::Client::open(url.as_str()).unwrap().get_connection_manager()).unwrap();
    let payload: Vec<u8> = rt.block_on(conn.clone().get::<_, Vec<u8>>(&*raw_key)).unwrap();
    print("redis_item_size", payload.len() as f64, "bytes");
    let (engine, floor) = compare(&rt, 50, || engine_get(&job, &args), || redis_floor(&conn, &raw_key));
    print("hit_redis_get_median", engine / 1000.0, "us");
    print("hit_redis_floor_median", floor / 1000.0, "us");
    print("hit_redis_ratio", engine / floor, "x");

    // --- Redis with a local copy -------------------------------------------
    // The same item through an engine with a `LocalCache` in front of the same
    // store, against the same raw GET + decode floor.
    let local = Cacheback::builder()
        .store("default", store.clone())
        .local_cache("default", LocalCache::new(Duration::from_secs(60)))
        .register_default::<Items>()
        .build()
        .unwrap();
    let local_job = Arc::new(local.job(Items));
    rt.block_on(local_job.get(&args)).unwrap();
    let (engine, floor) = compare(&rt, 50, || engine_get(&local_job, &args), || redis_floor(&conn, &raw_key));
    print("hit_redis_local_get_median", engine / 1000.0, "us");
    print("hit_redis_local_floor_median", floor / 1000.0, "us");
    print("hit_redis_local_ratio", engine / floor, "x");
    rt.block_on(store.clear()).unwrap();

    // --- metrics: the same in-memory HIT, recorded ---------------------------
    // A `JobHandle` keeps the metric handles it was made with: `unrecorded`
    // was made before the recorder was installed, `recorded` after.
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap();
    let recorded = Arc::new(cache_memory.job(Items));
    let (with, without) =
        compare(&rt, 2_000, || engine_get(&recorded, &args), || engine_get(&unrecorded, &args));
    let lookups = prometheus.render();
    assert!(lookups.contains("cacheback_lookups_total{"), "the recorded HITs are counted:\n{lookups}");
    print("hit_memory_recorded_get_median", with / 1000.0, "us");
    print("hit_memory_unrecorded_get_median", without / 1000.0, "us");
    print("hit_memory_recorded_ratio", with / without, "x");

    // --- codec choice: decode of the same 100 rows ------------------------
    let data = rows();
    let json = serde_json::to_vec(&(1.0f64, Some(&data))).unwrap();
    let binary = postcard::to_allocvec(&(1.0f64, Some(&data))).unwrap();
    let (json_ns, postcard_ns) = compare(
        &rt,
        200,
        || {
            let json = json.clone();
            Box::pin(async move {
                black_box(serde_json::from_slice::<(f64, Option<Vec<Row>>)>(&json).unwrap());
            })
        },
        || {
            let binary = binary.clone();
            Box::pin(async move {
                black_box(postcard::from_bytes::<(f64, Option<Vec<Row>>)>(&binary).unwrap());
            })
        },
    );
    print("codec_json_bytes", json.len() as f64, "bytes");
    print("codec_postcard_bytes", binary.len() as f64, "bytes");
    print("codec_json_decode_100_rows_median", json_ns / 1000.0, "us");
    print("codec_postcard_decode_100_rows_median", postcard_ns / 1000.0, "us");
}
