//! `?` on a cacheback result in a loco handler: `From<cacheback::Error>` for
//! `loco_rs::Error`.
//!
//! The caller's mistakes are a 400 that says what is wrong; everything else is
//! a 5xx whose body says nothing internal (no keys, store addresses or job
//! names), with the full error logged under the `cacheback` target.

use axum::http::StatusCode;
use loco_rs::controller::ErrorDetail;

use crate::Error;

/// The body of a 503: the data behind the page cannot be fetched and nothing
/// cached can stand in.
const UNAVAILABLE: &str = "The data behind this page is unavailable; try again shortly.";

impl From<Error> for loco_rs::Error {
    /// | cacheback error | loco error | response |
    /// |---|---|---|
    /// | [`Error::Key`], [`Error::Call`] (bad arguments) | `BadRequest(message)` | 400 with the message |
    /// | [`Error::Fetch`] of a `QuerySetGetJob` that found no row (feature `sea-orm`: `QueryError::NotFound`) | `NotFound` | 404 `not_found`, logged at debug |
    /// | [`Error::Fetch`] (the data source failed, nothing to serve), [`Error::FetchTimeout`] (it took longer than `fetch_hard_timeout`) | `CustomError(503, ..)` | 503 `service_unavailable` |
    /// | anything else (store, queue, codec, configuration) | `InternalServerError` | 500 `internal_server_error` |
    ///
    /// The 5xx bodies are generic; the full error is logged with
    /// `tracing::error!(target: "cacheback")`.
    ///
    /// ```
    /// let err = cacheback::Error::Key { job: "app::Job".into(), message: "`q` is empty".into() };
    /// assert!(matches!(loco_rs::Error::from(err), loco_rs::Error::BadRequest(m) if m == "`q` is empty"));
    /// ```
    fn from(err: Error) -> Self {
        match err {
            Error::Key { job, message } | Error::Call { job, message } => {
                tracing::debug!(target: "cacheback", %job, %message, "bad arguments: 400");
                Self::BadRequest(message)
            }
            err if is_not_found(&err) => {
                tracing::debug!(target: "cacheback", error = %err, "no such row: 404");
                Self::NotFound
            }
            err @ (Error::Fetch { .. } | Error::FetchTimeout { .. }) => {
                tracing::error!(target: "cacheback", error = %err, "fetch failed with nothing cached to serve: 503");
                Self::CustomError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorDetail::new("service_unavailable", UNAVAILABLE),
                )
            }
            err => {
                tracing::error!(target: "cacheback", error = %err, "cache failed: 500");
                Self::InternalServerError
            }
        }
    }
}

/// A fetch that found no row: the ORM's `get` not finding the object.
#[cfg(feature = "sea-orm")]
fn is_not_found(err: &Error) -> bool {
    matches!(err.fetch_error::<crate::orm::QueryError>(), Some(crate::orm::QueryError::NotFound { .. }))
}

#[cfg(not(feature = "sea-orm"))]
fn is_not_found(_: &Error) -> bool {
    false
}

/// `?` on a [`QueryError`](crate::orm::QueryError) in a loco handler (features
/// `loco` and `sea-orm`): filters that do not fit the entity are the caller's
/// mistake, a 400 naming the filter; no row for `get` is a 404; more than one
/// row, or a failed database, a generic 500 (logged under `cacheback`).
///
/// ```
/// use cacheback::orm::QueryError;
/// let err = QueryError::UnknownColumn {
///     field: "nmae".into(), entity: "items", column: "nmae".into(), known: "id, name".into(),
/// };
/// assert!(matches!(loco_rs::Error::from(err), loco_rs::Error::BadRequest(m) if m.contains("nmae")));
/// let err = QueryError::NotFound { entity: "items", filters: "{}".into() };
/// assert!(matches!(loco_rs::Error::from(err), loco_rs::Error::NotFound));
/// ```
#[cfg(feature = "sea-orm")]
impl From<crate::orm::QueryError> for loco_rs::Error {
    fn from(err: crate::orm::QueryError) -> Self {
        use crate::orm::QueryError;
        match err {
            QueryError::NotFound { .. } => {
                tracing::debug!(target: "cacheback", error = %err, "no such row: 404");
                Self::NotFound
            }
            QueryError::MultipleRows { .. } | QueryError::Database { .. } => {
                tracing::error!(target: "cacheback", error = %err, "query failed: 500");
                Self::InternalServerError
            }
            bad => Self::BadRequest(bad.to_string()),
        }
    }
}
