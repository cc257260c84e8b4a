//! The seed's `DummyModel`: the entity (its behaviour and queries are in
//! [`crate::models::dummy_models`]).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row: an id, a name (`Item_0` .. `Item_99`) and when it was created.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "dummy_models")]
pub struct Model {
    /// The primary key.
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The name.
    pub name: String,
    /// When it was created.
    pub date_created: DateTimeWithTimeZone,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}
