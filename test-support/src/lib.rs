//! What the tests and benchmarks of the workspace's crates share: where the
//! test Redis is, and loopback ports for the servers they start.
//!
//! A dev-dependency by path only (never published): `cargo package` drops it
//! from the crates it packages.

use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

/// The Redis the tests and benchmarks use: `CACHEBACK_TEST_REDIS_URL`, by
/// default database 15 of a local Redis (`redis://127.0.0.1:6379/15`).
///
/// Required: a test that needs it fails loudly when it is missing, it never
/// skips. Nothing flushes it; each test writes under its own keys.
pub fn redis_url() -> String {
    std::env::var("CACHEBACK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/15".to_owned())
}

/// A free loopback port (`127.0.0.1`), never the same twice in this process.
///
/// The OS hands out a port that is free when asked, and may hand it out
/// again once the probe's listener is closed: the tests run in parallel, and
/// two servers given the same port would answer each other's requests (one
/// test's server stopping mid-request under the other). So a port already
/// given is skipped. Another process may still take the port before the
/// caller binds it; a caller that can retry on another port should.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    // A test that panicked while holding the lock left the list intact.
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let port = listener.local_addr().expect("the address of a bound listener").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The PostgreSQL database the tests and benchmarks use:
/// `CACHEBACK_TEST_POSTGRES_URL`, by default the database `cacheback_test`
/// of a local server (`postgres://postgres@127.0.0.1:5432/cacheback_test`,
/// which `scripts/test` creates). Required, as [`redis_url`]; each test
/// writes under its own key prefix.
pub fn postgres_url() -> String {
    std::env::var("CACHEBACK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/cacheback_test".to_owned())
}

/// A SQLite database file of its own for `label` (its characters other than
/// ASCII letters and digits become `_`), in the temporary directory, created
/// on first connection: the same label is the same file, so two engines
/// ("processes") can share it.
pub fn sqlite_url(label: &str) -> String {
    let name: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let path = std::env::temp_dir().join(format!("cacheback-test-{name}.sqlite"));
    format!("sqlite://{}?mode=rwc", path.display())
}

/// The seed nodes of the test Redis Cluster: `CACHEBACK_TEST_REDIS_CLUSTER`,
/// comma-separated URLs, which `scripts/test` sets when it starts the
/// Cluster (three primaries with a replica each, on private ports).
///
/// # Panics
///
/// When the variable is unset: a test that needs the Cluster fails loudly,
/// it never skips.
pub fn redis_cluster_nodes() -> Vec<String> {
    let nodes = std::env::var("CACHEBACK_TEST_REDIS_CLUSTER").unwrap_or_default();
    let nodes: Vec<String> = nodes.split(',').filter(|n| !n.is_empty()).map(str::to_owned).collect();
    assert!(
        !nodes.is_empty(),
        "this test needs a Redis Cluster: `scripts/test` starts one (or set CACHEBACK_TEST_REDIS_CLUSTER \
         to its seed nodes' URLs, comma-separated)"
    );
    nodes
}

/// The test Redis Sentinel group: its master's name and its sentinels'
/// `host:port`, from `CACHEBACK_TEST_REDIS_SENTINEL`
/// (`<master>@<host:port>,...`), which `scripts/test` sets when it starts the
/// group (one master, one replica, three sentinels, on private ports).
///
/// # Panics
///
/// When the variable is unset or malformed: a test that needs the group
/// fails loudly, it never skips.
pub fn redis_sentinel() -> (String, Vec<String>) {
    let group = std::env::var("CACHEBACK_TEST_REDIS_SENTINEL").unwrap_or_default();
    let parsed = group.split_once('@').map(|(master, sentinels)| {
        (
            master.to_owned(),
            sentinels.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>(),
        )
    });
    match parsed {
        Some((master, sentinels)) if !master.is_empty() && !sentinels.is_empty() => (master, sentinels),
        _ => panic!(
            "this test needs a Redis Sentinel group: `scripts/test` starts one (or set \
             CACHEBACK_TEST_REDIS_SENTINEL to `<master name>@<host:port>,<host:port>`), got `{group}`"
        ),
    }
}
