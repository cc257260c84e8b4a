//! Cached sea-orm reads (feature `sea-orm`): the original's `QuerySetGetJob` and
//! `QuerySetFilterJob`, keyed on the entity, with Django-style lookups.
//!
//! [`Filters`] are `field__lookup = value` pairs, checked against the entity's
//! columns before anything is cached or queried: an unknown column, an unknown
//! lookup or a value of the wrong type is a [`QueryError`] that names the
//! problem, never SQL error text. Lookups: `exact` (the default), `iexact`,
//! `contains`, `icontains`, `startswith`, `istartswith`, `endswith`,
//! `iendswith`, `gt`, `gte`, `lt`, `lte`, `in`, `isnull`. They behave the same
//! on SQLite and PostgreSQL (`contains` is case-sensitive on both).
//!
//! ```no_run
//! # mod dummy_models {
//! #     use sea_orm::entity::prelude::*;
//! #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
//! #     #[sea_orm(table_name = "dummy_models")]
//! #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub name: String }
//! #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
//! #     pub enum Relation {}
//! #     impl ActiveModelBehavior for ActiveModel {}
//! # }
//! use std::time::Duration;
//! use cacheback::Cacheback;
//! use cacheback::orm::{Filters, QuerySetFilterJob};
//!
//! # async fn view(cache: Cacheback, db: sea_orm::DatabaseConnection) -> Result<(), Box<dyn std::error::Error>> {
//! let filters = Filters::parse::<dummy_models::Entity>([("name__contains", "1")])?; // a 400 if bad
//! let job = QuerySetFilterJob::<dummy_models::Entity>::new(db)
//!     .with_lifetime(Duration::from_secs(10))
//!     .with_fetch_on_miss(false);
//! let items = cache.job(job).get(&filters).await?;
//! # Ok(()) }
//! ```

mod filters;
mod jobs;

use sea_orm::EntityTrait;

pub use self::filters::{Filters, QueryError};
pub use self::jobs::{QuerySetFilterJob, QuerySetGetJob};
use crate::engine::Cacheback;
use crate::error::Error;

/// Makes every cached [`QuerySetGetJob`] and [`QuerySetFilterJob`] read of
/// `E` stale, in every process: [`Cacheback::invalidate_tag`] of the
/// entity's table name, which the ORM jobs tag every item with.
///
/// ```
/// # mod posts {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "posts")]
/// #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = cacheback::Cacheback::builder().build().unwrap();
/// // After `Entity::update_many()`, `insert_many` or raw SQL, which bypass
/// // sea-orm's `ActiveModelBehavior` hooks:
/// cacheback::orm::invalidate_model::<posts::Entity>(&cache).await.unwrap();
/// # });
/// ```
pub async fn invalidate_model<E: EntityTrait>(cache: &Cacheback) -> Result<(), Error> {
    cache.invalidate_tag(filters::table::<E>()).await
}

/// Invalidation on save, for sea-orm's `ActiveModelBehavior::after_save` and
/// `after_delete`: [`invalidate_model`] on the [global](Cacheback::global)
/// engine (the one the loco initializer installs). Without one, nothing is
/// cached through it, and nothing is done. A failure (the store is down) is
/// logged, not returned: the row is written, and a failed save would say
/// otherwise; the items stay what they were until their lifetime ends.
///
/// sea-orm runs these hooks for writes through an `ActiveModel` only
/// (`save`, `insert`, `update`, `delete`): `insert_many`, `update_many`,
/// `delete_many` and raw SQL bypass them, so call [`invalidate_model`]
/// after those. Inside a transaction the hook runs before the commit: a
/// reader may refresh from the old rows in between, and its item would be
/// fresh. Invalidate again after the commit (`invalidate_model` once
/// `txn.commit()` returns) where that matters.
///
/// ```
/// mod posts {
///     use sea_orm::entity::prelude::*;
///     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
///     #[sea_orm(table_name = "posts")]
///     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub title: String }
///     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
///     pub enum Relation {}
///
///     #[async_trait::async_trait]
///     impl ActiveModelBehavior for ActiveModel {
///         async fn after_save<C: ConnectionTrait>(model: Model, _: &C, _: bool) -> Result<Model, DbErr> {
///             cacheback::orm::invalidate_on_save::<Entity>().await;
///             Ok(model)
///         }
///         async fn after_delete<C: ConnectionTrait>(self, _: &C) -> Result<Self, DbErr> {
///             cacheback::orm::invalidate_on_save::<Entity>().await;
///             Ok(self)
///         }
///     }
/// }
/// ```
pub async fn invalidate_on_save<E: EntityTrait>() {
    let Some(cache) = Cacheback::global() else { return };
    if let Err(err) = invalidate_model::<E>(&cache).await {
        tracing::error!(
            target: "cacheback",
            error = %err,
            entity = filters::table::<E>(),
            "Unable to invalidate the cached reads of a saved model; they stay until their lifetime ends"
        );
    }
}
