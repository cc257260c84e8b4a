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

pub use self::filters::{Filters, QueryError};
pub use self::jobs::{QuerySetFilterJob, QuerySetGetJob};
