//! What the end-to-end tests share: a sandbox process, plain HTTP, psql.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct Process {
    pub child: Child,
    pub port: u16,
    pub logs: std::path::PathBuf,
}

impl Process {
    /// Starts `sandbox-cli start <args>` with `env` on a free port, its logs
    /// (stdout) going to a file.
    pub fn start(env: &[(&'static str, String)], args: &[&str]) -> Self {
        let port = cacheback_test_support::free_port();
        let logs = std::env::temp_dir().join(format!("cacheback-e2e-{}-{port}.log", std::process::id()));
        let child = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
            .arg("start")
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("PORT", port.to_string())
            .stdout(std::fs::File::create(&logs).unwrap())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        Process { child, port, logs }
    }

    /// What it has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap()
    }

    pub fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(self.child.try_wait().unwrap().is_none(), "the server exited");
            assert!(Instant::now() < deadline, "the server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, as a process manager stops it; waits for a clean exit.
    pub fn terminate(mut self) {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.logs);
    }
}

pub fn now_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

pub fn postgres_server() -> String {
    std::env::var("CACHEBACK_TEST_POSTGRES_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub fn psql(sql: &str) {
    let status = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c", sql])
        .status()
        .unwrap_or_else(|e| panic!("this test needs PostgreSQL's psql (`scripts/test` installs it): {e}"));
    assert!(status.success(), "psql failed: {sql}");
}

/// A plain HTTP/1.1 GET: the status and the body.
pub fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

pub fn items(body: &str) -> usize {
    body.matches("<li class=\"item\">").count()
}

/// Waits (up to 60 s) until `web`'s `/` lists all 100 items, which only a
/// refresh run by `worker` puts there; every page meanwhile is a 200, and the
/// worker keeps running.
pub fn wait_for_the_full_page(web: &Process, worker: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(worker.child.try_wait().unwrap().is_none(), "the worker exited:\n{}", worker.logs());
        let (status, body) = get(web.port, "/");
        assert_eq!(status, 200, "{body}");
        if items(&body) == 100 {
            return;
        }
        assert!(Instant::now() < deadline, "the worker never refreshed the page");
        std::thread::sleep(Duration::from_millis(100));
    }
}
