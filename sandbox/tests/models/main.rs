//! The models' queries against the test database (loco's `boot_test`, test
//! config: a SQLite file recreated per boot, seeded with the 100 rows of
//! `fixtures/dummy_models.yaml` by the app's `before_run`).

mod dummy_models;

/// Every boot recreates the one SQLite file: the tests take turns.
pub static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
