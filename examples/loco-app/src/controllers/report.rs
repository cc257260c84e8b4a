use cacheback::cacheback;
use loco_rs::prelude::*;

/// A slow read, cached: fresh for 5 s, then refreshed in the background.
#[cacheback(lifetime = 5)]
pub async fn slow_report(_ctx: &AppContext, name: String) -> Result<String, loco_rs::Error> {
    tokio::time::sleep(std::time::Duration::from_secs(1)).await; // stands for a slow query
    let built_at = chrono::Utc::now();
    Ok(format!("report for {name}, built at {built_at}"))
}

pub async fn show(State(ctx): State<AppContext>, Path(name): Path<String>) -> Result<Response> {
    format::text(&slow_report(&ctx, name).await?)
}

pub fn routes() -> Routes {
    Routes::new().prefix("report").add("/{name}", get(show))
}
