//! `/_cacheback`: the jobs' numbers from the metrics, the chart, the queue.

use std::time::{Duration, Instant};

use loco_rs::TestServer;
use loco_rs::app::Hooks;
use loco_rs::boot::StartMode;
use loco_rs::environment::Environment;
use loco_rs::testing::prelude::*;
use sandbox::app::App;
use sandbox::initializers::metrics::Metrics;

use crate::home::until_filled;
use crate::{TURN, redacted};

/// The text of `<td class="{class}">` in the row of `job`.
fn cell<'a>(html: &'a str, job: &str, class: &str) -> &'a str {
    let row = &html
        [html.find(&format!(r#"<tr data-job="{job}">"#)).unwrap_or_else(|| panic!("no row {job}: {html}"))..];
    let row = &row[..row.find("</tr>").unwrap()];
    let start = row.find(&format!(r#"<td class="{class}""#)).unwrap_or_else(|| panic!("no {class}: {row}"));
    let text = &row[start..];
    let text = &text[text.find('>').unwrap() + 1..];
    &text[..text.find("</td>").unwrap()]
}

fn count(html: &str, job: &str, class: &str) -> u64 {
    cell(html, job, class).parse().unwrap_or_else(|_| panic!("{class} of {job}: {}", cell(html, job, class)))
}

#[tokio::test]
async fn counts_what_the_pages_did() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, ctx| async move {
        const KEYED: &str = "sandbox::jobs::KeyedJob";
        // The sampler takes its first point at once.
        let metrics = Metrics::from_context(&ctx).expect("metrics are on in the test config");
        let deadline = Instant::now() + Duration::from_secs(5);
        while metrics.history().is_empty() {
            assert!(Instant::now() < deadline, "the sampler took no point");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let before = request.get("/_cacheback").await.text();
        let (hits, misses, refreshes) = (
            count(&before, KEYED, "hits"),
            count(&before, KEYED, "misses"),
            count(&before, KEYED, "refreshes"),
        );
        // A MISS fetched in the request, then two HITs.
        until_filled(&request, "/?name=Item_5").await;
        for _ in 0..2 {
            until_filled(&request, "/?name=Item_5").await;
        }
        let page = request.get("/_cacheback").await;
        page.assert_status_ok();
        let html = page.text();
        assert_eq!(count(&html, KEYED, "hits"), hits + 2, "{html}");
        assert_eq!(count(&html, KEYED, "misses"), misses + 1, "{html}");
        assert_eq!(count(&html, KEYED, "refreshes"), refreshes + 1, "{html}");
        assert_eq!(count(&html, KEYED, "failures"), 0, "{html}");
        assert!(cell(&html, KEYED, "ratio").ends_with(" %"), "{html}");
        assert!(cell(&html, KEYED, "p50").ends_with('s'), "a duration: {html}");
        assert!(html.contains(r#"<tr data-queue="in_process">"#), "{html}");
        assert!(html.contains(r#"<svg id="chart""#), "{html}");
        assert!(!html.contains("metrics-off"), "{html}");
        redacted(|| insta::assert_snapshot!("dashboard", html));
    })
    .await;
}

/// With `settings.metrics` off: no recorder of its own (the process's may be
/// installed by another test), `/metrics` is a 404 and the dashboard says so,
/// and still shows the queue.
#[tokio::test]
async fn without_metrics() {
    let _turn = TURN.lock().await;
    let mut config = App::load_config(&Environment::Test).await.unwrap();
    let settings = config.settings.get_or_insert_with(|| serde_json::json!({}));
    settings["metrics"] = serde_json::Value::Bool(false);
    let boot = App::boot(StartMode::ServerOnly, &Environment::Test, config).await.unwrap();
    let server = TestServer::new(boot.router.unwrap()).unwrap();

    server.get("/metrics").await.assert_status_not_found();
    let page = server.get("/_cacheback").await;
    page.assert_status_ok();
    let html = page.text();
    assert!(html.contains(r#"<p id="metrics-off">"#), "{html}");
    assert!(!html.contains(r#"id="jobs""#) && !html.contains("<svg"), "{html}");
    assert!(html.contains(r#"<tr data-queue="in_process">"#), "{html}");
    redacted(|| insta::assert_snapshot!("dashboard_without_metrics", html));
}
