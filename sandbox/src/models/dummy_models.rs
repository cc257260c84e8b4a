//! The seed's `DummyModel`: its behaviour and its queries, outside the
//! generated entity ([`super::_entities::dummy_models`]), as loco lays models out.

use sea_orm::{
    ActiveModelBehavior, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

pub use super::_entities::dummy_models::{ActiveModel, Column, Entity, Model};

impl ActiveModelBehavior for ActiveModel {}

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
