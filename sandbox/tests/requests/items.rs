//! `GET /items/{id}` through `QuerySetGetJob`: the row, a 404 for an id no
//! row has, a 400 for an id that is not a number; no internal text in the
//! error bodies.

use loco_rs::testing::prelude::*;
use sandbox::app::App;

use crate::TURN;

#[tokio::test]
async fn an_item_is_its_row_and_a_hit_the_second_time() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, _ctx| async move {
        let first = request.get("/items/1").await;
        first.assert_status_ok();
        let second = request.get("/items/1").await;
        second.assert_status_ok();
        assert_eq!(first.text(), second.text(), "the same row, from the cache");
        let row: serde_json::Value = serde_json::from_str(&first.text()).unwrap();
        assert_eq!(row["id"], 1);
        insta::assert_snapshot!("item", first.text());
    })
    .await;
}

#[tokio::test]
async fn an_id_no_row_has_is_a_404() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, _ctx| async move {
        let missing = request.get("/items/999999").await;
        missing.assert_status(axum::http::StatusCode::NOT_FOUND);
        let body = missing.text();
        for internal in ["dummy_models", "999999", "matches", "sandbox", "cacheback"] {
            assert!(!body.contains(internal), "`{internal}` in {body}");
        }
        insta::assert_snapshot!("item_not_found", body);
    })
    .await;
}

#[tokio::test]
async fn an_id_that_is_not_a_number_is_a_400() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, _ctx| async move {
        let bad = request.get("/items/abc").await;
        bad.assert_status_bad_request();
        insta::assert_snapshot!("item_bad_id", bad.text());
    })
    .await;
}
