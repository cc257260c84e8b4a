//! Cached sea-orm reads (feature `sea-orm`): the seed's `QuerySetGetJob` and
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

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, ColumnType, DatabaseConnection, DbBackend, EntityTrait, IdenStatic, Iterable, ModelTrait,
    Order, QueryFilter, QueryOrder, QuerySelect, Value,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::FetchError;
use crate::function::{Options, Policy, delegate_policies};
use crate::job::{Job, TaskOptions};
use crate::key::{Identity, KeyError, derive_key};

/// What is wrong with a query, or with its result.
///
/// ```
/// use cacheback::orm::QueryError;
/// let err = QueryError::UnknownLookup { field: "name__like".into(), lookup: "like".into() };
/// assert!(err.to_string().contains("unknown lookup `like`"));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The field names no column of the entity.
    #[error("`{field}`: `{entity}` has no column `{column}` (columns: {known})")]
    UnknownColumn {
        /// The filter as given.
        field: String,
        /// The entity's table.
        entity: &'static str,
        /// The column asked for.
        column: String,
        /// The entity's columns, comma separated.
        known: String,
    },
    /// The lookup after `__` is not one cacheback knows.
    #[error(
        "`{field}`: unknown lookup `{lookup}` (lookups: exact, iexact, contains, icontains, startswith, \
         istartswith, endswith, iendswith, gt, gte, lt, lte, in, isnull)"
    )]
    UnknownLookup {
        /// The filter as given.
        field: String,
        /// The lookup asked for.
        lookup: String,
    },
    /// The value does not fit the column's type or the lookup.
    #[error("`{field}`: expected {expected}, got {got}")]
    WrongValueType {
        /// The filter as given.
        field: String,
        /// What the column and lookup take.
        expected: String,
        /// The value given.
        got: String,
    },
    /// The column's type cannot be filtered on by cacheback.
    #[error("`{field}`: column `{column}` has a type cacheback cannot filter on ({column_type})")]
    UnsupportedColumn {
        /// The filter as given.
        field: String,
        /// The column.
        column: String,
        /// Its type.
        column_type: String,
    },
    /// `get` found no row.
    #[error("no `{entity}` row matches {filters}")]
    NotFound {
        /// The entity's table.
        entity: &'static str,
        /// The filters, as JSON.
        filters: String,
    },
    /// `get` found more than one row.
    #[error("more than one `{entity}` row matches {filters}")]
    MultipleRows {
        /// The entity's table.
        entity: &'static str,
        /// The filters, as JSON.
        filters: String,
    },
    /// The database failed (connection lost, ...).
    #[error("database error while reading `{entity}`: {message}")]
    Database {
        /// The entity's table.
        entity: &'static str,
        /// The driver's message.
        message: String,
    },
}

/// The lookups of a [`Filters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Exact,
    IExact,
    Contains,
    IContains,
    StartsWith,
    IStartsWith,
    EndsWith,
    IEndsWith,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    IsNull,
}

impl FromStr for Lookup {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "exact" => Self::Exact,
            "iexact" => Self::IExact,
            "contains" => Self::Contains,
            "icontains" => Self::IContains,
            "startswith" => Self::StartsWith,
            "istartswith" => Self::IStartsWith,
            "endswith" => Self::EndsWith,
            "iendswith" => Self::IEndsWith,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "in" => Self::In,
            "isnull" => Self::IsNull,
            _ => return Err(()),
        })
    }
}

impl Lookup {
    fn is_text(self) -> bool {
        matches!(
            self,
            Self::IExact
                | Self::Contains
                | Self::IContains
                | Self::StartsWith
                | Self::IStartsWith
                | Self::EndsWith
                | Self::IEndsWith
        )
    }
    fn is_case_insensitive(self) -> bool {
        matches!(self, Self::IExact | Self::IContains | Self::IStartsWith | Self::IEndsWith)
    }
}

/// `field__lookup = value` filters, as Django's `filter(**kwargs)`: the named
/// arguments of the ORM jobs.
///
/// ```
/// use cacheback::orm::Filters;
/// let filters = Filters::new().with("name__startswith", "Item_1").with("id__lt", 50);
/// assert_eq!(filters.len(), 2);
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Filters {
    filters: BTreeMap<String, serde_json::Value>,
    /// The entity [`parse`](Filters::parse) checked these filters against, so
    /// computing a key need not check them again; not serialized (a worker
    /// checks what it receives).
    #[serde(skip)]
    checked_for: Option<TypeId>,
}

/// Equal filters filter alike, whatever they were checked against.
impl PartialEq for Filters {
    fn eq(&self, other: &Self) -> bool {
        self.filters == other.filters
    }
}

impl Filters {
    /// No filters: every row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `field = value` (`field` may end in `__<lookup>`).
    #[must_use]
    pub fn with(mut self, field: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.filters.insert(field.into(), value.into());
        self.checked_for = None;
        self
    }

    /// Filters checked against entity `E`, e.g. from a request's parameters.
    ///
    /// # Errors
    ///
    /// A field names no column, a lookup is unknown, or a value does not fit.
    pub fn parse<E: EntityTrait>(
        pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<serde_json::Value>)>,
    ) -> Result<Self, QueryError> {
        let mut filters: Self = pairs.into_iter().collect();
        filters.condition::<E>(DbBackend::Sqlite)?;
        filters.checked_for = Some(TypeId::of::<E>());
        Ok(filters)
    }

    /// How many filters.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The condition these filters make on entity `E`, for `backend`.
    fn condition<E: EntityTrait>(&self, backend: DbBackend) -> Result<Condition, QueryError> {
        let mut condition = Condition::all();
        for (field, value) in &self.filters {
            condition = condition.add(filter::<E>(field, value, backend)?);
        }
        Ok(condition)
    }

    fn describe(&self) -> String {
        serde_json::to_string(&self.filters).unwrap_or_default()
    }
}

impl<K: Into<String>, V: Into<serde_json::Value>> FromIterator<(K, V)> for Filters {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self { filters: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), checked_for: None }
    }
}

fn table<E: EntityTrait>() -> &'static str {
    E::default().table_name()
}

fn column<E: EntityTrait>(field: &str, name: &str) -> Result<E::Column, QueryError> {
    E::Column::from_str(name).map_err(|_| QueryError::UnknownColumn {
        field: field.to_owned(),
        entity: table::<E>(),
        column: name.to_owned(),
        known: E::Column::iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>().join(", "),
    })
}

/// One `field__lookup = value` as an expression.
fn filter<E: EntityTrait>(
    field: &str,
    value: &serde_json::Value,
    backend: DbBackend,
) -> Result<Expr, QueryError> {
    let (name, lookup) = match field.split_once("__") {
        Some((name, lookup)) => {
            let parsed = lookup.parse::<Lookup>().map_err(|()| QueryError::UnknownLookup {
                field: field.to_owned(),
                lookup: lookup.to_owned(),
            })?;
            (name, parsed)
        }
        None => (field, Lookup::Exact),
    };
    let col = column::<E>(field, name)?;
    let column_type = col.def().get_column_type().clone();
    let expr = col.into_expr();
    let kind = Kind::of(&column_type).ok_or_else(|| QueryError::UnsupportedColumn {
        field: field.to_owned(),
        column: name.to_owned(),
        column_type: format!("{column_type:?}"),
    })?;
    let wrong = |expected: String| QueryError::WrongValueType {
        field: field.to_owned(),
        expected,
        got: value.to_string(),
    };

    if lookup == Lookup::IsNull {
        let is_null = match value {
            serde_json::Value::Bool(b) => Some(*b),
            serde_json::Value::String(s) if matches!(s.as_str(), "true" | "1") => Some(true),
            serde_json::Value::String(s) if matches!(s.as_str(), "false" | "0") => Some(false),
            _ => None,
        }
        .ok_or_else(|| wrong("`true` or `false`".to_owned()))?;
        return Ok(if is_null { expr.is_null() } else { expr.is_not_null() });
    }
    if lookup == Lookup::In {
        let items = value.as_array().ok_or_else(|| wrong(format!("a list of {}", kind.describe())))?;
        let values = items
            .iter()
            .map(|v| kind.value(v).ok_or_else(|| wrong(format!("a list of {}", kind.describe()))));
        return Ok(expr.is_in(values.collect::<Result<Vec<_>, _>>()?));
    }
    if lookup == Lookup::Exact && value.is_null() {
        return Ok(expr.is_null());
    }
    if lookup.is_text() {
        if kind != Kind::Text {
            return Err(wrong(format!(
                "a text column for `{lookup:?}`, but `{name}` holds {}",
                kind.describe()
            )));
        }
        let text = text_value(value).ok_or_else(|| wrong(Kind::Text.describe().to_owned()))?;
        return Ok(text_filter(expr, text, lookup, backend));
    }
    let v = kind.value(value).ok_or_else(|| wrong(kind.describe().to_owned()))?;
    Ok(match lookup {
        Lookup::Gt => expr.gt(v),
        Lookup::Gte => expr.gte(v),
        Lookup::Lt => expr.lt(v),
        Lookup::Lte => expr.lte(v),
        _ => expr.eq(v),
    })
}

/// A text lookup, written so that it means the same on SQLite and PostgreSQL
/// (`LIKE` is case-insensitive on one and not the other).
fn text_filter(expr: Expr, text: &str, lookup: Lookup, backend: DbBackend) -> Expr {
    let fold = |e: Expr| if lookup.is_case_insensitive() { Expr::expr(Func::lower(e)) } else { e };
    let needle = fold(Expr::val(text.to_owned()));
    let haystack = fold(expr);
    // `int`, not `bigint`: PostgreSQL has no `substr(text, int, bigint)`.
    let chars = i32::try_from(text.chars().count()).unwrap_or(i32::MAX);
    let call = |name: &str, args: Vec<Expr>| {
        let mut f = Func::cust(Alias::new(name));
        for arg in args {
            f = f.arg(arg);
        }
        Expr::expr(f)
    };
    match lookup {
        Lookup::IExact => haystack.eq(needle),
        Lookup::Contains | Lookup::IContains => {
            let position = match backend {
                DbBackend::Postgres => call("strpos", vec![haystack, needle]),
                _ => call("instr", vec![haystack, needle]),
            };
            position.gt(0)
        }
        Lookup::StartsWith | Lookup::IStartsWith => {
            call("substr", vec![haystack, Expr::val(1), Expr::val(chars)]).eq(needle)
        }
        _ if chars == 0 => Expr::val(1).eq(1),
        _ => match backend {
            DbBackend::Postgres => call("right", vec![haystack, Expr::val(chars)]).eq(needle),
            _ => call("substr", vec![haystack, Expr::val(-chars)]).eq(needle),
        },
    }
}

/// The kinds of column values a filter can compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Float,
    Boolean,
    Text,
    DateTime,
    DateTimeTz,
    Date,
    Time,
}

impl Kind {
    fn of(column_type: &ColumnType) -> Option<Self> {
        Some(match column_type {
            ColumnType::TinyInteger
            | ColumnType::SmallInteger
            | ColumnType::Integer
            | ColumnType::BigInteger
            | ColumnType::TinyUnsigned
            | ColumnType::SmallUnsigned
            | ColumnType::Unsigned
            | ColumnType::BigUnsigned => Self::Integer,
            ColumnType::Float | ColumnType::Double | ColumnType::Decimal(_) | ColumnType::Money(_) => {
                Self::Float
            }
            ColumnType::Boolean => Self::Boolean,
            ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => Self::Text,
            ColumnType::DateTime | ColumnType::Timestamp => Self::DateTime,
            ColumnType::TimestampWithTimeZone => Self::DateTimeTz,
            ColumnType::Date => Self::Date,
            ColumnType::Time => Self::Time,
            _ => return None,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Integer => "an integer",
            Self::Float => "a number",
            Self::Boolean => "`true` or `false`",
            Self::Text => "a string without NUL characters",
            Self::DateTime => "a date-time (`2012-08-07T08:23:24`)",
            Self::DateTimeTz => "a date-time with an offset (`2012-08-07T08:23:24Z`)",
            Self::Date => "a date (`2012-08-07`)",
            Self::Time => "a time (`08:23:24`)",
        }
    }

    /// The value, if it fits. Strings of the right shape are accepted for
    /// numbers and booleans too: request parameters are strings.
    fn value(self, json: &serde_json::Value) -> Option<Value> {
        use serde_json::Value as J;
        let text = json.as_str();
        Some(match (self, json) {
            (Self::Integer, J::Number(n)) => Value::from(n.as_i64()?),
            (Self::Integer, J::String(s)) => Value::from(s.trim().parse::<i64>().ok()?),
            (Self::Float, J::Number(n)) => Value::from(n.as_f64()?),
            (Self::Float, J::String(s)) => {
                Value::from(s.trim().parse::<f64>().ok().filter(|f| f.is_finite())?)
            }
            (Self::Boolean, J::Bool(b)) => Value::from(*b),
            (Self::Boolean, J::String(s)) => Value::from(match s.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return None,
            }),
            (Self::Text, _) => Value::from(text_value(json)?.to_owned()),
            (Self::DateTime, _) => Value::from(parse_naive(text?)?),
            (Self::DateTimeTz, _) => Value::from(chrono::DateTime::parse_from_rfc3339(text?).ok()?),
            (Self::Date, _) => Value::from(text?.parse::<chrono::NaiveDate>().ok()?),
            (Self::Time, _) => Value::from(text?.parse::<chrono::NaiveTime>().ok()?),
            _ => return None,
        })
    }
}

/// A string a text column can hold: PostgreSQL's text cannot hold NUL, and
/// it is refused on every backend alike so a filter means the same everywhere.
fn text_value(json: &serde_json::Value) -> Option<&str> {
    json.as_str().filter(|t| !t.contains('\0'))
}

fn parse_naive(text: &str) -> Option<chrono::NaiveDateTime> {
    text.parse::<chrono::NaiveDateTime>()
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok())
        .or_else(|| chrono::DateTime::parse_from_rfc3339(text).ok().map(|d| d.naive_utc()))
}

/// `Django`'s `order_by`: a column name, `-` first for descending.
fn order<E: EntityTrait>(order_by: Option<&str>) -> Result<Vec<(E::Column, Order)>, QueryError> {
    match order_by {
        Some(spec) => {
            let (name, direction) = match spec.strip_prefix('-') {
                Some(name) => (name, Order::Desc),
                None => (spec, Order::Asc),
            };
            Ok(vec![(column::<E>(spec, name)?, direction)])
        }
        None => Ok(E::PrimaryKey::iter()
            .map(|k| (sea_orm::PrimaryKeyToColumn::into_column(k), Order::Asc))
            .collect()),
    }
}

// ---------------------------------------------------------------------------
// The jobs.
// ---------------------------------------------------------------------------

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

    /// The seed's key: `<entity>-<job>:<hash>`; checks the filters too.
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
            /// Sets the lifetime of items.
            #[must_use]
            pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
                self.0.options.lifetime = lifetime;
                self
            }
            /// Sets whether a MISS fetches synchronously.
            #[must_use]
            pub fn with_fetch_on_miss(mut self, fetch: bool) -> Self {
                self.0.options.fetch_on_miss = fetch;
                self
            }
            /// Sets the cache alias.
            #[must_use]
            pub fn with_cache_alias(mut self, alias: impl Into<String>) -> Self {
                self.0.options.cache_alias = Some(alias.into());
                self
            }
            /// Sets the task options.
            #[must_use]
            pub fn with_task_options(mut self, options: TaskOptions) -> Self {
                self.0.options.task_options = options;
                self
            }
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
            fn policy(&self) -> &Options {
                &self.0.options
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

    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("cacheback::orm::QuerySetGetJob<{}>", table::<E>()))
    }

    fn key(&self, filters: &Filters) -> Result<String, KeyError> {
        self.0.key("cacheback::orm::QuerySetGetJob", filters)
    }

    fn init_state(&self) -> serde_json::Value {
        self.0.state()
    }

    delegate_policies!();
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

    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("cacheback::orm::QuerySetFilterJob<{}>", table::<E>()))
    }

    fn key(&self, filters: &Filters) -> Result<String, KeyError> {
        self.0.key("cacheback::orm::QuerySetFilterJob", filters)
    }

    fn init_state(&self) -> serde_json::Value {
        self.0.state()
    }

    delegate_policies!();
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
    pub fn register_model<E>(self) -> Self
    where
        E: EntityTrait,
        E::Model: Serialize + DeserializeOwned + Sync,
    {
        fn db(cache: &crate::Cacheback) -> Result<DatabaseConnection, FetchError> {
            let db = cache
                .extension::<DatabaseConnection>()
                .ok_or("no DatabaseConnection among the engine's extensions")?;
            Ok((*db).clone())
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
