//! End to end with no Redis at all: the cache in the app's database
//! (`CACHEBACK_BACKEND=database`) and refreshes on loco's own queue
//! (`CACHEBACK_TASK_QUEUE=loco`), with web and worker processes: on
//! PostgreSQL in production mode (`QUEUE_KIND=Postgres`), on a server of the
//! test's own that it restarts under load, and on SQLite in development mode
//! (`QUEUE_KIND=Sqlite`). `REDIS_URL` points at a listener of the test's,
//! which must see no connection.

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cacheback_test_support::free_port;
use support::*;

/// A PostgreSQL server of the test's own (initdb, pg_ctl), on a free port:
/// the machine's server is never restarted.
struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
}

/// `program args` as the `postgres` user when run as root (PostgreSQL
/// refuses to run as root).
fn as_postgres(program: &str) -> Command {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| versions.filter_map(Result::ok).map(|v| v.path().join("bin")).max())
        .unwrap_or_default();
    let program = bin.join(program);
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl PrivatePostgres {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("cacheback-pg-{}-{}", std::process::id(), now_nanos()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown").arg("postgres:postgres").arg(&dir).status();
        let initdb = as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("this test needs PostgreSQL's initdb (`scripts/test` installs it): {e}")
            });
        assert!(initdb.success(), "initdb failed");
        let server = Self { dir, port: free_port() };
        server.pg_ctl("start");
        server
    }

    fn pg_ctl(&self, action: &str) {
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let status = as_postgres("pg_ctl")
            .args([action, "-w", "-m", "fast", "-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {action} failed");
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "sandbox",
                "-tAq",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A listener where `REDIS_URL` points: counts the connections it is offered.
fn redis_trap() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, connections)
}

struct App {
    env: Vec<(&'static str, String)>,
}

impl App {
    fn start(&self, args: &[&str]) -> Process {
        Process::start(&self.env, args)
    }

    /// `cargo loco task cacheback <args>`: whether it succeeded, and its
    /// stdout (or its stderr when it failed).
    fn task(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
            .args(["task", "cacheback"])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        let text = if output.status.success() { output.stdout } else { output.stderr };
        (output.status.success(), String::from_utf8(text).unwrap())
    }

    /// `cargo loco task cacheback command:stats`: its stdout.
    fn stats(&self) -> String {
        let (ok, out) = self.task(&["command:stats"]);
        assert!(ok, "{out}");
        out
    }
}

/// The flow both databases share: the first `/` is empty and queues one
/// refresh, which only a worker runs; the worker fills it with 100 items; a
/// stale KeyedJob item read by 64 concurrent requests queues exactly one
/// refresh. `queued` counts cacheback's queued jobs on loco's queue.
fn first_page_then_one_refresh_per_stale_key(app: &App, queued: &dyn Fn() -> usize) -> Process {
    let mut web = app.start(&[]);
    web.wait_listening();
    let (status, body) = get(web.port, "/");
    assert_eq!((status, items(&body)), (200, 0), "{body}");
    assert_eq!(queued(), 1, "the first page queues one refresh");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(queued(), 1, "a plain `start` serves only");

    let mut worker = app.start(&["--worker"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while items(&get(web.port, "/").1) != 100 {
        assert!(worker.child.try_wait().unwrap().is_none(), "the worker exited");
        assert!(Instant::now() < deadline, "the worker never refreshed the page:\n{}", worker.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(queued(), 0);
    worker.port = 0;
    worker.terminate();

    let (_, body) = get(web.port, "/?name=Item_1");
    assert_eq!(items(&body), 1);
    std::thread::sleep(Duration::from_millis(5_500)); // KeyedJob's lifetime
    let port = web.port;
    let readers: Vec<_> = (0..64).map(|_| std::thread::spawn(move || get(port, "/?name=Item_1"))).collect();
    for reader in readers {
        let (status, body) = reader.join().unwrap();
        assert_eq!((status, items(&body)), (200, 1), "every reader gets the stale item");
    }
    assert_eq!(queued(), 1, "exactly one refresh for 64 stale readers");
    web
}

#[test]
fn postgresql_alone_in_production() {
    let postgres = PrivatePostgres::start();
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &postgres.port.to_string(),
            "-U",
            "postgres",
            "-qc",
            "CREATE DATABASE sandbox",
        ])
        .status()
        .unwrap();
    let (redis_url, redis_connections) = redis_trap();
    let app = App {
        env: vec![
            ("LOCO_ENV", "production".to_owned()),
            ("DATABASE_URL", postgres.url("sandbox")),
            ("REDIS_URL", redis_url),
            ("CACHEBACK_BACKEND", "database".to_owned()),
            ("CACHEBACK_TASK_QUEUE", "loco".to_owned()),
            ("QUEUE_KIND", "Postgres".to_owned()),
            ("VANILLA_DELAY_MS", "200".to_owned()),
        ],
    };
    let queued = || {
        postgres
            .psql("SELECT count(*) FROM pg_loco_queue WHERE name = 'CachebackRefresh' AND status = 'queued'")
            .parse()
            .unwrap()
    };
    let web = first_page_then_one_refresh_per_stale_key(&app, &queued);
    let stats = app.stats();
    assert!(stats.contains("queue loco (pg_loco_queue): 1 queued, 0 processing, 0 failed"), "{stats}");
    assert!(stats.contains("cache default (default): "), "{stats}");

    // Garbage on loco's queue under cacheback's name: the worker marks it
    // failed (loco keeps the error) and goes on; `retry-dead` puts it back.
    postgres.psql(
        "INSERT INTO pg_loco_queue (id, name, task_data, status, run_at, priority) \
         VALUES ('garbage-1', 'CachebackRefresh', '\"not a payload\"', 'queued', NOW(), 0)",
    );
    // A worker runs the queued refresh; then the database restarts under
    // load: cached pages are served throughout, none fails.
    let mut worker = app.start(&["--worker"]);
    let failed = || postgres.psql("SELECT status FROM pg_loco_queue WHERE id = 'garbage-1'");
    let deadline = Instant::now() + Duration::from_secs(30);
    while queued() != 0 || failed() != "failed" {
        assert!(Instant::now() < deadline, "the worker did not run the refresh and fail the garbage");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(worker.child.try_wait().unwrap().is_none(), "garbage does not stop the worker");
    assert!(app.stats().contains("0 queued, 0 processing, 1 failed"), "{}", app.stats());
    let (ok, out) = app.task(&["command:retry-dead"]);
    assert!(ok && out.contains("retry-dead: 1 failed refreshes back on loco's queue"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while postgres.psql("SELECT updated_at > run_at FROM pg_loco_queue WHERE id = 'garbage-1'") != "t"
        || failed() != "failed"
    {
        assert!(Instant::now() < deadline, "the retried garbage was not run again");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(worker.logs().contains("not a refresh payload"), "the worker logs it");
    let (stop, failures, served) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (stop, failures, served, port) = (stop.clone(), failures.clone(), served.clone(), web.port);
            std::thread::spawn(move || {
                let path = if i % 2 == 0 { "/?name=Item_1" } else { "/" };
                while !stop.load(Ordering::SeqCst) {
                    let (status, body) = get(port, path);
                    if status != 200 || items(&body) == 0 {
                        failures.fetch_add(1, Ordering::SeqCst);
                        eprintln!("during the restart: {status} {body}");
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    postgres.pg_ctl("restart");
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    for thread in load {
        thread.join().unwrap();
    }
    eprintln!(
        "database restart: {} requests served, {} failed",
        served.load(Ordering::SeqCst),
        failures.load(Ordering::SeqCst)
    );
    assert_eq!(failures.load(Ordering::SeqCst), 0, "no failed page across the restart");
    assert!(served.load(Ordering::SeqCst) > 100);
    worker.port = 0;
    assert!(worker.child.try_wait().unwrap().is_none(), "the worker survives the restart");
    worker.terminate();
    web.terminate();
    assert_eq!(redis_connections.load(Ordering::SeqCst), 0, "no process connected to Redis");
}

#[test]
fn sqlite_alone_in_development() {
    let dir =
        std::env::temp_dir().join(format!("cacheback-sqlite-e2e-{}-{}", std::process::id(), now_nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.join("sandbox.sqlite").display());
    let (redis_url, redis_connections) = redis_trap();
    let app = App {
        env: vec![
            ("LOCO_ENV", "development".to_owned()),
            ("DATABASE_URL", database),
            ("REDIS_URL", redis_url),
            ("CACHEBACK_BACKEND", "database".to_owned()),
            ("CACHEBACK_TASK_QUEUE", "loco".to_owned()),
            ("QUEUE_KIND", "Sqlite".to_owned()),
            ("VANILLA_DELAY_MS", "200".to_owned()),
        ],
    };
    let queued = || {
        let stats = app.stats();
        let line = stats
            .lines()
            .find(|l| l.starts_with("queue loco (sqlt_loco_queue)"))
            .unwrap_or_else(|| panic!("{stats}"));
        line.split(": ").nth(1).and_then(|rest| rest.split(' ').next()).and_then(|n| n.parse().ok()).unwrap()
    };
    let web = first_page_then_one_refresh_per_stale_key(&app, &queued);
    web.terminate();
    assert_eq!(redis_connections.load(Ordering::SeqCst), 0, "no process connected to Redis");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Procfile's web and worker started at once on a fresh database, on
/// PostgreSQL alone: both set up loco's queue and cacheback's tables, take
/// turns migrating, and the worker fills the first page.
#[test]
fn web_and_worker_start_together_on_postgresql_alone() {
    let database = format!("cacheback_e2e_pg_{}_{}", std::process::id(), now_nanos() % 1_000_000);
    psql(&format!("CREATE DATABASE {database}"));
    let _dropped = DroppedDatabase(database.clone());
    let (redis_url, redis_connections) = redis_trap();
    let app = App {
        env: vec![
            ("LOCO_ENV", "production".to_owned()),
            ("DATABASE_URL", format!("{}/{database}", postgres_server())),
            ("REDIS_URL", redis_url),
            ("CACHEBACK_BACKEND", "database".to_owned()),
            ("CACHEBACK_TASK_QUEUE", "loco".to_owned()),
            ("QUEUE_KIND", "Postgres".to_owned()),
            ("VANILLA_DELAY_MS", "200".to_owned()),
        ],
    };
    let (mut web, mut worker) = (app.start(&[]), app.start(&["--worker"]));
    web.wait_listening();
    wait_for_the_full_page(&web, &mut worker);
    worker.port = 0;
    worker.terminate();
    web.terminate();
    assert_eq!(redis_connections.load(Ordering::SeqCst), 0, "no process connected to Redis");
}

/// A database of the machine's server, dropped when the test ends, passed
/// or failed.
struct DroppedDatabase(String);

impl Drop for DroppedDatabase {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}
