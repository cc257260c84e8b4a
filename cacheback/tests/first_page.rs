//! The controller of docs/installation.md's "Your first cached page"
//! (`examples/loco-app/src/controllers/report.rs`, whose tests run all of the
//! page's promises in the app itself) against loco's test context, with no
//! app around it: the first request fetches, the second is a HIT with the
//! same answer.
#![cfg(feature = "loco")]

mod report {
    // As in docs/installation.md, except the 1 s sleep, shortened to 200 ms.
    use cacheback::cacheback;
    use loco_rs::prelude::*;

    /// A slow read, cached: fresh for 5 s, then refreshed in the background.
    #[cacheback(lifetime = 5)]
    pub async fn slow_report(_ctx: &AppContext, name: String) -> Result<String, loco_rs::Error> {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await; // stands for a slow query
        let built_at = chrono::Utc::now();
        Ok(format!("report for {name}, built at {built_at}"))
    }

    pub async fn show(State(ctx): State<AppContext>, Path(name): Path<String>) -> Result<Response> {
        format::text(&slow_report(&ctx, name).await?)
    }

    pub fn routes() -> Routes {
        Routes::new().prefix("report").add("/{name}", get(show))
    }
}

#[tokio::test]
async fn the_first_cached_page_is_fetched_once_then_served_from_the_cache() {
    let ctx = loco_rs::tests_cfg::app::get_app_context().await;
    let initializer = cacheback::loco::CachebackInitializer::new(|builder, _ctx| builder);
    initializer.install(&ctx).await.unwrap();
    assert_eq!(report::routes().handlers.len(), 1);

    let body = |response: axum::response::Response| async move {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let started = std::time::Instant::now();
    let first =
        report::show(axum::extract::State(ctx.clone()), axum::extract::Path("bob".to_owned())).await.unwrap();
    let first = body(first).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(200), "a MISS fetches");
    let started = std::time::Instant::now();
    let second =
        report::show(axum::extract::State(ctx), axum::extract::Path("bob".to_owned())).await.unwrap();
    assert_eq!(body(second).await, first, "the same report");
    assert!(started.elapsed() < std::time::Duration::from_millis(100), "a HIT does not");
    assert!(first.starts_with("report for bob, built at "), "{first}");
}
