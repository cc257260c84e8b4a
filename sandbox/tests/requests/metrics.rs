//! `/metrics`: the Prometheus text of cacheback's metrics.

use loco_rs::testing::prelude::*;
use sandbox::app::App;
use sandbox::dashboard::prometheus::parse;

use crate::TURN;
use crate::home::until_filled;

#[tokio::test]
async fn serves_the_text_format() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, _ctx| async move {
        until_filled(&request, "/?name=Item_6").await;
        let res = request.get("/metrics").await;
        res.assert_status_ok();
        assert_eq!(res.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
        let text = res.text();
        assert!(text.contains("# TYPE cacheback_lookups_total counter\n"), "{text}");
        let samples = parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        let lookups = |status: &str| {
            samples
                .iter()
                .find(|s| {
                    s.name == "cacheback_lookups_total"
                        && s.label("job") == Some("sandbox::jobs::KeyedJob")
                        && s.label("alias") == Some("default")
                        && s.label("status") == Some(status)
                })
                .unwrap_or_else(|| panic!("no {status} lookups of KeyedJob:\n{text}"))
                .value
        };
        assert!(lookups("miss") >= 1.0, "{text}");
        // Every status is there from the job's first lookup, at 0 if need be.
        for status in ["hit", "stale", "stale_if_error"] {
            assert!(lookups(status) >= 0.0);
        }
        // The refresh's duration, rendered as a summary.
        assert!(
            samples.iter().any(|s| s.name == "cacheback_refresh_duration_seconds"
                && s.label("job") == Some("sandbox::jobs::KeyedJob")
                && s.label("quantile") == Some("0.99")),
            "{text}"
        );
    })
    .await;
}
