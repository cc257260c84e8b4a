use std::time::{Duration, Instant};

use loco_rs::TestServer;
use loco_rs::testing::prelude::*;
use sandbox::app::App;

/// The app boots against one SQLite file and installs the global engine:
/// these tests take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// GETs `uri` until its page lists items (a miss is refreshed in the background).
async fn until_filled(request: &TestServer, uri: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = request.get(uri).await;
        page.assert_status_ok();
        let html = page.text();
        if html.contains("<li>") {
            return html;
        }
        assert!(Instant::now() < deadline, "{uri} never listed items");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn items(html: &str) -> usize {
    html.matches("<li>").count()
}

macro_rules! endpoint_test {
    ($name:ident, $uri:expr, miss_first: $miss:expr, items: $count:expr) => {
        #[tokio::test]
        async fn $name() {
            let _turn = TURN.lock().await;
            request::<App, _, _>(|request, _ctx| async move {
                if $miss {
                    let first = request.get($uri).await;
                    first.assert_status_ok();
                    insta::assert_snapshot!(concat!(stringify!($name), "_miss"), first.text());
                }
                let html = until_filled(&request, $uri).await;
                assert_eq!(items(&html), $count, "{html}");
                insta::assert_snapshot!(stringify!($name), html);
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
        assert!(html.contains("<li>Item_42 "), "{html}");
        let html = until_filled(&request, "/?name=Item_7&name=Item_8").await;
        assert!(html.contains("<li>Item_8 ") && !html.contains("Item_7"), "{html}");
        // `+` is a space: no item has that name, so the page is empty.
        let page = request.get("/?name=Item+1").await;
        page.assert_status_ok();
        assert_eq!(items(&page.text()), 0);
    })
    .await;
}
