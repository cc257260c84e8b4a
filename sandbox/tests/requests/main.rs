//! Every endpoint of the sandbox over HTTP (loco's test server, test config:
//! SQLite, in-memory cache, in-process queue, metrics on), with insta
//! snapshots; and its error responses (`errors`: a store on the test Redis,
//! `CACHEBACK_TEST_REDIS_URL`, made to fail).

mod dashboard;
mod errors;
mod home;
mod items;
mod metrics;

/// The app boots against one SQLite file and installs the global engine:
/// the tests take turns.
pub static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Snapshots with what changes from run to run replaced: the page's ages
/// and times, the dashboard's counts, durations and chart (counters are the
/// process's, so they also count the other tests' reads).
pub fn redacted(f: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r#"<span class="(age|ttl)">[^<]*</span>"#, r#"<span class="$1">[seconds]</span>"#);
    settings.add_filter(
        r#"<td class="(hits|stales|misses|ratio|refreshes|failures|p50|p99|depth)"([^>]*)>[^<]*</td>"#,
        r#"<td class="$1"$2>[n]</td>"#,
    );
    settings.add_filter(r#"(?s)<svg id="chart".*?</svg>"#, "[chart]");
    settings.bind(f);
}
