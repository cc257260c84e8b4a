//! The sandbox's migrations: its table, and cacheback's (the tables of
//! `backend: database`, harmless when the cache is elsewhere).

pub use sea_orm_migration::prelude::*;

mod m20240101_000001_dummy_models;

/// Runs the sandbox's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20240101_000001_dummy_models::Migration), Box::new(cacheback::store::Migration)]
    }
}
