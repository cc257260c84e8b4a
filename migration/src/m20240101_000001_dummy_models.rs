use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{pk_auto, string_len, timestamp_with_time_zone};

/// The seed's `DummyModel`: `id`, `name` (100 characters), `date_created`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DummyModels {
    Table,
    Id,
    Name,
    DateCreated,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DummyModels::Table)
                    .if_not_exists()
                    .col(pk_auto(DummyModels::Id))
                    .col(string_len(DummyModels::Name, 100))
                    .col(timestamp_with_time_zone(DummyModels::DateCreated))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DummyModels::Table).to_owned()).await
    }
}
