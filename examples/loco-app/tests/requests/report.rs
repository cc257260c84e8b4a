//! docs/installation.md's promises for "Your first cached page", over HTTP
//! against this app as the guide leaves it: the first request is a MISS that
//! takes the fetch's time, the second a HIT with the same report, after the
//! lifetime a STALE answered at once with the old report, and the refreshed
//! report once the background refresh has landed.
//!
//! Each test boots the app on its own SQLite file in a temporary folder.
//! `default_setup` runs with the test config as it is (no
//! `initializers.cacheback`: the in-memory store and the in-process queue, as
//! in the guide); `shared_redis_store` with a `redis` store on the test Redis
//! (`CACHEBACK_TEST_REDIS_URL`, default db 15) under a key prefix of its own,
//! and fails if that Redis is not there. They take turns: the app installs
//! the process's global engine, which `#[cacheback]` functions use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loco_rs::app::{AppContext, Hooks};
use loco_rs::boot::StartMode;
use loco_rs::config::Config;
use loco_rs::environment::Environment;
use loco_rs::task::Vars;
use loco_rs::TestServer;
use myapp::app::App;
use myapp::controllers::report::slow_report;
use redis::AsyncCommands;

/// The controller's fetch time and lifetime (`src/controllers/report.rs`).
const FETCH: Duration = Duration::from_secs(1);
/// An answer from the cache: well under the fetch time.
const IMMEDIATE: Duration = Duration::from_millis(500);
/// The job name the guide gives for `cargo loco task cacheback ... job:`.
const JOB: &str = "myapp::controllers::report::slow_report";

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A temporary folder for the test's SQLite file, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("myapp-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The app booted as `cargo loco start` would (test environment), on its own
/// SQLite file, with `initializers.cacheback` set to `cacheback` if given.
async fn boot(db: &TempDir, cacheback: Option<serde_json::Value>) -> (TestServer, AppContext) {
    // This app's `config/`, by path: `LOCO_CONFIG_FOLDER`, which loco reads
    // otherwise, is the sandbox's when cargo runs from the workspace's root.
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut config =
        Config::from_folder(&Environment::Test, &folder).expect("config/test.yaml loads");
    assert!(
        config
            .logger
            .override_filter
            .as_deref()
            .is_some_and(|f| f.contains("myapp=")),
        "this app's config/test.yaml, not another app's"
    );
    assert!(
        config
            .initializers
            .as_ref()
            .is_none_or(|all| !all.contains_key("cacheback")),
        "the test config is the guide's: no `initializers.cacheback`"
    );
    config.database.uri = format!("sqlite://{}?mode=rwc", db.0.join("test.sqlite").display());
    if let Some(settings) = cacheback {
        config
            .initializers
            .get_or_insert_default()
            .insert("cacheback".to_owned(), settings);
    }
    let boot = App::boot(StartMode::ServerOnly, &Environment::Test, config)
        .await
        .unwrap_or_else(|err| panic!("the app does not boot: {err}"));
    let router = boot.router.expect("a server's router");
    let server =
        TestServer::new(router.into_make_service_with_connect_info::<SocketAddr>()).unwrap();
    (server, boot.app_context)
}

/// GET /report/bob: the body, and how long the answer took.
async fn report(server: &TestServer) -> (String, Duration) {
    let started = Instant::now();
    let response = server.get("/report/bob").await;
    let took = started.elapsed();
    response.assert_status_ok();
    (response.text(), took)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// MISS, HIT, STALE, refreshed: the guide's promises, on whatever store the
/// app was booted with. Returns the refreshed report.
async fn first_page_promises(server: &TestServer, ctx: &AppContext) -> String {
    let cache = cacheback::loco::from_context(ctx).expect("the initializer stored the engine");
    assert!(
        cache.is_registered(JOB),
        "{JOB} not in {:?}",
        cache.registered_jobs()
    );

    let (first, miss) = report(server).await;
    assert!(first.starts_with("report for bob, built at "), "{first}");
    assert!(
        miss >= FETCH,
        "the first request is a MISS that fetches: {miss:?}"
    );
    assert!(
        miss < FETCH * 5,
        "a MISS takes about the fetch time: {miss:?}"
    );

    let (second, took) = report(server).await;
    assert_eq!(
        second, first,
        "the second request is a HIT with the same report"
    );
    assert!(took < IMMEDIATE, "a HIT does not fetch: {took:?}");

    // The item goes stale at its expiry: nothing but the clock moves it
    // there, so wait for that time (read from the item, not guessed).
    let item = slow_report::job(ctx)
        .unwrap()
        .raw_get(&("bob".to_owned(),))
        .await
        .unwrap()
        .expect("the MISS cached its report");
    assert_eq!(item.data.as_deref(), Some(&first));
    // Fresh for the attribute's 5 s from the fetch's end (`fetched_at` is
    // its start).
    let fetched_at = item.fetched_at.expect("a fetched item knows when");
    let lifetime = item.expiry - fetched_at;
    assert!(
        (5.0..=5.0 + miss.as_secs_f64()).contains(&lifetime),
        "fresh for the attribute's 5 s after a fetch of {miss:?}: {lifetime}"
    );
    let left = (item.expiry - now()).max(0.0);
    tokio::time::sleep(Duration::from_secs_f64(left + 0.05)).await;

    let (stale, took) = report(server).await;
    assert_eq!(stale, first, "a STALE read answers with the old report");
    assert!(
        took < IMMEDIATE,
        "a STALE read answers at once, the refresh runs in the background: {took:?}"
    );

    // The refresh lands about a fetch later; until then every read answers
    // at once with the old report.
    let deadline = Instant::now() + FETCH * 10;
    let refreshed = loop {
        let (body, took) = report(server).await;
        assert!(
            took < IMMEDIATE,
            "reads during the refresh answer at once: {took:?}"
        );
        if body != first {
            break body;
        }
        assert!(Instant::now() < deadline, "the refresh never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refreshed.starts_with("report for bob, built at "),
        "{refreshed}"
    );
    let (again, took) = report(server).await;
    assert_eq!(again, refreshed, "the refreshed report is cached");
    assert!(took < IMMEDIATE, "and served as a HIT: {took:?}");
    refreshed
}

#[tokio::test]
async fn default_setup() {
    let _turn = TURN.lock().await;
    let db = TempDir::new("default");
    let (server, ctx) = boot(&db, None).await;
    let cache = cacheback::loco::from_context(&ctx).unwrap();
    assert_eq!(
        cache.aliases(),
        ["default"],
        "no `initializers.cacheback`: one in-memory store"
    );
    first_page_promises(&server, &ctx).await;
}

/// The same promises with the guide's shared Redis store; the item in Redis
/// has the format docs/advanced.md describes; the operator's task, registered
/// in `Hooks::register_tasks`, knows the job by the name the guide gives.
#[tokio::test]
async fn shared_redis_store() {
    let _turn = TURN.lock().await;
    let url = cacheback_test_support::redis_url();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("myapp-test-{}-{nanos}:", std::process::id());
    let settings = serde_json::json!({
        "caches": { "default": { "backend": "redis", "url": url, "key_prefix": prefix } },
    });
    let db = TempDir::new("redis");
    let (server, ctx) = boot(&db, Some(settings)).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| panic!("the test Redis at {url} (CACHEBACK_TEST_REDIS_URL): {err}"));

    let refreshed = first_page_promises(&server, &ctx).await;

    let keys: Vec<String> = {
        let mut scan = redis
            .scan_match::<_, String>(format!("{prefix}*"))
            .await
            .unwrap();
        let mut keys = Vec::new();
        while let Some(key) = scan.next_item().await {
            keys.push(key.unwrap());
        }
        keys
    };
    assert_eq!(keys.len(), 1, "one item, nothing else: {keys:?}");
    assert!(
        keys[0].starts_with(&format!("{prefix}item:{JOB}:")),
        "{keys:?}"
    );
    let raw: String = redis.get(&keys[0]).await.unwrap();
    let item: serde_json::Value = serde_json::from_str(&raw).unwrap();
    // docs/advanced.md, "The item format": [expiry, data, {"fetched_at": t, "took": d}].
    let fields = item
        .as_array()
        .unwrap_or_else(|| panic!("a JSON array: {raw}"));
    assert_eq!(fields.len(), 3, "{raw}");
    assert!(fields[0].is_f64(), "{raw}");
    assert_eq!(fields[1], serde_json::json!(refreshed), "{raw}");
    assert!(
        fields[2]["fetched_at"].as_f64().unwrap() < fields[0].as_f64().unwrap(),
        "{raw}"
    );
    assert!(
        fields[2]["took"].as_f64().is_some_and(|took| took >= 0.0),
        "{raw}"
    );

    // `cargo loco task cacheback command:delete job:<the name> 'args:["bob"]'`:
    // the next request is a MISS again.
    let vars = |pairs: &[(&str, &str)]| {
        Vars::from_cli_args(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    };
    let task = Some("cacheback".to_owned());
    loco_rs::boot::run_task::<App>(&ctx, task.as_ref(), &vars(&[("command", "stats")]))
        .await
        .unwrap();
    let delete = vars(&[("command", "delete"), ("job", JOB), ("args", r#"["bob"]"#)]);
    loco_rs::boot::run_task::<App>(&ctx, task.as_ref(), &delete)
        .await
        .unwrap();
    let (after, took) = report(&server).await;
    assert_ne!(after, refreshed, "deleted: fetched anew");
    assert!(took >= FETCH, "a MISS again: {took:?}");

    let _: () = redis.del(&keys).await.unwrap();
}
