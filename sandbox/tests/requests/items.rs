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

/// The rows a page lists, and its status (`data-status`).
fn listed(html: &str) -> (String, Vec<String>) {
    let status = html.split("data-status=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default();
    let items = html
        .split("<li class=\"item\">")
        .skip(1)
        .map(|item| item.split(" <small>").next().unwrap_or_default().to_owned())
        .collect();
    (status.to_owned(), items)
}

/// `POST /items/{id}` renames the row through its `ActiveModel`, whose
/// `after_save` hook invalidates the table's tag: the next read of each
/// cached QuerySet page is the old row, served STALE while one refresh runs,
/// and the one after it shows the new name. Bad input is a 400 (or a 404 for
/// a row that does not exist) with nothing internal in the body.
#[tokio::test]
async fn a_rename_shows_on_the_cached_pages_after_one_refresh() {
    use sandbox::models::dummy_models::ActiveModel;
    use sea_orm::{ActiveModelTrait, Set};

    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, ctx| async move {
        let created = chrono::DateTime::parse_from_rfc3339("2012-08-07T08:23:24+00:00").unwrap();
        let row = ActiveModel {
            name: Set("Renamable".to_owned()),
            date_created: Set(created),
            ..Default::default()
        }
        .insert(&ctx.db)
        .await
        .unwrap();
        let (item, page) = (format!("/items/{}", row.id), "/?name=Renamable&qs");
        let name = |body: String| serde_json::from_str::<serde_json::Value>(&body).unwrap()["name"].clone();
        assert_eq!(name(request.get(&item).await.text()), "Renamable");
        // The page's miss is refreshed in the background: wait for it.
        let mut shown = listed(&request.get(page).await.text());
        for _ in 0..100 {
            if shown.1 == ["Renamable"] {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            shown = listed(&request.get(page).await.text());
        }
        assert_eq!(shown, ("hit".to_owned(), vec!["Renamable".to_owned()]));

        let renamed = request.post(&item).json(&serde_json::json!({"name": "Renamed"})).await;
        renamed.assert_status_ok();
        assert_eq!(name(renamed.text()), "Renamed");

        // Served stale at once, while one refresh runs; then the new row.
        assert_eq!(name(request.get(&item).await.text()), "Renamable", "the stale row, served at once");
        assert_eq!(
            listed(&request.get(page).await.text()),
            ("stale".to_owned(), vec!["Renamable".to_owned()])
        );
        let (mut item_now, mut page_now) = (serde_json::Value::Null, listed(""));
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            item_now = name(request.get(&item).await.text());
            page_now = listed(&request.get(page).await.text());
            if item_now == "Renamed" && page_now.1.is_empty() {
                break;
            }
        }
        assert_eq!(item_now, "Renamed", "after one refresh");
        assert_eq!(page_now, ("hit".to_owned(), vec![]), "no row is named Renamable any more");

        for (path, body, status) in [
            (item.as_str(), serde_json::json!({"name": ""}), 400),
            (item.as_str(), serde_json::json!({"name": "x".repeat(101)}), 400),
            (item.as_str(), serde_json::json!({"name": "a\u{0}b"}), 400),
            // Not the body's shape at all: axum's JSON rejection.
            (item.as_str(), serde_json::json!({"nom": "x"}), 422),
            ("/items/abc", serde_json::json!({"name": "x"}), 400),
            ("/items/999999", serde_json::json!({"name": "x"}), 404),
        ] {
            let answer = request.post(path).json(&body).await;
            assert_eq!(answer.status_code().as_u16(), status, "{path} {body}: {}", answer.text());
            for internal in ["dummy_models", "sandbox", "cacheback", "sqlx", "SELECT"] {
                assert!(!answer.text().contains(internal), "`{internal}` in {}", answer.text());
            }
        }
        sea_orm::ModelTrait::delete(row, &ctx.db).await.unwrap();
    })
    .await;
}
