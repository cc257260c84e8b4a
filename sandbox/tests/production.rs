//! End to end in production mode: real PostgreSQL, real Redis, a web process
//! (`sandbox-cli start`) and a worker process (`sandbox-cli start --worker`),
//! talking over HTTP and through Sidekiq queues.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use cacheback_test_support::redis_url;
use redis::Commands;
use sandbox::cached::KEYED_SOFT_TIMEOUT;
use support::*;

/// One production deployment of the sandbox: its database, Redis keys and queue.
struct Deployment {
    env: Vec<(&'static str, String)>,
    queue: String,
    redis: redis::Connection,
    database: String,
}

impl Deployment {
    fn new() -> Self {
        let id = format!("{}_{}", std::process::id(), now_nanos() % 1_000_000);
        let database = format!("cacheback_e2e_{id}");
        psql(&format!("CREATE DATABASE {database}"));
        let redis_url = redis_url();
        let redis =
            redis::Client::open(redis_url.as_str()).and_then(|c| c.get_connection()).unwrap_or_else(|e| {
                panic!("this test needs Redis at {redis_url} (`scripts/test` starts it): {e}")
            });
        let queue = format!("cacheback-e2e-{id}");
        let env = vec![
            ("LOCO_ENV", "production".to_owned()),
            ("DATABASE_URL", format!("{}/{database}", postgres_server())),
            ("REDIS_URL", redis_url),
            ("CACHEBACK_QUEUE", queue.clone()),
            ("CACHEBACK_KEY_PREFIX", format!("cacheback-e2e:{id}:")),
            ("VANILLA_DELAY_MS", "200".to_owned()),
        ];
        Self { env, queue, redis, database }
    }

    /// Starts `sandbox-cli start <args>`, its logs (stdout) going to a
    /// file; returns it and its port.
    fn start(&self, args: &[&str]) -> Process {
        Process::start(&self.env, args)
    }

    fn queued(&mut self) -> usize {
        self.redis.llen(format!("queue:{}", self.queue)).unwrap()
    }

    /// Runs `sandbox-cli task cacheback <args>` to its end: whether it
    /// succeeded, its stdout and its stderr.
    fn task(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
            .args(["task", "cacheback"])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        (output.status.success(), text(output.stdout), text(output.stderr))
    }

    /// The Redis key of the item cached under `key`.
    fn item_key(&self, key: &str) -> String {
        let prefix = &self.env.iter().find(|(k, _)| *k == "CACHEBACK_KEY_PREFIX").unwrap().1;
        format!("{prefix}item:{key}")
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _: Result<(), _> = self.redis.del(format!("queue:{}", self.queue));
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database));
    }
}

#[test]
fn the_sandbox_in_production() {
    in_production(Deployment::new());
}

/// The same, the cache on the test Redis Cluster (`CACHEBACK_REDIS_CLUSTER`;
/// the Sidekiq queue stays on `REDIS_URL`); then the operator's task counts
/// and clears the store on every primary.
#[test]
fn the_sandbox_in_production_on_a_redis_cluster() {
    let mut deployment = Deployment::new();
    deployment.env.push(("CACHEBACK_REDIS_CLUSTER", cacheback_test_support::redis_cluster_nodes().join(",")));
    let mut deployment = in_production(deployment);
    let on_redis: Vec<String> =
        redis::cmd("KEYS").arg(deployment.item_key("*")).query(&mut deployment.redis).unwrap();
    assert!(on_redis.is_empty(), "no item on REDIS_URL, where the queue is: {on_redis:?}");
    the_task_counts_and_clears_the_store(&deployment);
}

/// The same, the cache and the Sidekiq queue (client and worker) behind the
/// test Redis Sentinel group (`CACHEBACK_REDIS_SENTINEL`); then the
/// operator's task counts and clears the store on the master.
#[test]
fn the_sandbox_in_production_behind_redis_sentinel() {
    let mut deployment = Deployment::new();
    let (master, sentinels) = cacheback_test_support::redis_sentinel();
    deployment.env.push(("CACHEBACK_REDIS_SENTINEL", format!("{master}@{}", sentinels.join(","))));
    // The queue is read where the sentinels say the master is.
    let address: Vec<String> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(&master)
        .query(
            &mut redis::Client::open(format!("redis://{}", sentinels[0])).unwrap().get_connection().unwrap(),
        )
        .unwrap();
    deployment.redis = redis::Client::open(format!("redis://{}:{}", address[0], address[1]))
        .and_then(|c| c.get_connection())
        .unwrap();
    let mut deployment = in_production(deployment);
    let on_master: Vec<String> =
        redis::cmd("KEYS").arg(deployment.item_key("*")).query(&mut deployment.redis).unwrap();
    assert!(!on_master.is_empty(), "the items are on the sentinels' master");
    let mut plain = redis::Client::open(redis_url()).unwrap().get_connection().unwrap();
    let on_redis: Vec<String> = redis::cmd("KEYS").arg(deployment.item_key("*")).query(&mut plain).unwrap();
    assert!(on_redis.is_empty(), "no item on REDIS_URL: {on_redis:?}");
    the_task_counts_and_clears_the_store(&deployment);
}

/// `cacheback command:stats` counts the pages' items in the `default`
/// store, and `command:clear` empties it.
fn the_task_counts_and_clears_the_store(deployment: &Deployment) {
    let (ok, out, err) = deployment.task(&["command:stats"]);
    assert!(ok, "{err}");
    let items: u64 = out
        .lines()
        .find_map(|line| line.strip_prefix("cache default (default): "))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(items >= 2, "the pages' items, on the Cluster: {out}");
    let (ok, out, err) = deployment.task(&["command:clear", "alias:default"]);
    assert!(ok && out.contains("cache default: cleared"), "{out}{err}");
    let (_, out, _) = deployment.task(&["command:stats"]);
    assert!(out.contains("cache default (default): 0 items"), "{out}");
}

/// The production flow on `deployment`; returns it, its processes stopped.
fn in_production(mut deployment: Deployment) -> Deployment {
    let mut web = deployment.start(&[]);
    web.wait_listening();

    // The first VanillaJob request returns the empty list and queues one refresh.
    let (status, body) = get(web.port, "/");
    assert_eq!((status, items(&body)), (200, 0), "{body}");
    assert_eq!(deployment.queued(), 1);
    // A plain `start` serves only: nobody takes the job.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(deployment.queued(), 1);

    // After the worker runs, the page lists all 100 items.
    let mut worker = deployment.start(&["--worker"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while items(&get(web.port, "/").1) != 100 {
        assert!(worker.child.try_wait().unwrap().is_none(), "the worker exited");
        assert!(Instant::now() < deadline, "the worker never refreshed the page");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(deployment.queued(), 0);
    // With config/production.yaml as shipped, cacheback's lines reach the
    // worker's logs (loco's own filter would drop them).
    let logs = worker.logs();
    assert!(logs.contains(r#""target":"cacheback""#), "no cacheback line in the worker's logs:\n{logs}");
    worker.port = 0;
    worker.terminate();

    // A KeyedJob item goes stale after its lifetime (5 s); 64 concurrent
    // requests then queue exactly one refresh.
    let (_, body) = get(web.port, "/?name=Item_1");
    assert_eq!(items(&body), 1);
    std::thread::sleep(Duration::from_millis(5_500));
    let port = web.port;
    let readers: Vec<_> = (0..64).map(|_| std::thread::spawn(move || get(port, "/?name=Item_1"))).collect();
    for reader in readers {
        let (status, body) = reader.join().unwrap();
        assert_eq!((status, items(&body)), (200, 1), "every reader gets the stale item");
    }
    assert_eq!(deployment.queued(), 1, "exactly one refresh for 64 stale readers");

    // `--server-and-worker` serves and refreshes.
    let mut both = deployment.start(&["--server-and-worker"]);
    both.wait_listening();
    let deadline = Instant::now() + Duration::from_secs(30);
    while deployment.queued() != 0 {
        assert!(Instant::now() < deadline, "--server-and-worker did not run the refresh");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = get(both.port, "/?name=Item_1");
    assert_eq!((status, items(&body)), (200, 1));
    both.terminate();
    web.terminate();
    deployment
}

/// A slow database (the table locked by another session) holds a page whose
/// item is past `max_stale_age` up for KeyedJob's soft timeout only: the
/// stale rows are served at the bound, and the fetch, left running, lands
/// once the lock is gone.
#[test]
fn a_slow_database_is_answered_with_stale_data_at_the_soft_timeout() {
    let deployment = Deployment::new();
    let mut web = deployment.start(&[]);
    web.wait_listening();
    let (status, body) = get(web.port, "/?name=Item_2");
    assert_eq!((status, items(&body)), (200, 1), "{body}");
    // Past max_stale_age (10 s): the next read fetches in the request.
    std::thread::sleep(Duration::from_millis(10_500));
    let mut lock = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &deployment.database, "-q", "-c"])
        .arg("BEGIN; LOCK TABLE dummy_models IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !table_locked(&deployment.database) {
        assert!(Instant::now() < deadline, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let (status, body) = get(web.port, "/?name=Item_2");
    let waited = started.elapsed();
    eprintln!("slow database: the stale page after {waited:?} (soft timeout {KEYED_SOFT_TIMEOUT:?})");
    assert_eq!((status, items(&body)), (200, 1), "{body}");
    assert!(body.contains(r#"data-status="stale""#), "{body}");
    assert!(waited >= KEYED_SOFT_TIMEOUT && waited < Duration::from_secs(2), "{waited:?}");
    assert!(lock.wait().unwrap().success());
    // The fetch that outlived the request stored its rows: a HIT.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = get(web.port, "/?name=Item_2");
        if body.contains(r#"data-status="hit""#) {
            break;
        }
        assert!(Instant::now() < deadline, "the background fetch never landed: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    web.terminate();
}

/// Whether a session holds an exclusive lock on `dummy_models` in `database`.
fn table_locked(database: &str) -> bool {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAq", "-c"])
        .arg(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
              WHERE c.relname = 'dummy_models' AND l.mode = 'AccessExclusiveLock' AND l.granted",
        )
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() != "0"
}

/// A Procfile runner starts the web and the worker process at once on a fresh
/// database: both migrate and seed, one at a time, and both keep running.
#[test]
fn web_and_worker_start_together_on_a_fresh_database() {
    let deployment = Deployment::new();
    let (mut web, mut worker) = (deployment.start(&[]), deployment.start(&["--worker"]));
    web.wait_listening();

    wait_for_the_full_page(&web, &mut worker);
    worker.port = 0;
    worker.terminate();
    web.terminate();
}

/// `cargo loco task cacheback ...` against a production deployment: stats,
/// invalidate, delete, clear and retry-dead through the real CLI.
#[test]
fn the_cacheback_task() {
    let mut deployment = Deployment::new();
    let mut web = deployment.start(&[]);
    web.wait_listening();
    let (_, body) = get(web.port, "/?name=Item_1");
    assert_eq!(items(&body), 1, "{body}");
    let item = deployment.item_key("Item_1");
    assert!(deployment.redis.exists::<_, bool>(&item).unwrap(), "the page cached KeyedJob's item");

    let (ok, out, err) = deployment.task(&["command:stats"]);
    assert!(ok, "{err}");
    assert!(out.contains("cache default (default): 1 items"), "{out}");
    assert!(out.contains("metrics: per process"), "{out}");
    let jobs = out.lines().find(|line| line.starts_with("jobs: ")).unwrap_or_default();
    assert!(jobs.contains("sandbox::jobs::KeyedJob") && jobs.contains("sandbox::jobs::decorated"), "{out}");
    assert!(out.contains(&format!("queue {}: 0 queued", deployment.queue)), "{out}");
    assert!(out.contains("retry: ") && out.contains("dead: ") && out.contains("workers: "), "{out}");

    // Unknown job, alias, command; arguments of the wrong type.
    let (ok, _, err) = deployment.task(&["command:invalidate", "job:sandbox::jobs::Nope", "args:[]"]);
    assert!(!ok);
    assert!(err.contains("no job named `sandbox::jobs::Nope` is registered"), "{err}");
    assert!(err.contains("sandbox::jobs::KeyedJob"), "the message lists the registered jobs: {err}");
    let (ok, _, err) = deployment.task(&["command:clear", "alias:nope"]);
    assert!(!ok);
    assert!(err.contains("unknown cache alias `nope` (configured aliases: default)"), "{err}");
    let (ok, _, err) = deployment.task(&["command:nope"]);
    assert!(!ok);
    assert!(err.contains("unknown command `nope`"), "{err}");
    let (ok, _, err) = deployment.task(&["command:delete", "job:sandbox::jobs::KeyedJob", "args:[1]"]);
    assert!(!ok);
    assert!(err.contains("do not decode"), "{err}");
    assert!(deployment.redis.exists::<_, bool>(&item).unwrap());

    // invalidate: the item stays, stale, and one refresh is queued.
    let ttl_before: i64 = deployment.redis.pttl(&item).unwrap();
    let (ok, out, err) =
        deployment.task(&["command:invalidate", "job:sandbox::jobs::KeyedJob", r#"args:["Item_1"]"#]);
    assert!(ok, "{err}");
    assert!(out.contains("key `Item_1` invalidated"), "{out}");
    assert_eq!(deployment.queued(), 1, "invalidate queues a refresh");
    assert!(deployment.redis.exists::<_, bool>(&item).unwrap());
    let ttl_after: i64 = deployment.redis.pttl(&item).unwrap();
    assert_ne!(ttl_before, ttl_after, "the item was re-stored");
    let (_, out, _) = deployment.task(&["command:stats"]);
    assert!(out.contains(&format!("queue {}: 1 queued", deployment.queue)), "{out}");

    // delete: the item is gone.
    let (ok, out, err) =
        deployment.task(&["command:delete", "job:sandbox::jobs::KeyedJob", r#"args:["Item_1"]"#]);
    assert!(ok, "{err}");
    assert!(out.contains("key `Item_1` deleted"), "{out}");
    assert!(!deployment.redis.exists::<_, bool>(&item).unwrap());
    // Again: nothing was cached, and the task says so (and succeeds).
    let (ok, out, err) =
        deployment.task(&["command:delete", "job:sandbox::jobs::KeyedJob", r#"args:["Item_1"]"#]);
    assert!(ok, "{err}");
    assert!(out.contains("key `Item_1` not cached"), "{out}");

    // retry-dead: a dead refresh of this deployment's queue goes back onto it,
    // its failure forgotten; the dead of other queues stay.
    let _: () = deployment.redis.del(format!("queue:{}", deployment.queue)).unwrap();
    let jid = format!("{:024x}", now_nanos());
    let dead = serde_json::json!({
        "class": "Cacheback::RefreshCache",
        "args": [{"job": "sandbox::jobs::KeyedJob", "state": null, "args": ["Item_2"], "key": "Item_2"}],
        "jid": jid, "queue": deployment.queue, "retry": 0, "created_at": 1.0e9, "enqueued_at": 1.0e9,
        "failed_at": 1.0e9, "retry_count": 0, "error_class": "Boom", "error_message": "boom",
    })
    .to_string();
    let _: () = deployment.redis.zadd("dead", &dead, 1.0e9).unwrap();
    let (ok, out, err) = deployment.task(&["command:retry-dead", &format!("queue:{}", deployment.queue)]);
    assert!(ok, "{err}");
    assert!(out.contains("retry-dead: 1 refreshes back on their queues"), "{out}");
    assert_eq!(deployment.redis.zscore::<_, _, Option<f64>>("dead", &dead).unwrap(), None);
    let queued: Vec<String> = deployment.redis.lrange(format!("queue:{}", deployment.queue), 0, -1).unwrap();
    assert_eq!(queued.len(), 1);
    let job: serde_json::Value = serde_json::from_str(&queued[0]).unwrap();
    assert_eq!(job["jid"], jid.as_str());
    assert!(job.get("error_message").is_none() && job.get("retry_count").is_none(), "{job}");
    assert!(job["enqueued_at"].as_f64().unwrap() > 1.0e9, "{job}");

    // invalidate-tag: one write, the tag's new version, among the store's items.
    let (ok, out, err) = deployment.task(&["command:invalidate-tag", "tag:dummy_models"]);
    assert!(ok, "{err}");
    assert!(out.contains("tag `dummy_models`: invalidated"), "{out}");
    let version: String = deployment.redis.get(deployment.item_key("cacheback.tag:dummy_models")).unwrap();
    assert_eq!(version.split(' ').count(), 2, "`<time> <hex>`: {version}");
    let (ok, _, err) = deployment.task(&["command:invalidate-tag"]);
    assert!(!ok && err.contains("needs `tag:<..>`"), "{err}");

    // clear: every key of the store, and nothing else (the queue stays).
    let _: () = deployment.redis.set(deployment.item_key("planted"), "x").unwrap();
    let (ok, out, err) = deployment.task(&["command:clear", "alias:default"]);
    assert!(ok, "{err}");
    assert!(out.contains("cache default: cleared"), "{out}");
    assert!(!deployment.redis.exists::<_, bool>(deployment.item_key("planted")).unwrap());
    assert_eq!(deployment.queued(), 1);
    let (_, out, _) = deployment.task(&["command:stats"]);
    assert!(out.contains("cache default (default): 0 items"), "{out}");
    web.terminate();
}

#[test]
fn metrics_are_off_by_default_and_on_with_sandbox_metrics() {
    let mut deployment = Deployment::new();
    let mut web = deployment.start(&[]);
    web.wait_listening();
    assert_eq!(get(web.port, "/metrics").0, 404, "off unless SANDBOX_METRICS=true");
    let (status, body) = get(web.port, "/_cacheback");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"metrics-off\""), "{body}");
    assert!(body.contains(&format!("data-queue=\"{}\"", deployment.queue)), "the Sidekiq queue: {body}");
    web.terminate();

    deployment.env.push(("SANDBOX_METRICS", "true".to_owned()));
    let mut web = deployment.start(&[]);
    web.wait_listening();
    let _worker = deployment.start(&["--worker"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while items(&get(web.port, "/?name=Item_1").1) != 1 {
        assert!(Instant::now() < deadline, "the page never listed Item_1");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, metrics) = get(web.port, "/metrics");
    assert_eq!(status, 200, "{metrics}");
    for line in [
        "# TYPE cacheback_lookups_total counter",
        "cacheback_lookups_total{job=\"sandbox::jobs::KeyedJob\",alias=\"default\",status=\"miss\"} 1",
        "cacheback_refreshes_total{job=\"sandbox::jobs::KeyedJob\",mode=\"sync\",outcome=\"ok\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in:\n{metrics}");
    }
    let (status, dashboard) = get(web.port, "/_cacheback");
    assert_eq!(status, 200, "{dashboard}");
    assert!(dashboard.contains("data-job=\"sandbox::jobs::KeyedJob\""), "{dashboard}");
    assert!(!dashboard.contains("id=\"metrics-off\""), "{dashboard}");
}
