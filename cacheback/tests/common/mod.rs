//! Shared fixtures: the seed's dummy jobs, an engine per backend (in-memory or
//! a real Redis), a manual clock and a manual (burst-mode) queue.
#![allow(dead_code)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cacheback::queue::InProcessQueue;
use cacheback::store::{CacheStore, MemoryStore, NullStore, RedisStore};
use cacheback::{Builder, Cacheback, Clock, FetchError, Job, ManualClock};

/// 2016-03-20 14:00 UTC, the seed tests' frozen time.
pub const T_14_00: f64 = 1_458_482_400.0;

pub fn at(minutes_past_14: u32) -> f64 {
    T_14_00 + f64::from(minutes_past_14) * 60.0
}

/// The Redis the tests use, and free ports: shared with the benchmarks and
/// the sandbox's tests.
pub use cacheback_test_support::{
    free_port, postgres_url, redis_cluster_nodes, redis_sentinel, redis_url, sqlite_url,
};

static PREFIXES: AtomicUsize = AtomicUsize::new(0);

/// A key prefix no other test (or test process) uses.
pub fn unique_prefix(label: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!(
        "cacheback-test:{label}:{}:{nanos}:{}:",
        std::process::id(),
        PREFIXES.fetch_add(1, Ordering::SeqCst)
    )
}

/// A store on the test Redis Cluster under `prefix`.
pub async fn cluster_store(prefix: &str) -> RedisStore {
    let nodes = redis_cluster_nodes();
    RedisStore::cluster_builder(nodes.clone()).key_prefix(prefix).connect().await.unwrap_or_else(|e| {
        panic!("these tests need the Redis Cluster of {nodes:?} (`scripts/test` starts it): {e}")
    })
}

/// A store on the master of the test Redis Sentinel group under `prefix`.
pub async fn sentinel_store(prefix: &str) -> RedisStore {
    let (master, sentinels) = redis_sentinel();
    RedisStore::sentinel_builder(cacheback::SentinelGroup::new(&master, sentinels.clone())).key_prefix(prefix).connect().await.unwrap_or_else(|e| {
        panic!("these tests need the Redis Sentinel group {master}@{sentinels:?} (`scripts/test` starts it): {e}")
    })
}

pub async fn redis_store(prefix: &str) -> RedisStore {
    let url = redis_url();
    RedisStore::builder(&url).key_prefix(prefix).connect().await.unwrap_or_else(|e| {
        panic!("these tests need a real Redis at {url} (set CACHEBACK_TEST_REDIS_URL; `scripts/test` starts one): {e}")
    })
}

/// A database store (feature `sea-orm`) on `backend`'s database under
/// `prefix`: the test PostgreSQL, or the SQLite file of `file` (the same
/// `file`, the same database), its tables created if missing.
#[cfg(feature = "sea-orm")]
pub async fn database_store(backend: Backend, file: &str, prefix: &str) -> cacheback::store::DatabaseStore {
    let url = match backend {
        Backend::Sqlite => sqlite_url(file),
        _ => postgres_url(),
    };
    let builder = cacheback::store::DatabaseStore::open(&url).await.unwrap_or_else(|e| {
        panic!("these tests need a real database at {url} (`scripts/test` creates it): {e}")
    });
    builder.key_prefix(prefix).create_tables(true).connect().await.unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
    /// A Redis store on the test Redis Cluster.
    Cluster,
    /// A Redis store on the master of the test Sentinel group.
    Sentinel,
    /// A database store on the test PostgreSQL.
    #[cfg(feature = "sea-orm")]
    Postgres,
    /// A database store on a SQLite file.
    #[cfg(feature = "sea-orm")]
    Sqlite,
}

/// What the dummy jobs share: the clock they stamp results with and a count
/// of their fetches.
#[derive(Debug, Clone)]
pub struct Env {
    pub clock: ManualClock,
    pub fetches: Arc<AtomicUsize>,
    pub delay: Duration,
    /// While set, every fetch fails with `JOB-FAILED`.
    pub failing: Arc<std::sync::atomic::AtomicBool>,
}

impl Env {
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub async fn fetch(&self, param: &str) -> Result<(String, f64), FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err("JOB-FAILED".into());
        }
        Ok((format!("JOB-EXECUTED:{param}"), self.clock.now()))
    }
}

/// Defines a dummy job (the seed's `DummyJob` family): `fetch(param)` returns
/// `("JOB-EXECUTED:<param>", now)`.
macro_rules! dummy_job {
    ($name:ident { $($policy:item)* }) => {
        #[derive(Debug, Clone)]
        pub struct $name(pub Env);
        impl Job for $name {
            type Args = (String,);
            type Output = (String, f64);
            async fn fetch(&self, (param,): &(String,)) -> Result<(String, f64), FetchError> {
                self.0.fetch(param).await
            }
            $($policy)*
        }
    };
}

dummy_job!(DummyJob {});
dummy_job!(CacheAliasDummyJob {
    fn cache_alias(&self) -> Option<&str> {
        Some("secondary")
    }
});
dummy_job!(EmptyDummyJob {
    fn fetch_on_miss(&self) -> bool {
        false
    }
});
dummy_job!(StaleDummyJob {
    fn fetch_on_stale_threshold(&self) -> Option<Duration> {
        Some(Duration::from_secs(900))
    }
});

/// The seed's `FailJob`: its fetch always fails.
#[derive(Debug, Clone, Default)]
pub struct FailJob;

impl Job for FailJob {
    type Args = (String,);
    type Output = String;
    async fn fetch(&self, _: &(String,)) -> Result<String, FetchError> {
        Err("JOB-FAILED".into())
    }
}

/// Named arguments, so the data can be passed by name to `set_call`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Param {
    pub param: String,
}

/// The seed's `CustomPayloadLabelJob`, and a sibling with the default label.
macro_rules! named_job {
    ($name:ident, $label:literal) => {
        #[derive(Debug, Clone, Default)]
        pub struct $name;
        impl Job for $name {
            type Args = Param;
            type Output = String;
            async fn fetch(&self, args: &Param) -> Result<String, FetchError> {
                Ok(format!("JOB-EXECUTED:{}", args.param))
            }
            fn set_data_kwarg(&self) -> &str {
                $label
            }
        }
    };
}

named_job!(NamedDummyJob, "data");
named_job!(CustomPayloadLabelJob, "my_cache_data");

pub fn foo() -> (String,) {
    ("foo".to_owned(),)
}

pub struct Fixture {
    pub backend: Backend,
    pub cache: Cacheback,
    pub queue: InProcessQueue,
    pub env: Env,
    pub prefix: String,
}

impl Fixture {
    pub fn clock(&self) -> &ManualClock {
        &self.env.clock
    }

    pub fn dummy(&self) -> cacheback::JobHandle<DummyJob> {
        self.cache.job(DummyJob(self.env.clone()))
    }

    pub fn empty(&self) -> cacheback::JobHandle<EmptyDummyJob> {
        self.cache.job(EmptyDummyJob(self.env.clone()))
    }

    pub fn stale(&self) -> cacheback::JobHandle<StaleDummyJob> {
        self.cache.job(StaleDummyJob(self.env.clone()))
    }

    /// Whether the store under `alias` holds `key` (the seed's `key in cache`).
    pub async fn contains(&self, alias: &str, key: &str) -> bool {
        self.cache.store(alias).unwrap().get(key).await.unwrap().is_some()
    }
}

pub struct FixtureBuilder {
    backend: Backend,
    verify: bool,
    default_alias: &'static str,
    delay: Duration,
    queue: Option<InProcessQueue>,
    refresh_queue: Option<Arc<dyn cacheback::queue::RefreshQueue>>,
    prefix: Option<String>,
    yielding: bool,
    gate: Option<Arc<Gate>>,
    local: Option<Duration>,
    coherent: bool,
    extensions: Vec<Box<dyn FnOnce(Builder) -> Builder>>,
}

pub fn fixture(backend: Backend) -> FixtureBuilder {
    FixtureBuilder {
        backend,
        verify: true,
        default_alias: "default",
        delay: Duration::ZERO,
        queue: None,
        refresh_queue: None,
        prefix: None,
        yielding: false,
        gate: None,
        local: None,
        coherent: false,
        extensions: Vec::new(),
    }
}

impl FixtureBuilder {
    pub fn verify(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }
    pub fn default_alias(mut self, alias: &'static str) -> Self {
        self.default_alias = alias;
        self
    }
    pub fn fetch_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    pub fn queue(mut self, queue: InProcessQueue) -> Self {
        self.queue = Some(queue);
        self
    }
    /// Queue refreshes on `queue` (the fixture's `queue` then stays unused).
    pub fn refresh_queue(mut self, queue: impl cacheback::queue::RefreshQueue) -> Self {
        self.refresh_queue = Some(Arc::new(queue));
        self
    }
    /// Share the Redis keys of another fixture (another "process").
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Some(prefix.to_owned());
        self
    }
    /// Adds an engine extension (a worker's context).
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.push(Box::new(move |b: Builder| b.extension(value)));
        self
    }

    /// Put a [`cacheback::LocalCache`] of this time to live in front of the `default` store.
    pub fn local(mut self, ttl: Duration) -> Self {
        self.local = Some(ttl);
        self
    }

    /// Put a coherent [`cacheback::LocalCache`] of this time to live in front
    /// of the `default` store (a Redis backend's).
    pub fn coherent_local(mut self, ttl: Duration) -> Self {
        self.local = Some(ttl);
        self.coherent = true;
        self
    }

    /// Wrap the in-memory stores in [`Yielding`] (for concurrency tests).
    pub fn yielding(mut self) -> Self {
        self.yielding = true;
        self
    }
    /// Wrap the `default` store in [`Pausing`], stopped at `gate`.
    pub fn pausing(mut self, gate: Arc<Gate>) -> Self {
        self.gate = Some(gate);
        self
    }
    pub fn env(&self) -> Env {
        Env {
            clock: ManualClock::at(T_14_00),
            fetches: Arc::new(AtomicUsize::new(0)),
            delay: self.delay,
            failing: Arc::default(),
        }
    }

    pub async fn build(self) -> Fixture {
        let env = self.env();
        self.build_with(env).await
    }

    pub async fn build_with(self, env: Env) -> Fixture {
        let prefix = self.prefix.clone().unwrap_or_else(|| unique_prefix("job"));
        let (default, secondary): (Arc<dyn CacheStore>, Arc<dyn CacheStore>) = match self.backend {
            Backend::Memory if self.yielding => {
                (Arc::new(Yielding(MemoryStore::new())), Arc::new(Yielding(MemoryStore::new())))
            }
            Backend::Memory => (Arc::new(MemoryStore::new()), Arc::new(MemoryStore::new())),
            Backend::Redis => (
                Arc::new(redis_store(&format!("{prefix}default:")).await),
                Arc::new(redis_store(&format!("{prefix}secondary:")).await),
            ),
            Backend::Cluster => (
                Arc::new(cluster_store(&format!("{prefix}default:")).await),
                Arc::new(cluster_store(&format!("{prefix}secondary:")).await),
            ),
            Backend::Sentinel => (
                Arc::new(sentinel_store(&format!("{prefix}default:")).await),
                Arc::new(sentinel_store(&format!("{prefix}secondary:")).await),
            ),
            #[cfg(feature = "sea-orm")]
            database => (
                Arc::new(database_store(database, &prefix, &format!("{prefix}default:")).await),
                Arc::new(database_store(database, &prefix, &format!("{prefix}secondary:")).await),
            ),
        };
        let default: Arc<dyn CacheStore> = match self.gate {
            Some(gate) => Arc::new(Pausing(default, gate)),
            None => default,
        };
        let queue = self.queue.unwrap_or_else(|| InProcessQueue::builder().manual().build());
        let e = env.clone();
        let builder: Builder = Cacheback::builder()
            .store_arc("default", default)
            .store_arc("secondary", secondary)
            .store("dummy", NullStore)
            .default_alias(self.default_alias)
            .verify_cache_write(self.verify)
            .clock(env.clock.clone())
            .queue_arc(self.refresh_queue.unwrap_or_else(|| Arc::new(queue.clone())));
        let mut builder = register_dummies(builder, &e);
        if let Some(ttl) = self.local {
            let local = cacheback::LocalCache::new(ttl);
            if self.coherent {
                let store = redis_store_on(self.backend, &format!("{prefix}default:")).await;
                local.keep_coherent(&store).await.unwrap();
            }
            builder = builder.local_cache("default", local);
        }
        for extend in self.extensions {
            builder = extend(builder);
        }
        Fixture { backend: self.backend, cache: builder.build().unwrap(), queue, env, prefix }
    }
}

pub fn register_dummies(builder: Builder, env: &Env) -> Builder {
    let (a, b, c, d) = (env.clone(), env.clone(), env.clone(), env.clone());
    builder
        .register(move |_| Ok(DummyJob(a.clone())))
        .register(move |_| Ok(CacheAliasDummyJob(b.clone())))
        .register(move |_| Ok(EmptyDummyJob(c.clone())))
        .register(move |_| Ok(StaleDummyJob(d.clone())))
        .register_default::<FailJob>()
        .register_default::<NamedDummyJob>()
        .register_default::<CustomPayloadLabelJob>()
}

/// [`on_every_store!`] on the multi-thread runtime (two workers), for
/// concurrency tests.
#[macro_export]
macro_rules! on_every_store_mt {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Memory).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Redis).await })*
        }
        mod cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Cluster).await })*
        }
        mod sentinel {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Sentinel).await })*
        }
        #[cfg(feature = "sea-orm")]
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Postgres).await })*
        }
        #[cfg(feature = "sea-orm")]
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Sqlite).await })*
        }
    };
}

/// Runs `body` once per backend.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name($crate::common::Backend::Memory).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $name() { super::$name($crate::common::Backend::Redis).await })*
        }
        mod cluster {
            $(#[tokio::test] async fn $name() { super::$name($crate::common::Backend::Cluster).await })*
        }
        mod sentinel {
            $(#[tokio::test] async fn $name() { super::$name($crate::common::Backend::Sentinel).await })*
        }
        #[cfg(feature = "sea-orm")]
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name($crate::common::Backend::Postgres).await })*
        }
        #[cfg(feature = "sea-orm")]
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name($crate::common::Backend::Sqlite).await })*
        }
    };
}

/// Runs `body` once per Redis topology (one server, the Cluster, the
/// Sentinel group), on the multi-thread runtime.
#[macro_export]
macro_rules! on_every_redis {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Redis).await })*
        }
        mod cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Cluster).await })*
        }
        mod sentinel {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Sentinel).await })*
        }
    };
}

/// Runs `body` once per store that processes share (Redis, and with
/// feature `sea-orm` PostgreSQL and SQLite), on the multi-thread runtime.
#[macro_export]
macro_rules! on_every_shared_store {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Redis).await })*
        }
        mod cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Cluster).await })*
        }
        mod sentinel {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Sentinel).await })*
        }
        #[cfg(feature = "sea-orm")]
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Postgres).await })*
        }
        #[cfg(feature = "sea-orm")]
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name($crate::common::Backend::Sqlite).await })*
        }
    };
}

/// Captures `cacheback` log lines for the current thread.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("cacheback=debug")
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// A real store whose operations yield to the scheduler first, so that
/// concurrent readers of the in-memory store interleave between their read and
/// their claim as they would under load. Everything is delegated to `S`.
#[derive(Debug)]
pub struct Yielding<S>(pub S);

#[async_trait::async_trait]
impl<S: CacheStore> CacheStore for Yielding<S> {
    fn representation(&self) -> cacheback::store::Representation {
        self.0.representation()
    }
    async fn get(&self, key: &str) -> Result<Option<cacheback::store::StoredValue>, cacheback::StoreError> {
        tokio::task::yield_now().await;
        self.0.get(key).await
    }
    async fn set(
        &self,
        key: &str,
        value: cacheback::store::StoredValue,
        ttl: Duration,
    ) -> Result<(), cacheback::StoreError> {
        tokio::task::yield_now().await;
        self.0.set(key, value, ttl).await
    }
    async fn replace(
        &self,
        key: &str,
        expected: Option<&cacheback::store::StoredValue>,
        value: cacheback::store::StoredValue,
        ttl: Duration,
    ) -> Result<bool, cacheback::StoreError> {
        tokio::task::yield_now().await;
        self.0.replace(key, expected, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), cacheback::StoreError> {
        self.0.delete(key).await
    }
    async fn claim(
        &self,
        key: &str,
        token: &str,
        now: f64,
        until: f64,
    ) -> Result<bool, cacheback::StoreError> {
        tokio::task::yield_now().await;
        self.0.claim(key, token, now, until).await
    }
    async fn release(&self, key: &str, token: &str) -> Result<(), cacheback::StoreError> {
        self.0.release(key, token).await
    }
    async fn is_claimed(&self, key: &str, now: f64) -> Result<bool, cacheback::StoreError> {
        self.0.is_claimed(key, now).await
    }
    async fn clear(&self) -> Result<(), cacheback::StoreError> {
        self.0.clear().await
    }
}

/// After a failover: `a` writes `param` until `b`'s coherent copy answers
/// that write (within 40 s of `since`), then one more write of `a` must
/// reach `b` within 5 s. Returns when `b` first answered, from `since`.
pub async fn copies_follow_the_failover(
    a: &Fixture,
    b: &Fixture,
    param: &(String,),
    since: std::time::Instant,
) -> Duration {
    let coherent = loop {
        if a.dummy().set(param, ("after".to_owned(), 0.0)).await.is_ok()
            && b.dummy().get(param).await.is_ok_and(|got| got.is_some_and(|got| got.0 == "after"))
        {
            break since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(40),
            "the other copy never heard of the new primary's writes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    a.dummy().set(param, ("again".to_owned(), 0.0)).await.unwrap();
    let again = std::time::Instant::now();
    while b.dummy().get(param).await.unwrap().unwrap().0 != "again" {
        assert!(
            again.elapsed() < Duration::from_secs(5),
            "a write on the new primary did not evict the other copy"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    coherent
}

/// A Redis store of a Redis `backend` (one server, the Cluster, the
/// Sentinel group's master) under `prefix`.
pub async fn redis_store_on(backend: Backend, prefix: &str) -> RedisStore {
    match backend {
        Backend::Redis => redis_store(prefix).await,
        Backend::Cluster => cluster_store(prefix).await,
        Backend::Sentinel => sentinel_store(prefix).await,
        other => panic!("{other:?} is not a Redis backend"),
    }
}

/// A real store of `backend`: a new memory store, or the test Redis under a
/// prefix of its own (`label` in it).
pub async fn store_on(backend: Backend, label: &str) -> Arc<dyn CacheStore> {
    match backend {
        Backend::Memory => Arc::new(MemoryStore::new()),
        Backend::Redis => Arc::new(redis_store(&unique_prefix(label)).await),
        Backend::Cluster => Arc::new(cluster_store(&unique_prefix(label)).await),
        Backend::Sentinel => Arc::new(sentinel_store(&unique_prefix(label)).await),
        #[cfg(feature = "sea-orm")]
        database => {
            let prefix = unique_prefix(label);
            Arc::new(database_store(database, &prefix, &prefix).await)
        }
    }
}

/// [`store_on`], its calls yielding first ([`Yielding`]).
pub async fn yielding_on(backend: Backend, label: &str) -> Arc<dyn CacheStore> {
    match backend {
        Backend::Memory => Arc::new(Yielding(MemoryStore::new())),
        Backend::Redis => Arc::new(Yielding(redis_store(&unique_prefix(label)).await)),
        Backend::Cluster => Arc::new(Yielding(cluster_store(&unique_prefix(label)).await)),
        Backend::Sentinel => Arc::new(Yielding(sentinel_store(&unique_prefix(label)).await)),
        #[cfg(feature = "sea-orm")]
        database => {
            let prefix = unique_prefix(label);
            Arc::new(Yielding(database_store(database, &prefix, &prefix).await))
        }
    }
}

/// An engine on `store` with a manual queue and `clock`, `job` registered
/// (a worker rebuilds it as a clone).
pub fn manual_engine<J: Job + Clone + 'static>(
    store: Arc<dyn CacheStore>,
    clock: &ManualClock,
    job: &J,
) -> (Cacheback, InProcessQueue) {
    let queue = InProcessQueue::builder().manual().build();
    let factory = job.clone();
    let cache = Cacheback::builder()
        .store_arc("default", store)
        .queue(queue.clone())
        .clock(clock.clone())
        .register(move |_| Ok(factory.clone()))
        .build()
        .unwrap();
    (cache, queue)
}

/// A real store with its calls counted: all of them, and its reads by kind;
/// its `get`s delayed by `read_delay` (none by default).
#[derive(Debug)]
pub struct Counting {
    pub store: Arc<dyn CacheStore>,
    pub calls: AtomicUsize,
    pub gets: AtomicUsize,
    pub get_manys: AtomicUsize,
    pub read_delay: Duration,
}

impl Counting {
    pub fn new(store: Arc<dyn CacheStore>) -> Arc<Self> {
        Self::with_read_delay(store, Duration::ZERO)
    }
    /// Each `get` takes `delay` first: long enough, in a test, for every
    /// concurrent reader to arrive while the first read is under way.
    pub fn with_read_delay(store: Arc<dyn CacheStore>, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            store,
            calls: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
            get_manys: AtomicUsize::new(0),
            read_delay: delay,
        })
    }
    /// (every call, `get`s, `get_many`s) so far.
    pub fn counts(&self) -> (usize, usize, usize) {
        let load = |n: &AtomicUsize| n.load(Ordering::SeqCst);
        (load(&self.calls), load(&self.gets), load(&self.get_manys))
    }
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl CacheStore for Counting {
    fn representation(&self) -> cacheback::store::Representation {
        self.store.representation()
    }
    async fn get(&self, key: &str) -> Result<Option<cacheback::store::StoredValue>, cacheback::StoreError> {
        self.count();
        self.gets.fetch_add(1, Ordering::SeqCst);
        if !self.read_delay.is_zero() {
            tokio::time::sleep(self.read_delay).await;
        }
        self.store.get(key).await
    }
    async fn get_many(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<cacheback::store::StoredValue>>, cacheback::StoreError> {
        self.count();
        self.get_manys.fetch_add(1, Ordering::SeqCst);
        self.store.get_many(keys).await
    }
    async fn set(
        &self,
        key: &str,
        value: cacheback::store::StoredValue,
        ttl: Duration,
    ) -> Result<(), cacheback::StoreError> {
        self.count();
        self.store.set(key, value, ttl).await
    }
    async fn replace(
        &self,
        key: &str,
        expected: Option<&cacheback::store::StoredValue>,
        value: cacheback::store::StoredValue,
        ttl: Duration,
    ) -> Result<bool, cacheback::StoreError> {
        self.count();
        self.store.replace(key, expected, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), cacheback::StoreError> {
        self.count();
        self.store.delete(key).await
    }
    async fn claim(
        &self,
        key: &str,
        token: &str,
        now: f64,
        until: f64,
    ) -> Result<bool, cacheback::StoreError> {
        self.count();
        self.store.claim(key, token, now, until).await
    }
    async fn release(&self, key: &str, token: &str) -> Result<(), cacheback::StoreError> {
        self.count();
        self.store.release(key, token).await
    }
    async fn is_claimed(&self, key: &str, now: f64) -> Result<bool, cacheback::StoreError> {
        self.count();
        self.store.is_claimed(key, now).await
    }
    async fn clear(&self) -> Result<(), cacheback::StoreError> {
        self.store.clear().await
    }
}

/// Where a [`Pausing`] store stops a reader.
#[derive(Debug, Default)]
pub struct Gate {
    armed: std::sync::atomic::AtomicBool,
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl Gate {
    /// The next `replace` (a reader's compare-and-set) waits for [`open`](Self::open).
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
    /// Returns once the armed `replace` is waiting.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }
    /// Lets the waiting `replace` go on.
    pub fn open(&self) {
        self.release.notify_one();
    }
}

/// A real store that stops one chosen `replace` (the compare-and-set a
/// reader makes after its read) until the test lets it go: the deterministic
/// way to run other readers and a worker between a reader's read and its
/// re-store.
#[derive(Debug)]
pub struct Pausing(pub Arc<dyn CacheStore>, pub Arc<Gate>);

#[async_trait::async_trait]
impl CacheStore for Pausing {
    fn representation(&self) -> cacheback::store::Representation {
        self.0.representation()
    }
    async fn get(&self, key: &str) -> Result<Option<cacheback::store::StoredValue>, cacheback::StoreError> {
        self.0.get(key).await
    }
    async fn set(
        &self,
        key: &str,
        value: cacheback::store::StoredValue,
        ttl: Duration,
    ) -> Result<(), cacheback::StoreError> {
        self.0.set(key, value, ttl).await
    }
    async fn replace(
        &self,
        key: &str,
        expected: Option<&cacheback::store::StoredValue>,
        value: cacheback::store::StoredValue,
        ttl: Duration,
    ) -> Result<bool, cacheback::StoreError> {
        if self.1.armed.swap(false, Ordering::SeqCst) {
            self.1.reached.notify_one();
            self.1.release.notified().await;
        }
        self.0.replace(key, expected, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), cacheback::StoreError> {
        self.0.delete(key).await
    }
    async fn claim(
        &self,
        key: &str,
        token: &str,
        now: f64,
        until: f64,
    ) -> Result<bool, cacheback::StoreError> {
        self.0.claim(key, token, now, until).await
    }
    async fn release(&self, key: &str, token: &str) -> Result<(), cacheback::StoreError> {
        self.0.release(key, token).await
    }
    async fn is_claimed(&self, key: &str, now: f64) -> Result<bool, cacheback::StoreError> {
        self.0.is_claimed(key, now).await
    }
    async fn clear(&self) -> Result<(), cacheback::StoreError> {
        self.0.clear().await
    }
}

/// A `redis-server` of the test's own, which it may stop and start.
pub struct PrivateRedis {
    child: std::process::Child,
    pub port: u16,
}

impl PrivateRedis {
    /// A `redis-server` on a port no other process holds: a free port can be
    /// taken by another test between the probe and the server's bind, so a
    /// server that could not bind is started again on another port.
    pub fn start_anywhere() -> Self {
        for _ in 0..10 {
            if let Some(redis) = Self::try_start(free_port()) {
                return redis;
            }
        }
        panic!("redis-server could not bind a free port in 10 tries");
    }

    /// A `redis-server` on `port` (a restart on the port of a stopped one).
    pub fn start(port: u16) -> Self {
        Self::try_start(port).unwrap_or_else(|| panic!("redis-server could not bind port {port}"))
    }

    /// `None` if the server exited (its port was taken).
    fn try_start(port: u16) -> Option<Self> {
        // Its files (a replica writes the RDB its master sends) go to the
        // temp dir, not the working tree.
        let dir = std::env::temp_dir();
        let dbfilename = format!("cacheback-test-redis-{port}.rdb");
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(["--dbfilename", &dbfilename])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test needs the redis-server binary (`scripts/test` installs it): {e}")
            });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().unwrap().is_some() {
                return None;
            }
            // Ours only if the server answering is our child, not another test's.
            if let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::Read;
                let mut info = vec![0; 8192];
                let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
                if socket.write_all(b"INFO server\r\n").is_ok()
                    && let Ok(n) = socket.read(&mut info)
                {
                    let text = String::from_utf8_lossy(&info[..n]);
                    if text.contains(&format!("process_id:{}\r\n", child.id())) {
                        return Some(Self { child, port });
                    }
                    if text.contains("process_id:") {
                        let _ = child.kill();
                        let _ = child.wait();
                        return None;
                    }
                }
            }
            assert!(std::time::Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(
            std::env::temp_dir().join(format!("cacheback-test-redis-{}.rdb", self.port)),
        );
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a Ruby script with Sidekiq loaded, pointed at the tests' Redis;
/// returns the JSON it printed on a line after `RESULT `. Ruby's Sidekiq
/// (Debian's ruby-sidekiq, which `scripts/test` installs) is required.
pub fn ruby_sidekiq(script: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let prelude = "require 'sidekiq'; require 'sidekiq/api'; require 'json'\n\
                   Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch('REDIS_URL') } }\n\
                   Sidekiq.logger.level = Logger::WARN\n";
    let output = std::process::Command::new("ruby")
        .arg("-e")
        .arg(format!("{prelude}{script}"))
        .env("REDIS_URL", redis_url())
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!("these tests need Ruby with Sidekiq (`scripts/test` installs ruby-sidekiq): {e}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "ruby failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT in {stdout}"));
    serde_json::from_str(line).unwrap()
}
