//! The seed's `DummyModel`: its behaviour and its queries, outside the
//! generated entity ([`super::_entities::dummy_models`]), as loco lays models out.

use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};

pub use super::_entities::dummy_models::{ActiveModel, Column, Entity, Model};

/// Every write through an `ActiveModel` makes the cached reads of the table
/// stale (they are tagged with its name), in every process: the next read of
/// each is served stale while one refresh is queued.
#[async_trait::async_trait]
impl ActiveModelBehavior for ActiveModel {
    async fn after_save<C: ConnectionTrait>(model: Model, _: &C, _: bool) -> Result<Model, DbErr> {
        cacheback::orm::invalidate_on_save::<Entity>().await;
        Ok(model)
    }

    async fn after_delete<C: ConnectionTrait>(self, _: &C) -> Result<Self, DbErr> {
        cacheback::orm::invalidate_on_save::<Entity>().await;
        Ok(self)
    }
}

impl Model {
    /// Renames the row (through its `ActiveModel`, so the hooks above run).
    pub async fn rename(self, db: &impl ConnectionTrait, name: &str) -> Result<Model, DbErr> {
        let mut row: ActiveModel = self.into();
        row.name = Set(name.to_owned());
        row.update(db).await
    }
}

/// The queries the sandbox runs.
impl Entity {
    /// Every row, by name (the seed model's ordering).
    pub async fn all_by_name(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
        Self::find().order_by_asc(Column::Name).all(db).await
    }

    /// The rows named exactly `name`.
    pub async fn named(db: &impl ConnectionTrait, name: &str) -> Result<Vec<Model>, DbErr> {
        Self::find().filter(Column::Name.eq(name)).all(db).await
    }

    /// The rows whose name contains `q`, by name.
    pub async fn names_containing(db: &impl ConnectionTrait, q: &str) -> Result<Vec<Model>, DbErr> {
        Self::find().filter(Column::Name.contains(q)).order_by_asc(Column::Name).all(db).await
    }

    /// Whether the table has no rows.
    pub async fn is_empty(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
        Ok(Self::find().count(db).await? == 0)
    }
}
