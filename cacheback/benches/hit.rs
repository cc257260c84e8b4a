//! A HIT on a 100-row payload, against its same-run floors and the closest
//! Rust peer, [amalgam-cache](https://crates.io/crates/amalgam-cache) (the
//! Rust port of .NET FusionCache).
//!
//! Run: `cargo bench -p cacheback --bench hit` (needs Redis at
//! `CACHEBACK_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/15`).
//!
//! Prints `name value unit` lines. The contenders of a group take turns,
//! round after round, so that all of them see the same machine state. A
//! median is over batches of 32 calls timed together (per call); a 99th
//! percentile over calls timed one by one, so that it shows the slow call a
//! batch would hide (and includes the timer's ~40 ns).
//!
//! * `memory`: cacheback's `get` on a [`MemoryStore`]; the peer's
//!   `get_or_set` and `try_get` with the value in its memory level; the moka
//!   floor, `moka::sync::Cache::get` of the same `Arc` (moka as
//!   `MemoryStore` used to configure it); the store floor,
//!   `CacheStore::get` of the item and its downcast.
//! * `local`: cacheback's `get` on a [`RedisStore`] with a [`LocalCache`] in
//!   front (`get`: a copy living its time to live; `coherent_get`: a copy
//!   kept coherent by Redis's invalidations, `LocalCache::keep_coherent`);
//!   the peer's `get_or_set` with Redis as its distributed level and the
//!   value in its memory level.
//! * `redis`: cacheback's `get` on a `RedisStore` alone, against a raw `GET`
//!   of the same key on the same kind of connection and the JSON decode of
//!   its bytes.
//! * `hit_*_tagged`: the same HIT of an item with a tag (which reads its
//!   tag's version with it: one `MGET` of two keys on Redis) against the
//!   untagged one.
//! * `hit_postgres` (with `--features sea-orm`; needs PostgreSQL at
//!   `CACHEBACK_TEST_POSTGRES_URL`): cacheback's `get` on a `DatabaseStore`,
//!   against a raw `SELECT` of the same row through the same driver and the
//!   JSON decode of its bytes.
//! * `many_redis_100`: `get_many` of 100 one-row HITs on Redis, against its
//!   floor (one raw `MGET` of the 100 keys and the decode of each value) and
//!   against 100 `get`s one after another.
//! * `recorded`: the in-memory `get` through a handle made after a Prometheus
//!   recorder was installed, against one made before (the facade's no-op).
//! * `codec`: the decode of the same 100 rows from JSON and from postcard.
//!
//! `HIT_PROFILE=memory` (or `local`, or `peer`) runs only 100,000 in-memory
//! (or local-copy, or the peer's in-memory) HITs, for an instruction profile
//! of one HIT (`many` and `many_floor`: 1,000 bulk reads of 100 HITs on
//! Redis, or their floor):
//! `HIT_PROFILE=memory valgrind --tool=callgrind target/release/deps/hit-<hash>`
//! and `callgrind_annotate --inclusive=yes` (docs/advanced.md has the
//! breakdown).

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amalgam::provider::{DistributedCache, DistributedSerializer, JsonSerializer, RedisDistributedCache};
use amalgam::{EntryOptions, FactoryContext};
use cacheback::store::{CacheStore, MemoryStore, RedisStore, StoredValue};
use cacheback::{Cacheback, CachedItem, FetchError, Job, LocalCache};
use chrono::{DateTime, FixedOffset};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// A row shaped like the sandbox's `DummyModel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    id: i32,
    name: String,
    date_created: DateTime<FixedOffset>,
}

type Rows = Arc<Vec<Row>>;

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

/// [`Items`] with a tag, as the ORM jobs tag theirs: its HIT reads the item
/// and the tag's version together.
#[derive(Default)]
struct TaggedItems;

impl Job for TaggedItems {
    type Args = (String,);
    type Output = Vec<Row>;
    async fn fetch(&self, _: &(String,)) -> Result<Vec<Row>, FetchError> {
        Ok(rows())
    }
    fn tags(&self, _: &(String,)) -> Vec<String> {
        vec!["dummy_models".to_owned()]
    }
}

/// One row by id: what a bulk read reads a hundred of.
#[derive(Default)]
struct OneRow;

impl Job for OneRow {
    type Args = (i32,);
    type Output = Row;
    async fn fetch(&self, (id,): &(i32,)) -> Result<Row, FetchError> {
        Ok(rows().remove(usize::try_from(*id).unwrap_or(0) % 100))
    }
}

/// Rounds of each group; each contender runs `calls` timed calls per round.
const ROUNDS: usize = 20;

/// Calls timed together for a median: the timer's own cost (two `Instant`
/// reads, ~40 ns here) is spread over them instead of added to each call.
const BATCH: usize = 32;

/// One contender: `samples` samples of `batch` calls each, timed together,
/// appended to `out` in nanoseconds per call.
trait Contender {
    fn sample(&mut self, rt: &Runtime, samples: usize, batch: usize, out: &mut Vec<f64>);
}

struct Calls<F>(F);

impl<F: AsyncFnMut()> Contender for Calls<F> {
    fn sample(&mut self, rt: &Runtime, samples: usize, batch: usize, out: &mut Vec<f64>) {
        rt.block_on(async {
            for _ in 0..samples {
                let start = Instant::now();
                for _ in 0..batch {
                    (self.0)().await;
                }
                out.push(start.elapsed().as_nanos() as f64 / batch as f64);
            }
        });
    }
}

fn calls<'a>(f: impl AsyncFnMut() + 'a) -> Box<dyn Contender + 'a> {
    Box::new(Calls(f))
}

/// Each contender's median and 99th percentile, in microseconds, the
/// contenders taking turns for [`ROUNDS`] rounds (after one round of
/// warm-up) of `calls` calls each: the median over batches of [`BATCH`]
/// calls, the 99th percentile over calls timed one by one (the timer
/// included).
fn race(rt: &Runtime, calls: usize, contenders: &mut [(&str, Box<dyn Contender + '_>)]) -> Vec<(f64, f64)> {
    let batches = calls.div_ceil(BATCH);
    let mut medians: Vec<Vec<f64>> = contenders.iter().map(|_| Vec::new()).collect();
    let mut tails: Vec<Vec<f64>> = contenders.iter().map(|_| Vec::new()).collect();
    for (_, contender) in contenders.iter_mut() {
        contender.sample(rt, calls, 1, &mut Vec::with_capacity(calls));
    }
    for _ in 0..ROUNDS {
        for (((_, contender), median), tail) in contenders.iter_mut().zip(&mut medians).zip(&mut tails) {
            contender.sample(rt, batches, BATCH, median);
            contender.sample(rt, calls, 1, tail);
        }
    }
    let at = |mut xs: Vec<f64>, q: f64| {
        xs.sort_by(f64::total_cmp);
        xs[((xs.len() - 1) as f64 * q).round() as usize] / 1000.0
    };
    medians.into_iter().zip(tails).map(|(median, tail)| (at(median, 0.5), at(tail, 0.99))).collect()
}

/// Prints each contender's median and p99 as `<group>_<name>_median` and
/// `<group>_<name>_p99`; returns the medians.
fn report(group: &str, names: &[&str], figures: &[(f64, f64)]) -> Vec<f64> {
    for (name, (median, p99)) in names.iter().zip(figures) {
        print(&format!("{group}_{name}_median"), *median, "us");
        print(&format!("{group}_{name}_p99"), *p99, "us");
    }
    figures.iter().map(|(median, _)| *median).collect()
}

fn print(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
}

fn check(rows: &[Row]) {
    assert_eq!(rows.len(), 100);
}

/// The peer's factory for the same rows (never run on a HIT).
async fn peer_fetch(_: FactoryContext<Rows>) -> Result<Rows, Infallible> {
    Ok(Arc::new(rows()))
}

/// The peer with a ten-minute lifetime, like the job's; Redis as its
/// distributed level if given.
fn peer(l2: Option<RedisDistributedCache>, prefix: &str) -> amalgam::Cache<Rows> {
    let builder = amalgam::Cache::builder()
        .default_options(EntryOptions::new(Duration::from_secs(600)))
        .key_prefix(prefix);
    let builder = match l2 {
        Some(l2) => builder
            .distributed(Arc::new(l2) as Arc<dyn DistributedCache>)
            .serializer(Arc::new(JsonSerializer) as Arc<dyn DistributedSerializer<Rows>>),
        None => builder,
    };
    builder.try_build().unwrap()
}

/// `HIT_PROFILE`: 100,000 HITs of one kind alone, for an instruction profile.
fn profile(rt: &Runtime, kind: &str) {
    let args = ("Item_1".to_owned(),);
    if kind == "peer" {
        let peer = peer(None, "cacheback-bench-peer:");
        return rt.block_on(async {
            peer.set("Item_1", Arc::new(rows())).await.unwrap();
            for _ in 0..100_000 {
                check(&peer.get_or_set("Item_1", peer_fetch).await.unwrap());
            }
        });
    }
    if kind == "many" || kind == "many_floor" {
        return rt.block_on(profile_many(kind == "many"));
    }
    let builder = Cacheback::builder().register_default::<Items>();
    let builder = match kind {
        "memory" => builder,
        "local" => builder.local_cache("default", LocalCache::new(Duration::from_secs(600))),
        other => panic!("HIT_PROFILE is `memory`, `local`, `peer`, `many` or `many_floor`, not `{other}`"),
    };
    let job = builder.build().unwrap().job(Items);
    rt.block_on(async {
        job.refresh(&args).await.unwrap();
        for _ in 0..100_000 {
            check(&job.get(&args).await.unwrap().unwrap());
        }
    });
}

/// 1,000 `get_many` of 100 one-row HITs on Redis (`engine`), or of their
/// floor, one raw `MGET` and the decode of each value.
async fn profile_many(engine: bool) {
    let url = cacheback_test_support::redis_url();
    let prefix = format!("cacheback-bench-many:{}:", std::process::id());
    let store = RedisStore::builder(&url).key_prefix(&prefix).connect().await.unwrap();
    let one_row = Cacheback::builder().store("default", store.clone()).build().unwrap().job(OneRow);
    let ids: Vec<(i32,)> = (0..100).map(|id| (id,)).collect();
    for id in &ids {
        one_row.refresh(id).await.unwrap();
    }
    let keys: Vec<String> =
        ids.iter().map(|id| format!("{prefix}item:{}", one_row.key(id).unwrap())).collect();
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_connection_manager().await.unwrap();
    for _ in 0..1_000 {
        if engine {
            black_box(one_row.get_many(&ids).await.unwrap());
        } else {
            black_box(mget_decoded(&mut conn, &keys).await);
        }
    }
    store.clear().await.unwrap();
}

/// The floor of a bulk read: one raw `MGET` of `keys` and the decode of each
/// value's data.
async fn mget_decoded(conn: &mut redis::aio::ConnectionManager, keys: &[String]) -> Vec<Option<Arc<Row>>> {
    let values: Vec<Vec<u8>> = redis::cmd("MGET").arg(keys).query_async(conn).await.unwrap();
    values
        .iter()
        .map(|bytes| {
            let (_expiry, row, _meta): (f64, Option<Row>, serde::de::IgnoredAny) =
                serde_json::from_slice(bytes).unwrap();
            row.map(Arc::new)
        })
        .collect()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The peer starts its background tasks when it is built.
    let _in_runtime = rt.enter();
    if let Ok(kind) = std::env::var("HIT_PROFILE") {
        return profile(&rt, &kind);
    }
    let args = ("Item_1".to_owned(),);
    let key = "Item_1";

    // --- in memory ---------------------------------------------------------
    let memory = MemoryStore::new();
    let cache_memory =
        Cacheback::builder().store("default", memory.clone()).register_default::<Items>().build().unwrap();
    let job = cache_memory.job(Items);
    let store_key = job.key(&args).unwrap();
    rt.block_on(job.refresh(&args)).unwrap();
    let peer_memory = peer(None, "cacheback-bench-peer:");
    rt.block_on(async { peer_memory.set(key, Arc::new(rows())).await }).unwrap();
    let moka: moka::sync::Cache<String, Rows> = moka::sync::Cache::builder().max_capacity(10_000).build();
    moka.insert(key.to_owned(), Arc::new(rows()));

    let names = ["get", "peer_get_or_set", "peer_try_get", "moka_floor", "store_floor"];
    let figures = race(
        &rt,
        2_000,
        &mut [
            (names[0], calls(async || check(&job.get(&args).await.unwrap().unwrap()))),
            (names[1], calls(async || check(&peer_memory.get_or_set(key, peer_fetch).await.unwrap()))),
            (names[2], calls(async || check(&peer_memory.try_get(key).await.unwrap().unwrap()))),
            (names[3], calls(async || check(&moka.get(key).unwrap()))),
            (
                names[4],
                calls(async || {
                    let Some(StoredValue::Shared(any)) = memory.get(&store_key).await.unwrap() else {
                        panic!("missing")
                    };
                    let item = any.downcast::<CachedItem<Vec<Row>>>().unwrap();
                    check(item.data.as_ref().unwrap());
                }),
            ),
        ],
    );
    let medians = report("hit_memory", &names, &figures);
    print("hit_memory_peer_ratio", medians[0] / medians[1], "x");
    print("hit_memory_moka_floor_ratio", medians[0] / medians[3], "x");

    // A tagged item: its HIT also reads its tag's version.
    let tagged_memory =
        Cacheback::builder().store("default", MemoryStore::new()).build().unwrap().job(TaggedItems);
    rt.block_on(tagged_memory.refresh(&args)).unwrap();
    let names = ["tagged_get", "get"];
    let figures = race(
        &rt,
        2_000,
        &mut [
            (names[0], calls(async || check(&tagged_memory.get(&args).await.unwrap().unwrap()))),
            (names[1], calls(async || check(&job.get(&args).await.unwrap().unwrap()))),
        ],
    );
    let medians = report("hit_memory", &names, &figures);
    print("hit_memory_tagged_ratio", medians[0] / medians[1], "x");

    // --- Redis with a local copy, and Redis alone ----------------------------
    let url = cacheback_test_support::redis_url();
    let prefix = format!("cacheback-bench:{}:", std::process::id());
    let store = rt
        .block_on(RedisStore::builder(&url).key_prefix(&prefix).connect())
        .unwrap_or_else(|e| panic!("the Redis benchmark needs Redis at {url}: {e}"));
    let local = Cacheback::builder()
        .store("default", store.clone())
        .local_cache("default", LocalCache::new(Duration::from_secs(60)))
        .register_default::<Items>()
        .build()
        .unwrap();
    let local_job = local.job(Items);
    rt.block_on(local_job.refresh(&args)).unwrap();
    let coherent_copy = LocalCache::new(Duration::from_secs(60));
    rt.block_on(coherent_copy.keep_coherent(&store)).unwrap();
    let coherent = Cacheback::builder()
        .store("default", store.clone())
        .local_cache("default", coherent_copy)
        .register_default::<Items>()
        .build()
        .unwrap();
    let coherent_job = coherent.job(Items);
    check(&rt.block_on(coherent_job.get(&args)).unwrap().unwrap());
    let l2 = rt.block_on(RedisDistributedCache::connect(url.as_str())).unwrap();
    let peer_prefix = format!("cacheback-bench-peer:{}:", std::process::id());
    let peer_local = peer(Some(l2), &peer_prefix);
    rt.block_on(async { peer_local.get_or_set(key, peer_fetch).await }).unwrap();

    let names = ["get", "peer_get_or_set", "moka_floor", "coherent_get"];
    let figures = race(
        &rt,
        2_000,
        &mut [
            (names[0], calls(async || check(&local_job.get(&args).await.unwrap().unwrap()))),
            (names[1], calls(async || check(&peer_local.get_or_set(key, peer_fetch).await.unwrap()))),
            (names[2], calls(async || check(&moka.get(key).unwrap()))),
            (names[3], calls(async || check(&coherent_job.get(&args).await.unwrap().unwrap()))),
        ],
    );
    let medians = report("hit_redis_local", &names, &figures);
    print("hit_redis_local_peer_ratio", medians[0] / medians[1], "x");
    print("hit_redis_local_coherent_ratio", medians[3] / medians[0], "x");

    let cache =
        Cacheback::builder().store("default", store.clone()).register_default::<Items>().build().unwrap();
    let redis_job = cache.job(Items);
    let raw_key = format!("{prefix}item:{store_key}");
    let conn = rt.block_on(redis::Client::open(url.as_str()).unwrap().get_connection_manager()).unwrap();
    let payload: Vec<u8> = rt.block_on(conn.clone().get::<_, Vec<u8>>(&raw_key)).unwrap();
    print("redis_item_size", payload.len() as f64, "bytes");
    let names = ["get", "floor"];
    let figures = race(
        &rt,
        200,
        &mut [
            (names[0], calls(async || check(&redis_job.get(&args).await.unwrap().unwrap()))),
            (
                names[1],
                calls(async || {
                    let bytes: Vec<u8> = conn.clone().get(&raw_key).await.unwrap();
                    let (_expiry, rows, _fetched): (f64, Option<Vec<Row>>, serde::de::IgnoredAny) =
                        serde_json::from_slice(&bytes).unwrap();
                    check(&black_box(rows).unwrap());
                }),
            ),
        ],
    );
    let medians = report("hit_redis", &names, &figures);
    print("hit_redis_floor_ratio", medians[0] / medians[1], "x");

    // A tagged item on Redis: the item and its tag's version in one `MGET`.
    let tagged_redis = cache.job(TaggedItems);
    rt.block_on(tagged_redis.refresh(&args)).unwrap();
    let names = ["tagged_get", "get"];
    let figures = race(
        &rt,
        200,
        &mut [
            (names[0], calls(async || check(&tagged_redis.get(&args).await.unwrap().unwrap()))),
            (names[1], calls(async || check(&redis_job.get(&args).await.unwrap().unwrap()))),
        ],
    );
    let medians = report("hit_redis", &names, &figures);
    print("hit_redis_tagged_ratio", medians[0] / medians[1], "x");

    // A bulk read of 100 HITs on Redis, against one raw `MGET` of the same
    // keys and the decode of each value, and against 100 `get`s in a row.
    let one_row = cache.job(OneRow);
    let ids: Vec<(i32,)> = (0..100).map(|id| (id,)).collect();
    for id in &ids {
        rt.block_on(one_row.refresh(id)).unwrap();
    }
    let raw_keys: Vec<String> =
        ids.iter().map(|id| format!("{prefix}item:{}", one_row.key(id).unwrap())).collect();
    let check_100 =
        |found: &[Option<Arc<Row>>]| assert!(found.len() == 100 && found.iter().all(Option::is_some));
    let names = ["get_many", "mget_floor", "sequential_get"];
    let figures = race(
        &rt,
        20,
        &mut [
            (names[0], calls(async || check_100(&one_row.get_many(&ids).await.unwrap()))),
            (
                names[1],
                calls(async || check_100(black_box(&mget_decoded(&mut conn.clone(), &raw_keys).await))),
            ),
            (
                names[2],
                calls(async || {
                    let mut found = Vec::with_capacity(ids.len());
                    for id in &ids {
                        found.push(one_row.get(id).await.unwrap());
                    }
                    check_100(&found);
                }),
            ),
        ],
    );
    let medians = report("many_redis_100", &names, &figures);
    print("many_redis_100_floor_ratio", medians[0] / medians[1], "x");
    print("many_redis_100_sequential_ratio", medians[0] / medians[2], "x");
    rt.block_on(store.clear()).unwrap();
    rt.block_on(async { peer_local.remove(key).await }).unwrap();
    rt.block_on(peer_local.shutdown()).unwrap();

    #[cfg(feature = "sea-orm")]
    postgres(&rt, &args);

    // --- metrics: the same in-memory HIT, recorded -----------------------------
    // A `JobHandle` keeps the metric handles it was made with: `job` was made
    // before the recorder was installed, `recorded` after.
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap();
    let recorded = cache_memory.job(Items);
    let names = ["recorded_get", "unrecorded_get"];
    let figures = race(
        &rt,
        2_000,
        &mut [
            (names[0], calls(async || check(&recorded.get(&args).await.unwrap().unwrap()))),
            (names[1], calls(async || check(&job.get(&args).await.unwrap().unwrap()))),
        ],
    );
    let lookups = prometheus.render();
    assert!(lookups.contains("cacheback_lookups_total{"), "the recorded HITs are counted:\n{lookups}");
    let medians = report("hit_memory", &names, &figures);
    print("hit_memory_recorded_ratio", medians[0] / medians[1], "x");

    // --- codec choice: decode of the same 100 rows --------------------------
    let data = rows();
    let json = serde_json::to_vec(&(1.0f64, Some(&data))).unwrap();
    let binary = postcard::to_allocvec(&(1.0f64, Some(&data))).unwrap();
    let names = ["json_decode_100_rows", "postcard_decode_100_rows"];
    let figures = race(
        &rt,
        100,
        &mut [
            (
                names[0],
                calls(async || {
                    black_box(serde_json::from_slice::<(f64, Option<Vec<Row>>)>(&json).unwrap());
                }),
            ),
            (
                names[1],
                calls(async || {
                    black_box(postcard::from_bytes::<(f64, Option<Vec<Row>>)>(&binary).unwrap());
                }),
            ),
        ],
    );
    print("codec_json_bytes", json.len() as f64, "bytes");
    print("codec_postcard_bytes", binary.len() as f64, "bytes");
    report("codec", &names, &figures);
}

/// `hit_postgres`: cacheback's `get` on a `DatabaseStore` on PostgreSQL
/// (feature `sea-orm`), against its floor: a raw `SELECT` of the same row's
/// value through the same driver (sea-orm on sqlx) and the JSON decode of
/// its bytes.
#[cfg(feature = "sea-orm")]
fn postgres(rt: &Runtime, args: &(String,)) {
    use cacheback::store::{DatabaseStore, ITEMS_TABLE};
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    let url = cacheback_test_support::postgres_url();
    let prefix = format!("cacheback-bench:{}:", std::process::id());
    let db = rt
        .block_on(sea_orm::Database::connect(url.as_str()))
        .unwrap_or_else(|e| panic!("the PostgreSQL benchmark needs a database at {url}: {e}"));
    let store = rt
        .block_on(DatabaseStore::builder(db.clone()).key_prefix(&prefix).create_tables(true).connect())
        .unwrap();
    let cache =
        Cacheback::builder().store("default", store.clone()).register_default::<Items>().build().unwrap();
    let job = cache.job(Items);
    rt.block_on(job.refresh(args)).unwrap();
    let key = job.key(args).unwrap();
    let sql = format!("SELECT value FROM {ITEMS_TABLE} WHERE prefix = $1 AND cache_key = $2");
    let names = ["get", "floor"];
    let figures = race(
        rt,
        200,
        &mut [
            (names[0], calls(async || check(&job.get(args).await.unwrap().unwrap()))),
            (
                names[1],
                calls(async || {
                    let values = [prefix.as_str().into(), key.as_str().into()];
                    let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql.as_str(), values);
                    let row = db.query_one_raw(statement).await.unwrap().unwrap();
                    let bytes: Vec<u8> = row.try_get_by_index(0).unwrap();
                    let (_expiry, rows, _fetched): (f64, Option<Vec<Row>>, serde::de::IgnoredAny) =
                        serde_json::from_slice(&bytes).unwrap();
                    check(&black_box(rows).unwrap());
                }),
            ),
        ],
    );
    let medians = report("hit_postgres", &names, &figures);
    print("hit_postgres_floor_ratio", medians[0] / medians[1], "x");
    rt.block_on(store.clear()).unwrap();
}
