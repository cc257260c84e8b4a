//! [`Filters`]: Django-style `field__lookup = value` filters, checked against
//! an entity's columns and turned into a sea-orm condition that means the
//! same on SQLite and PostgreSQL.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::str::FromStr;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Func};
use sea_orm::{ColumnTrait, ColumnType, DbBackend, EntityTrait, IdenStatic, Iterable, Order, Value};
use serde::{Deserialize, Serialize};

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
    pub(super) checked_for: Option<TypeId>,
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
    pub(super) fn condition<E: EntityTrait>(&self, backend: DbBackend) -> Result<Condition, QueryError> {
        let mut condition = Condition::all();
        for (field, value) in &self.filters {
            condition = condition.add(filter::<E>(field, value, backend)?);
        }
        Ok(condition)
    }

    /// The column and value of filters that are one exact match on an
    /// integer or text column (`id = 3`, `slug = "a"`), the value as the
    /// column's rows give it in JSON: what a batch of `get`s answers with one
    /// `IN (...)` query, matching rows back by that value. `None` for any
    /// other filters.
    pub(super) fn exact_match<E: EntityTrait>(&self) -> Option<(E::Column, serde_json::Value)> {
        let [(field, value)] = self.filters.iter().collect::<Vec<_>>()[..] else {
            return None;
        };
        let name = field.strip_suffix("__exact").unwrap_or(field);
        let col = E::Column::from_str(name).ok()?;
        let value = match Kind::of(col.def().get_column_type())? {
            Kind::Integer => serde_json::Value::from(kind_value_i64(value)?),
            Kind::Text => serde_json::Value::from(text_value(value)?),
            _ => return None,
        };
        Some((col, value))
    }

    pub(super) fn describe(&self) -> String {
        serde_json::to_string(&self.filters).unwrap_or_default()
    }
}

impl<K: Into<String>, V: Into<serde_json::Value>> FromIterator<(K, V)> for Filters {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self { filters: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect(), checked_for: None }
    }
}

pub(super) fn table<E: EntityTrait>() -> &'static str {
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
/// An integer filter's value, as [`Kind::value`] reads it.
fn kind_value_i64(json: &serde_json::Value) -> Option<i64> {
    match json {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

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
pub(super) fn order<E: EntityTrait>(order_by: Option<&str>) -> Result<Vec<(E::Column, Order)>, QueryError> {
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
