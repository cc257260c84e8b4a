//! The ORM jobs: [`QuerySetGetJob`] and [`QuerySetFilterJob`], keyed on the
//! entity and the filters, and their registration for workers.

use std::any::TypeId;
use std::borrow::Cow;
use std::marker::PhantomData;

use sea_orm::{
    DatabaseConnection, EntityTrait, IdenStatic, ModelTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::filters::{Filters, QueryError, order, table};
use crate::error::FetchError;
use crate::job::Job;
use crate::key::{Identity, KeyError, derive_key};
use crate::policy::{Options, policies, setters};

/// What the two ORM jobs share: the connection, options, and the entity.
#[derive(Debug, Clone)]
struct QuerySet<E> {
    db: DatabaseConnection,
    options: Options,
    order_by: Option<String>,
    _entity: PhantomData<fn() -> E>,
}

/// The state a worker rebuilds an ORM job from.
#[derive(Serialize, Deserialize)]
struct State {
    options: Options,
    order_by: Option<String>,
}

impl<E: EntityTrait> QuerySet<E> {
    fn new(db: DatabaseConnection) -> Self {
        Self { db, options: Options::default(), order_by: None, _entity: PhantomData }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(State { options: self.options.clone(), order_by: self.order_by.clone() })
            .unwrap_or_default()
    }

    fn from_state(db: DatabaseConnection, state: &serde_json::Value) -> Result<Self, FetchError> {
        let state: State = serde_json::from_value(state.clone())?;
        Ok(Self { db, options: state.options, order_by: state.order_by, _entity: PhantomData })
    }

    /// The original's key: `<entity>-<job>:<hash>`; checks the filters too.
    fn key(&self, job: &str, filters: &Filters) -> Result<String, KeyError> {
        if filters.checked_for != Some(TypeId::of::<E>()) {
            filters
                .condition::<E>(self.db.get_database_backend())
                .map_err(|e| KeyError::new(e.to_string()))?;
        }
        order::<E>(self.order_by.as_deref()).map_err(|e| KeyError::new(e.to_string()))?;
        /// The key's arguments, borrowed: the map `{filters, order_by?}`.
        struct KeyArgs<'a> {
            filters: &'a Filters,
            order_by: Option<&'a str>,
        }
        impl Serialize for KeyArgs<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("filters", self.filters)?;
                if let Some(order_by) = self.order_by {
                    map.serialize_entry("order_by", order_by)?;
                }
                map.end()
            }
        }
        derive_key(
            &format!("{}-{job}", table::<E>()),
            &KeyArgs { filters, order_by: self.order_by.as_deref() },
        )
    }

    /// The tags of every item: the entity's table name (what
    /// [`invalidate_model`](crate::orm::invalidate_model) invalidates), and
    /// the job's own.
    fn tags(&self) -> Vec<String> {
        std::iter::once(table::<E>().to_owned()).chain(self.options.tags.iter().cloned()).collect()
    }

    async fn rows(&self, filters: &Filters, limit: Option<u64>) -> Result<Vec<E::Model>, QueryError> {
        let condition = filters.condition::<E>(self.db.get_database_backend())?;
        let mut query = E::find().filter(condition);
        for (col, direction) in order::<E>(self.order_by.as_deref())? {
            query = query.order_by(col, direction);
        }
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        query
            .all(&self.db)
            .await
            .map_err(|e| QueryError::Database { entity: table::<E>(), message: e.to_string() })
    }
}

macro_rules! queryset_job {
    ($(#[$doc:meta])* $job:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $job<E: EntityTrait>(QuerySet<E>);

        impl<E: EntityTrait> $job<E> {
            /// A job reading entity `E` through `db`, with the default options.
            pub fn new(db: DatabaseConnection) -> Self {
                Self(QuerySet::new(db))
            }
            fn options_mut(&mut self) -> &mut Options {
                &mut self.0.options
            }
            // with_lifetime, with_refresh_timeout, ...: one setter per policy.
            policies!(setters);
            /// Orders rows by a column (`-column` for descending); by primary key otherwise.
            #[must_use]
            pub fn with_order_by(mut self, column: impl Into<String>) -> Self {
                self.0.order_by = Some(column.into());
                self
            }
            /// The options.
            pub fn options(&self) -> &Options {
                &self.0.options
            }
            /// Sets every option at once.
            #[must_use]
            pub fn with_options(mut self, options: Options) -> Self {
                self.0.options = options;
                self
            }
        }
    };
}

queryset_job!(
    /// Caches `E::find().filter(..)` as one row (Django's `objects.get(**kwargs)`):
    /// no row is [`QueryError::NotFound`], several are [`QueryError::MultipleRows`].
    QuerySetGetJob
);

queryset_job!(
    /// Caches `E::find().filter(..)` as a list of rows (Django's `objects.filter(**kwargs)`).
    QuerySetFilterJob
);

impl<E> Job for QuerySetGetJob<E>
where
    E: EntityTrait,
    E::Model: Serialize + DeserializeOwned + Sync,
{
    type Args = Filters;
    type Output = E::Model;

    async fn fetch(&self, filters: &Filters) -> Result<E::Model, FetchError> {
        let mut rows = self.0.rows(filters, Some(2)).await?;
        let entity = table::<E>();
        match rows.len() {
            0 => Err(QueryError::NotFound { entity, filters: filters.describe() }.into()),
            1 => Ok(rows.remove(0)),
            _ => Err(QueryError::MultipleRows { entity, filters: filters.describe() }.into()),
        }
    }

    /// One `IN (...)` query when every filter set is one exact match on the
    /// same integer or text column (`id = 3`, `id = 7`, ...), each row
    /// matched back by that column; otherwise a [`fetch`](Job::fetch) of each,
    /// concurrently. A set that matches no row, or several, fails the batch
    /// as its `fetch` would fail.
    async fn fetch_many(&self, many: &[Filters]) -> Result<Vec<E::Model>, FetchError> {
        let Some((col, values)) = same_exact_column::<E>(many) else {
            return futures::future::try_join_all(many.iter().map(|filters| self.fetch(filters))).await;
        };
        let field = format!("{}__in", col.as_str());
        let rows = self.0.rows(&Filters::new().with(field, values.clone()), None).await?;
        let entity = table::<E>();
        values
            .iter()
            .zip(many)
            .map(|(value, filters)| {
                let mut matching = rows.iter().filter(|row| {
                    sea_orm::sea_query::value::sea_value_to_json_value(&row.get(col)) == *value
                });
                match (matching.next(), matching.next()) {
                    (Some(row), None) => Ok(row.clone()),
                    (None, _) => Err(QueryError::NotFound { entity, filters: filters.describe() }.into()),
                    (Some(_), Some(_)) => {
                        Err(QueryError::MultipleRows { entity, filters: filters.describe() }.into())
                    }
                }
            })
            .collect()
    }

    fn tags(&self, _: &Filters) -> Vec<String> {
        self.0.tags()
    }

    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("cacheback::orm::QuerySetGetJob<{}>", table::<E>()))
    }

    fn key(&self, filters: &Filters) -> Result<String, KeyError> {
        self.0.key("cacheback::orm::QuerySetGetJob", filters)
    }

    fn init_state(&self) -> serde_json::Value {
        self.0.state()
    }

    fn options(&self) -> &Options {
        &self.0.options
    }
}

impl<E> Job for QuerySetFilterJob<E>
where
    E: EntityTrait,
    E::Model: Serialize + DeserializeOwned + Sync,
{
    type Args = Filters;
    type Output = Vec<E::Model>;

    async fn fetch(&self, filters: &Filters) -> Result<Vec<E::Model>, FetchError> {
        Ok(self.0.rows(filters, None).await?)
    }

    fn tags(&self, _: &Filters) -> Vec<String> {
        self.0.tags()
    }

    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("cacheback::orm::QuerySetFilterJob<{}>", table::<E>()))
    }

    fn key(&self, filters: &Filters) -> Result<String, KeyError> {
        self.0.key("cacheback::orm::QuerySetFilterJob", filters)
    }

    fn init_state(&self) -> serde_json::Value {
        self.0.state()
    }

    fn options(&self) -> &Options {
        &self.0.options
    }
}

/// The column and the values of filter sets that are each one exact match
/// on the same integer or text column; `None` otherwise.
fn same_exact_column<E: EntityTrait>(many: &[Filters]) -> Option<(E::Column, Vec<serde_json::Value>)> {
    let mut column = None;
    let mut values = Vec::with_capacity(many.len());
    for filters in many {
        let (col, value) = filters.exact_match::<E>()?;
        if column.get_or_insert(col).as_str() != col.as_str() {
            return None;
        }
        values.push(value);
    }
    Some((column?, values))
}

impl crate::Builder {
    /// Registers the ORM jobs of entity `E` so a worker can refresh them, with
    /// the engine's `DatabaseConnection` [extension](crate::Builder::extension).
    ///
    /// ```no_run
    /// # mod dummy_models {
    /// #     use sea_orm::entity::prelude::*;
    /// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
    /// #     #[sea_orm(table_name = "dummy_models")]
    /// #     pub struct Model { #[sea_orm(primary_key)] pub id: i32, pub name: String }
    /// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    /// #     pub enum Relation {}
    /// #     impl ActiveModelBehavior for ActiveModel {}
    /// # }
    /// # fn build(db: sea_orm::DatabaseConnection) {
    /// let cache = cacheback::Cacheback::builder()
    ///     .extension(db)
    ///     .register_model::<dummy_models::Entity>()
    ///     .build()
    ///     .unwrap();
    /// # }
    /// ```
    #[must_use]
    #[cfg_attr(docsrs, doc(cfg(feature = "sea-orm")))]
    pub fn register_model<E>(self) -> Self
    where
        E: EntityTrait,
        E::Model: Serialize + DeserializeOwned + Sync,
    {
        fn db(cache: &crate::Cacheback) -> Result<DatabaseConnection, FetchError> {
            Ok((*cache.required_extension::<DatabaseConnection>()?).clone())
        }
        self.register_with(|state, cache| Ok(QuerySetGetJob::<E>(QuerySet::from_state(db(cache)?, state)?)))
            .register_with(|state, cache| {
                Ok(QuerySetFilterJob::<E>(QuerySet::from_state(db(cache)?, state)?))
            })
    }
}

/// A sea-orm model keys on its entity and primary key when wrapped in
/// [`ByIdentity`](crate::key::ByIdentity).
impl<M: ModelTrait> Identity for M {
    type Id = Vec<serde_json::Value>;

    fn entity(&self) -> &str {
        table::<M::Entity>()
    }

    fn id(&self) -> Vec<serde_json::Value> {
        self.get_primary_key_value()
            .into_iter()
            .map(|v| sea_orm::sea_query::value::sea_value_to_json_value(&v))
            .collect()
    }
}
