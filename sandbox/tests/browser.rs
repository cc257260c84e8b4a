//! The sandbox's pages in a real headless browser: Debian's Chromium, driven
//! through WebDriver (Debian's `chromedriver`, from `chromium-driver`), against
//! the sandbox's web server started as a real process (`sandbox-cli start`,
//! development environment, a private SQLite file, the in-process queue).
//!
//! Why WebDriver (`fantoccini`) rather than `chromium --headless --dump-dom`:
//! the page's point is that it reloads itself (`<meta http-equiv="refresh">`)
//! until the refresh lands, and `--dump-dom` shows only one final DOM. It
//! needs `--virtual-time-budget` to follow a reload at all, and virtual time
//! runs the page's 1 s timer as fast as the browser can, while the server's
//! refresh takes real time: whether the dump shows the loaded page depends on
//! how much real time the budget happens to take (tried on a page that turns
//! after 3 real seconds: 15 virtual seconds made 42 reloads in 5 real seconds;
//! a slower refresh or a faster machine, and the dump is the cold page), and
//! it cannot see the pages before. WebDriver watches one real tab in real
//! time: the cold page, every document it reloads into, the loaded page, and a
//! screenshot of each, with no help from the test. A CDP crate would do too,
//! but the ones that exist build the whole generated protocol (slow to
//! compile); `fantoccini` without TLS is a small client on the hyper 1 /
//! tokio 1 the workspace already builds.
//!
//! Needs `chromium` and `chromedriver` on the PATH (`scripts/test` installs
//! them); fails, never skips, without them.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cacheback_test_support::free_port;
use fantoccini::{Client, ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::{Value, json};

/// `VanillaJob`'s fetch sleeps this long: the cold page is observable for a
/// while (it reloads every second meanwhile), yet the test stays quick.
const VANILLA_DELAY_MS: u64 = 1500;
/// From the cold load, how long the page may take to show the items.
const LOAD_BOUND: Duration = Duration::from_secs(15);
/// The job behind `/` without a query.
const VANILLA_JOB: &str = "sandbox::jobs::VanillaJob";
/// The rows fixtures/dummy_models.yaml seeds.
const SEEDED_ROWS: usize = 100;
/// Every view of `/` that `<nav id="views">` links to, and the dashboard.
const VIEWS: [&str; 7] =
    ["/", "/?name=Item_1", "/?name=Item_1&qs", "/?function", "/?function&q=1", "/?decorator", "/_cacheback"];

/// A program on the PATH, or a failure that says how to install it.
fn required(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "this test needs `{program}` on the PATH: Debian's `chromium` and `chromium-driver` \
                 packages (`apt-get install chromium chromium-driver`; `scripts/test` installs them)"
            )
        })
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Waits until something listens on `port`, while `child` runs.
async fn wait_listening(what: &str, child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited ({status}) before listening on {port}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port} within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sandbox's web server: `sandbox-cli start` in the development
/// environment (its PORT, DATABASE_URL and VANILLA_DELAY_MS), on a private
/// port and SQLite file; the in-process queue runs the refreshes inside it.
struct Sandbox {
    child: Child,
    port: u16,
    logs: PathBuf,
    database: PathBuf,
}

impl Sandbox {
    async fn start() -> Self {
        let id = format!("{}-{}", std::process::id(), now_nanos() % 1_000_000);
        let tmp = std::env::temp_dir();
        let database = tmp.join(format!("cacheback-browser-{id}.sqlite"));
        let logs = tmp.join(format!("cacheback-browser-{id}.log"));
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_sandbox-cli"))
            .arg("start")
            .env("LOCO_ENV", "development")
            .env("PORT", port.to_string())
            .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", database.display()))
            .env("VANILLA_DELAY_MS", VANILLA_DELAY_MS.to_string())
            .stdout(std::fs::File::create(&logs).unwrap())
            .stderr(std::fs::File::options().append(true).open(&logs).unwrap())
            .spawn()
            .unwrap();
        let mut sandbox = Self { child, port, logs, database };
        wait_listening("the sandbox", &mut sandbox.child, port).await;
        sandbox
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let logs = std::fs::read_to_string(&self.logs).unwrap_or_default();
            let tail: Vec<_> = logs.lines().rev().take(40).collect();
            eprintln!("--- the sandbox's last log lines ---");
            tail.iter().rev().for_each(|line| eprintln!("{line}"));
        }
        let _ = std::fs::remove_file(&self.logs);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.database.display()));
        }
    }
}

/// `chromedriver` on a private port, in a process group of its own: the
/// browsers it starts go with it even when the test fails before it could
/// close its session.
struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    async fn start() -> Self {
        use std::os::unix::process::CommandExt;
        let chromedriver = required("chromedriver");
        required("chromium");
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut driver = Self { child, port };
        wait_listening("chromedriver", &mut driver.child, port).await;
        driver
    }

    /// A headless Chromium session (`--no-sandbox`: the tests may run as root).
    async fn browser(&self) -> Client {
        let capabilities = json!({
            "goog:chromeOptions": {
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    "--hide-scrollbars",
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"))
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group this test created (its id is chromedriver's pid).
        let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

/// What a document of `/` shows, read in one script (so from one document,
/// even while the page reloads itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    /// `performance.timeOrigin`: tells one document from the next.
    origin: f64,
    ready: String,
    status: Option<String>,
    pending: Option<String>,
    status_text: Option<String>,
    refresh: Option<String>,
    meta_refresh: Option<String>,
    items: usize,
    empty: Option<String>,
    views: Vec<String>,
}

const READ_PAGE: &str = r#"
    const text = (selector) => {
        const element = document.querySelector(selector);
        return element ? element.textContent.trim() : null;
    };
    const meta = document.querySelector('meta[http-equiv="refresh" i]');
    const body = document.body;
    return {
        origin: performance.timeOrigin,
        ready: document.readyState,
        status: body ? body.getAttribute("data-status") : null,
        pending: body ? body.getAttribute("data-pending") : null,
        statusText: text("p#status"),
        refresh: text("p#refresh"),
        metaRefresh: meta ? meta.getAttribute("content") : null,
        items: document.querySelectorAll("ul#items > li.item").length,
        empty: text("p#empty"),
        views: Array.from(document.querySelectorAll("nav#views a[href]"), (a) => a.pathname + a.search),
    };
"#;

/// The current document of the tab, once parsed. `None` while the tab is
/// between documents (a script sent then fails, or sees a half-parsed page).
async fn read_page(browser: &Client) -> Option<Page> {
    let value = browser.execute(READ_PAGE, vec![]).await.ok()?;
    let page: Page = serde_json::from_value(value).expect("the page script's result");
    (page.ready != "loading").then_some(page)
}

/// The row of a job on the dashboard.
#[derive(Debug, Deserialize)]
struct JobRow {
    hits: String,
    stales: String,
    misses: String,
    ratio: String,
    refreshes: String,
    failures: String,
    p50: String,
    p99: String,
}

#[derive(Debug, Deserialize)]
struct Dashboard {
    ready: String,
    jobs: Vec<String>,
    row: Option<JobRow>,
    queues: Vec<String>,
    chart: bool,
}

const READ_DASHBOARD: &str = r#"
    const row = document.querySelector(`table#jobs tr[data-job="${CSS.escape(arguments[0])}"]`);
    const cell = (name) => {
        const td = row.querySelector(`td.${name}`);
        return td ? td.textContent.trim() : "";
    };
    return {
        ready: document.readyState,
        jobs: Array.from(document.querySelectorAll("table#jobs tr[data-job]"), (tr) => tr.dataset.job),
        row: row && Object.fromEntries(
            ["hits", "stales", "misses", "ratio", "refreshes", "failures", "p50", "p99"]
                .map((name) => [name, cell(name)])),
        queues: Array.from(document.querySelectorAll("table#queues tr[data-queue]"), (tr) => tr.dataset.queue),
        chart: document.querySelector("svg#chart") !== null,
    };
"#;

/// A counter's cell as a number (digits only: "1,234" reads 1234).
fn count(what: &str, cell: &str) -> u64 {
    let digits: String = cell.chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("the {what} cell holds no count: {cell:?}"))
}

/// target/browser-screenshots/, next to the test binary's target/debug/deps.
fn screenshots_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).map_or_else(|| Path::new("target").to_owned(), Path::to_owned);
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A PNG of the tab into target/browser-screenshots/`name`. `whole`: the
/// window first grows to the page's height, so the PNG shows all of it (the
/// cold page is taken as it is: it is short, and about to reload).
async fn screenshot(browser: &Client, name: &str, whole: bool) -> PathBuf {
    if whole {
        let height = browser.execute("return document.documentElement.scrollHeight;", vec![]).await.unwrap();
        let height = height.as_u64().unwrap_or(900).clamp(900, 4000);
        browser.set_window_size(1280, u32::try_from(height).unwrap() + 100).await.unwrap();
    }
    let png = browser.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    assert!(png.starts_with(b"\x89PNG"), "the screenshot {name} is not a PNG");
    let path = screenshots_dir().join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_in_a_headless_browser() {
    let started = Instant::now();
    let driver = Chromedriver::start().await;
    let sandbox = Sandbox::start().await;
    let browser = driver.browser().await;
    println!("chromedriver, the sandbox and Chromium up in {:?}", started.elapsed());

    // a. `/` cold: VanillaJob fetches nothing on a miss; it queues a refresh
    // (1.5 s of fetch) and the page says so, with no items, and will reload.
    let cold_at = Instant::now();
    browser.goto(&sandbox.url("/")).await.unwrap();
    let cold = read_page(&browser).await.expect("the cold page");
    assert_eq!(cold.status.as_deref(), Some("miss"), "{cold:?}");
    assert_eq!(cold.pending.as_deref(), Some("true"), "{cold:?}");
    assert!(cold.status_text.as_deref().is_some_and(|s| s.contains("MISS")), "{cold:?}");
    assert!(cold.refresh.as_deref().is_some_and(|s| s.contains("Refresh queued")), "{cold:?}");
    assert_eq!(cold.meta_refresh.as_deref(), Some("1"), "the cold page reloads itself: {cold:?}");
    assert_eq!(cold.items, 0, "{cold:?}");
    assert_eq!(cold.empty.as_deref(), Some("No items yet."), "{cold:?}");
    let views: BTreeSet<&str> = cold.views.iter().map(String::as_str).collect();
    for view in VIEWS {
        assert!(views.contains(view), "nav#views links to {view}: it has {views:?}");
    }
    let cold_png = screenshot(&browser, "cold.png", false).await;
    // The screenshot shows a pending page: the one read before it, or a
    // reload of it that is still pending (pending comes before loaded, never after).
    let after = read_page(&browser).await;
    assert!(
        after.as_ref().is_none_or(|page| page.pending.as_deref() == Some("true")),
        "the page loaded before its cold screenshot was taken (make VANILLA_DELAY_MS longer): {after:?}"
    );

    // b. With no help (no reload, no navigation by the test), the page reloads
    // itself until it shows the items. Every document lives a second at least
    // (its meta refresh) and is read every 50 ms: all of them are seen.
    let mut documents = vec![cold.origin];
    let loaded = loop {
        if let Some(page) = read_page(&browser).await {
            if !documents.contains(&page.origin) {
                documents.push(page.origin);
            }
            if page.pending.as_deref() == Some("false") && page.items > 0 {
                break page;
            }
        }
        assert!(
            cold_at.elapsed() < LOAD_BOUND,
            "the page did not show the items within {LOAD_BOUND:?} of its cold load ({} documents)",
            documents.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let load_time = cold_at.elapsed();
    assert_ne!(loaded.origin, cold.origin, "the page reloaded itself");
    assert_eq!(loaded.items, SEEDED_ROWS, "{loaded:?}");
    assert_eq!(loaded.status.as_deref(), Some("hit"), "{loaded:?}");
    assert!(loaded.status_text.as_deref().is_some_and(|s| s.contains("HIT")), "{loaded:?}");
    assert_eq!(loaded.refresh, None, "{loaded:?}");
    assert_eq!(loaded.meta_refresh, None, "the loaded page stops reloading: {loaded:?}");
    assert_eq!(loaded.empty, None, "{loaded:?}");
    println!(
        "the page showed its {} items {load_time:?} after its cold load, in its document #{}",
        loaded.items,
        documents.len()
    );
    let loaded_png = screenshot(&browser, "loaded.png", true).await;

    // c. The dashboard, through the page's own link: VanillaJob's row counts
    // every load of `/` above (the cold MISS, the reloads), the refresh landed.
    let requests = u64::try_from(documents.len()).unwrap();
    browser
        .find(Locator::Css(r#"nav#views a[href*="_cacheback"]"#))
        .await
        .expect("nav#views links to /_cacheback")
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let dashboard = loop {
        let read = browser.execute(READ_DASHBOARD, vec![json!(VANILLA_JOB)]).await;
        if let Ok(value) = read {
            let dashboard: Dashboard = serde_json::from_value(value).expect("the dashboard script's result");
            if dashboard.ready != "loading" && browser.current_url().await.unwrap().path() == "/_cacheback" {
                break dashboard;
            }
        }
        assert!(Instant::now() < deadline, "the dashboard did not load");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let row = dashboard
        .row
        .as_ref()
        .unwrap_or_else(|| panic!("no row for {VANILLA_JOB} in table#jobs: rows {:?}", dashboard.jobs));
    println!("dashboard, {VANILLA_JOB}: {row:?}; queues {:?}", dashboard.queues);
    let (hits, misses) = (count("hits", &row.hits), count("misses", &row.misses));
    assert!(misses >= 1, "the cold MISS is counted: {row:?}");
    assert!(hits >= 1, "the loaded page's HIT is counted: {row:?}");
    assert!(
        hits + misses >= requests,
        "hits + misses count the {requests} loads of `/` the browser made: {row:?}"
    );
    count("stales", &row.stales);
    assert!(count("refreshes", &row.refreshes) >= 1, "the refresh that landed is counted: {row:?}");
    assert_eq!(count("failures", &row.failures), 0, "{row:?}");
    for (name, cell) in [("ratio", &row.ratio), ("p50", &row.p50), ("p99", &row.p99)] {
        assert!(!cell.is_empty(), "the {name} cell is empty: {row:?}");
    }
    assert!(!dashboard.queues.is_empty(), "table#queues has a row per queue: {dashboard:?}");
    assert!(dashboard.chart, "the dashboard has its svg#chart");
    let dashboard_png = screenshot(&browser, "dashboard.png", true).await;

    browser.close().await.unwrap();
    for png in [&cold_png, &loaded_png, &dashboard_png] {
        assert!(std::fs::metadata(png).unwrap().len() > 1000, "{} is all but empty", png.display());
    }
    println!("the browser test took {:?}", started.elapsed());
}
