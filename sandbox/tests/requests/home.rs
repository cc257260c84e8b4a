use std::time::{Duration, Instant};

use loco_rs::TestServer;
use loco_rs::testing::prelude::*;
use sandbox::app::App;

use crate::{TURN, redacted};

/// GETs `uri` until its page lists items and no refresh is pending (a miss
/// is refreshed in the background).
pub async fn until_filled(request: &TestServer, uri: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = request.get(uri).await;
        page.assert_status_ok();
        let html = page.text();
        if html.contains(r#"data-pending="false""#) && html.contains(r#"<li class="item">"#) {
            return html;
        }
        assert!(Instant::now() < deadline, "{uri} never listed items");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn items(html: &str) -> usize {
    html.matches(r#"<li class="item">"#).count()
}

/// The value of `attribute` on `<body>`.
fn body_attribute<'a>(html: &'a str, attribute: &str) -> &'a str {
    let body = &html[html.find("<body").expect("a <body>")..];
    let start = body.find(&format!(r#"{attribute}=""#)).unwrap_or_else(|| panic!("no {attribute}: {html}"));
    let value = &body[start + attribute.len() + 2..];
    &value[..value.find('"').unwrap()]
}

/// A page whose read queued a refresh, or found it under way: MISS (or the
/// placeholder's HIT), the notice, the meta refresh, no items.
fn assert_pending(html: &str) {
    assert_eq!(body_attribute(html, "data-pending"), "true", "{html}");
    assert!(html.contains(r#"<meta http-equiv="refresh" content="1">"#), "{html}");
    assert!(html.contains(r#"<p id="refresh">Refresh queued"#), "{html}");
    assert!(html.contains(r#"<p id="empty">No items yet.</p>"#), "{html}");
}

/// The first read (a MISS), then the page once filled: a MISS that queued a
/// refresh is pending until it lands and then a HIT; a MISS fetched in the
/// request is filled at once.
macro_rules! endpoint_test {
    ($name:ident, $uri:expr, miss_first: $miss:expr, items: $count:expr) => {
        #[tokio::test]
        async fn $name() {
            let _turn = TURN.lock().await;
            request::<App, _, _>(|request, _ctx| async move {
                if $miss {
                    let first = request.get($uri).await;
                    first.assert_status_ok();
                    let html = first.text();
                    assert_eq!(body_attribute(&html, "data-status"), "miss", "{html}");
                    assert_pending(&html);
                    redacted(|| insta::assert_snapshot!(concat!(stringify!($name), "_miss"), html));
                }
                let html = until_filled(&request, $uri).await;
                assert_eq!(items(&html), $count, "{html}");
                let status = if $miss { "hit" } else { "miss" };
                assert_eq!(body_attribute(&html, "data-status"), status, "{html}");
                assert!(!html.contains("http-equiv") && !html.contains(r#"id="refresh""#), "{html}");
                redacted(|| insta::assert_snapshot!(stringify!($name), html));
            })
            .await;
        }
    };
}

// `/`: VanillaJob, no fetch on a miss: empty first, then all 100 rows.
endpoint_test!(vanilla, "/", miss_first: true, items: 100);
// `?name=X&qs`: QuerySetFilterJob, no fetch on a miss.
endpoint_test!(queryset_filter, "/?name=Item_1&qs", miss_first: true, items: 1);
// `?name=X`: KeyedJob, fetched on a miss.
endpoint_test!(keyed, "/?name=Item_42", miss_first: false, items: 1);
// `?function&q=X`: FunctionJob, no fetch on a miss.
endpoint_test!(function_with_arg, "/?function&q=9", miss_first: true, items: 19);
// `?function`: names containing "1".
endpoint_test!(function, "/?function", miss_first: true, items: 19);
// `?decorator`: the decorated function, names containing "3".
endpoint_test!(decorator, "/?decorator", miss_first: false, items: 19);

/// Bad query input is a 400 with a message, never a 500.
#[tokio::test]
async fn bad_input_is_a_400() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, _ctx| async move {
        let long = "x".repeat(300);
        let res = request.get(&format!("/?name={long}")).await;
        res.assert_status(axum::http::StatusCode::BAD_REQUEST);
        insta::assert_snapshot!("bad_input_long_name", res.text());
        let res = request.get("/?name=").await;
        res.assert_status(axum::http::StatusCode::BAD_REQUEST);
        // PostgreSQL text cannot hold NUL: refused before any job runs.
        for uri in ["/?name=a%00b", "/?name=a%00b&qs", "/?function&q=%00"] {
            let res = request.get(uri).await;
            res.assert_status(axum::http::StatusCode::BAD_REQUEST);
            assert!(res.text().contains("contains a NUL character"), "{uri}: {}", res.text());
        }
    })
    .await;
}

/// Query strings are read as Django reads them: percent-encoding and `+` are
/// decoded, and a repeated name keeps its last value.
#[tokio::test]
async fn query_strings_are_decoded_and_the_last_value_wins() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, _ctx| async move {
        let html = until_filled(&request, "/?name=Item%5F42").await;
        assert_eq!(items(&html), 1, "{html}");
        assert!(html.contains(r#"<li class="item">Item_42 "#), "{html}");
        let html = until_filled(&request, "/?name=Item_7&name=Item_8").await;
        assert!(html.contains(r#"<li class="item">Item_8 "#), "{html}");
        assert_eq!(items(&html), 1, "{html}");
        // `+` is a space: no item has that name, so the page is empty.
        let page = request.get("/?name=Item+1").await;
        page.assert_status_ok();
        assert_eq!(items(&page.text()), 0);
    })
    .await;
}

/// A read that finds the placeholder a MISS stored while its refresh runs
/// is a HIT with nothing to show: the page says the refresh is under way and
/// reloads, until the refresh lands.
#[tokio::test]
async fn the_placeholder_of_a_miss_is_pending_until_its_refresh_lands() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, ctx| async move {
        // The page's VanillaJob fetches at once (test config); this one's
        // refresh, queued with its own state, takes 2 s. Same job, same key.
        let cache = cacheback::loco::from_context(&ctx).unwrap();
        let slow = sandbox::cached::VanillaJob { db: ctx.db.clone(), delay: Duration::from_secs(2) };
        let first = cache.job(slow).lookup(&()).await.unwrap();
        assert_eq!((first.status, first.sync_fetch), (cacheback::CacheStatus::Miss, Some(false)));

        let html = request.get("/").await.text();
        assert_eq!(body_attribute(&html, "data-status"), "hit", "{html}");
        assert_pending(&html);
        assert!(html.contains("the empty placeholder a miss stored"), "{html}");
        assert!(!html.contains(r#"id="age""#), "nothing was fetched yet: {html}");

        let html = until_filled(&request, "/").await;
        assert_eq!(body_attribute(&html, "data-status"), "hit", "{html}");
        assert!(
            html.contains(r#"<p id="age">Fetched <span class="age">"#) && html.contains("fresh for"),
            "{html}"
        );
    })
    .await;
}
