//! `sandbox::models::dummy_models`: each query of `Entity`, on the seeded
//! rows (`Item_0` .. `Item_99`, ids 1 .. 100).

use loco_rs::app::{AppContext, Hooks};
use loco_rs::testing::prelude::*;
use sandbox::app::App;
use sandbox::models::dummy_models::{Entity, Model};

use crate::TURN;

/// The app booted for tests: the table recreated and seeded.
async fn seeded() -> AppContext {
    boot_test::<App>().await.unwrap().app_context
}

fn names(rows: &[Model]) -> Vec<&str> {
    rows.iter().map(|row| row.name.as_str()).collect()
}

/// `Item_{n}`'s row as the fixture has it: id `n + 1`.
fn assert_fixture_row(row: &Model) {
    let n: i32 = row.name.strip_prefix("Item_").unwrap().parse().unwrap();
    assert_eq!(row.id, n + 1, "{row:?}");
    assert_eq!(row.date_created.format("%Y-%m-%d").to_string(), "2012-08-07", "{row:?}");
}

#[tokio::test]
async fn all_by_name_is_every_row_ordered_by_name() {
    let _turn = TURN.lock().await;
    let ctx = seeded().await;
    let rows = Entity::all_by_name(&ctx.db).await.unwrap();
    assert_eq!(rows.len(), 100);
    let names = names(&rows);
    // By name, as text: `Item_1` then `Item_10`, not `Item_2`.
    assert_eq!(names[..4], ["Item_0", "Item_1", "Item_10", "Item_11"]);
    assert_eq!(names[99], "Item_99");
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let mut ids: Vec<i32> = rows.iter().map(|row| row.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=100).collect::<Vec<_>>());
    rows.iter().for_each(assert_fixture_row);
    let first = &rows[0];
    assert_eq!(first.date_created.to_rfc3339(), "2012-08-07T08:23:24.718+00:00");
}

#[tokio::test]
async fn named_is_the_rows_of_exactly_that_name() {
    let _turn = TURN.lock().await;
    let ctx = seeded().await;
    let rows = Entity::named(&ctx.db, "Item_42").await.unwrap();
    assert_eq!(names(&rows), ["Item_42"]);
    assert_eq!(rows[0].id, 43);
    assert_fixture_row(&rows[0]);
    // Exactly: not a prefix, not a part, not another case.
    for name in ["Item_420", "Item_", "Item", "tem_42", "Item_42 ", "item_42", ""] {
        assert!(Entity::named(&ctx.db, name).await.unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn names_containing_is_the_rows_whose_name_holds_it_by_name() {
    let _turn = TURN.lock().await;
    let ctx = seeded().await;
    // The seed's `fetch()`: names containing "1" (Item_1, Item_10 .. Item_19,
    // Item_21, Item_31 .. Item_91).
    let rows = Entity::names_containing(&ctx.db, "1").await.unwrap();
    assert_eq!(rows.len(), 19);
    let names = names(&rows);
    assert_eq!(names[..3], ["Item_1", "Item_10", "Item_11"]);
    assert_eq!(names[18], "Item_91");
    assert!(names.iter().all(|name| name.contains('1')), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    rows.iter().for_each(assert_fixture_row);

    let rows = Entity::names_containing(&ctx.db, "Item_4").await.unwrap();
    let expected: Vec<String> =
        ["Item_4".to_owned()].into_iter().chain((40..50).map(|n| format!("Item_{n}"))).collect();
    assert_eq!(self::names(&rows), expected);
    assert_eq!(self::names(&Entity::names_containing(&ctx.db, "_99").await.unwrap()), ["Item_99"]);
    assert_eq!(Entity::names_containing(&ctx.db, "").await.unwrap().len(), 100);
    assert!(Entity::names_containing(&ctx.db, "Item_100").await.unwrap().is_empty());
}

#[tokio::test]
async fn is_empty_until_seeded() {
    let _turn = TURN.lock().await;
    let ctx = seeded().await;
    assert!(!Entity::is_empty(&ctx.db).await.unwrap());
    App::truncate(&ctx).await.unwrap();
    assert!(Entity::is_empty(&ctx.db).await.unwrap());
    assert!(Entity::all_by_name(&ctx.db).await.unwrap().is_empty());
}
