//! `/`: the seed's `dummyapp/views.py::index`.
//!
//! | query | job |
//! |---|---|
//! | `?name=X&qs` | [`QuerySetFilterJob`]: lifetime 10 s, no fetch on a miss, `name = X` |
//! | `?name=X` | [`KeyedJob`]: lifetime 5 s, stale threshold 10 s, keyed on `X` |
//! | `?function&q=X` | [`FunctionJob`] of [`fetch_with_arg`]: no fetch on a miss |
//! | `?function` | [`FunctionJob`] of [`fetch`] (names containing "1") |
//! | `?decorator` | the `#[cacheback(5)]` function [`decorated`] (names containing "3") |
//! | nothing | [`VanillaJob`]: a slow fetch of every row, no fetch on a miss |

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use cacheback::function::FunctionJob;
use cacheback::orm::{Filters, QuerySetFilterJob};
use cacheback::{Job, JobHandle, Lookup};
use loco_rs::prelude::*;

use super::get_shared;
use crate::cached::{KeyedJob, VanillaJob, decorated, fetch, fetch_with_arg};
use crate::config::Settings;
use crate::models::dummy_models::{self, Model};
use crate::views::home::{self as view, Read, View};

/// The page: the items one of the jobs returns (nothing yet on a miss being
/// refreshed), and what the read found: the job, HIT/STALE/MISS, the data's
/// age and freshness, and whether a refresh is under way.
pub async fn index(State(ctx): State<Arc<AppContext>>, RawQuery(query): RawQuery) -> Result<Response> {
    let params = Params::parse(query.as_deref())?;
    let cache = cacheback::loco::from_context(&ctx)
        .ok_or_else(|| Error::Message("cacheback is not initialized".to_owned()))?;
    let db = ctx.db.clone();
    let found = if let Some(name) = params.get("name") {
        if params.has("qs") {
            let filters = Filters::parse::<dummy_models::Entity>([("name", name)]).map_err(bad_request)?;
            let job = QuerySetFilterJob::<dummy_models::Entity>::new(db)
                .with_lifetime(Duration::from_secs(10))
                .with_fetch_on_miss(false)
                .with_order_by("name");
            lookup(View::QuerySetFilter, &cache.job(job), &filters).await?
        } else {
            lookup(View::Keyed, &cache.job(KeyedJob { db }), &(name.to_owned(),)).await?
        }
    } else if params.has("function") {
        match params.get("q") {
            Some(q) => {
                let job = FunctionJob::with_context(fetch_with_arg, db).with_fetch_on_miss(false);
                lookup(View::FunctionWithArg, &cache.job(job), &(q.to_owned(),)).await?
            }
            None => {
                let job = FunctionJob::with_context(fetch, db).with_fetch_on_miss(false);
                lookup(View::Function, &cache.job(job), &()).await?
            }
        }
    } else if params.has("decorator") {
        let job = decorated::job(&db)?;
        lookup(View::Decorator, &job, &("3".to_owned(),)).await?
    } else {
        let delay = Settings::from_context(&ctx)?.vanilla_delay();
        lookup(View::Vanilla, &cache.job(VanillaJob { db, delay }), &()).await?
    };
    let uri = query.as_deref().map_or_else(|| "/".to_owned(), |q| format!("/?{q}"));
    view::index(&found.read(&uri))
}

/// One read, with the engine's time of it.
struct Found {
    view: View,
    job: Cow<'static, str>,
    lookup: Lookup<Vec<Model>>,
    now: f64,
}

/// Reads `args` through `handle` with [`JobHandle::lookup`], which tells how
/// the item was found.
async fn lookup<J: Job<Output = Vec<Model>>>(
    view: View,
    handle: &JobHandle<J>,
    args: &J::Args,
) -> Result<Found> {
    let lookup = handle.lookup(args).await?;
    Ok(Found { view, job: J::name(), lookup, now: handle.cache().now() })
}

impl Found {
    fn read<'a>(&'a self, uri: &'a str) -> Read<'a> {
        let lookup = &self.lookup;
        Read {
            view: self.view,
            uri,
            job: &self.job,
            status: lookup.status,
            sync_fetch: lookup.sync_fetch,
            refresh_failed: lookup.refresh_failed,
            age: lookup.fetched_at.map(|at| (self.now - at).max(0.0)),
            until_stale: lookup.expiry.map(|expiry| expiry - self.now),
            // This read queued a refresh (a MISS or a STALE), or it found the
            // placeholder a MISS stores until its refresh lands (a HIT with
            // no value: the sandbox's jobs have no `empty()` value).
            pending: lookup.sync_fetch == Some(false) || lookup.value.is_none(),
            items: lookup.value.as_deref().map_or(&[], Vec::as_slice),
        }
    }
}

/// The query string's parameters, in order.
///
/// Read by hand rather than with axum's `Query<HashMap<..>>`, which
/// deserializes through `serde_path_to_error` into owned strings: 3 % of the
/// CPU time of a cached page under `scripts/load`, for a handful of names.
struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    /// The pairs of `query`; a NUL character anywhere is a 400, as the values
    /// end up in PostgreSQL text, which cannot hold it.
    fn parse(query: Option<&'a str>) -> Result<Self> {
        let pairs: Vec<_> = query.map(|q| form_urlencoded::parse(q.as_bytes()).collect()).unwrap_or_default();
        if let Some((name, _)) = pairs.iter().find(|(n, v)| n.contains('\0') || v.contains('\0')) {
            return Err(bad_request(format!(
                "query parameter `{}` contains a NUL character",
                name.escape_default()
            )));
        }
        Ok(Self(pairs))
    }

    /// The last value of `name`, as Django's `QueryDict.get` gives.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_ref())
    }

    /// Whether `name` is present, with or without a value (`?qs`).
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

fn bad_request(err: impl std::fmt::Display) -> Error {
    Error::BadRequest(err.to_string())
}

/// The routes (see [`get_shared`] for why not `get(index)`).
pub fn routes(ctx: &AppContext) -> Routes {
    Routes::new().add("/", get_shared(index, ctx))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;

    /// The handlers' `?` on a cacheback error: cacheback's own conversion.
    fn response(err: cacheback::Error) -> Response {
        Error::from(err).into_response()
    }

    #[tokio::test]
    async fn a_failed_fetch_is_a_503_that_says_nothing_internal() {
        let err = cacheback::Error::Fetch {
            job: "sandbox::jobs::KeyedJob".into(),
            key: "Item_1".into(),
            source: std::sync::Arc::new(std::io::Error::other("connection refused: postgres://secret@db")),
        };
        let response = response(err);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("unavailable") && !body.contains("postgres") && !body.contains("KeyedJob"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_key_that_cannot_be_built_is_a_400() {
        let err =
            cacheback::Error::Key { job: "j".into(), message: "`name` must be 1 to 200 bytes long".into() };
        assert_eq!(response(err).status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_call_that_does_not_fit_is_a_400() {
        let err = cacheback::Error::Call { job: "j".into(), message: "expected 1 argument, got 2".into() };
        assert_eq!(response(err).status(), StatusCode::BAD_REQUEST);
    }
}
