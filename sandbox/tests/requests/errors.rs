//! Failures over HTTP: a 4xx or 5xx whose body carries nothing internal (no
//! store key, no `redis://` URL, no driver error, no SQL), whatever failed —
//! the cache's store, the database, or the caller's arguments.

use std::time::Duration;

use axum::http::StatusCode;
use cacheback::store::RedisStore;
use cacheback::{Cacheback, Job};
use cacheback_test_support::redis_url;
use loco_rs::TestServer;
use loco_rs::testing::prelude::*;
use sandbox::app::App;
use sandbox::cached::{self, KeyedJob};
use sandbox::models::dummy_models;
use sea_orm::ConnectionTrait;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::TURN;

/// GETs `uri`: its status is `status`, and its body contains none of
/// `internal`. Returns the body.
async fn get_saying_nothing_internal(
    request: &TestServer,
    uri: &str,
    status: StatusCode,
    internal: &[&str],
) -> String {
    let response = request.get(uri).await;
    let body = response.text();
    assert_eq!(response.status_code(), status, "{uri}: {body}");
    for text in internal.iter().filter(|t| !t.is_empty()) {
        assert!(!body.contains(text), "{uri}: the body carries {text:?}: {body}");
    }
    body
}

/// A loopback TCP proxy to the test Redis: the store connects through it,
/// and once it is stopped its port is closed, as a Redis that went away.
struct Proxy {
    port: u16,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn to(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            // Owned by this task: stopping it drops every connection.
            let mut connections = JoinSet::new();
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, task }
    }

    /// Closes the listener and every connection through it.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The test Redis's URL split around its `host:port`: (`redis://` and any
/// credentials, `host:port`, the path after it).
fn split_redis_url(url: &str) -> (String, String, String) {
    let rest = url.strip_prefix("redis://").unwrap_or_else(|| panic!("a redis:// URL: {url}"));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (credentials, host) = authority.rsplit_once('@').map_or(("", authority), |(c, h)| (c, h));
    let host = if host.contains(':') { host.to_owned() } else { format!("{host}:6379") };
    let credentials = if credentials.is_empty() { String::new() } else { format!("{credentials}@") };
    (format!("redis://{credentials}"), host, format!("/{path}"))
}

/// The app's engine, with its store on a Redis that went away (its port is
/// closed). A read the store cannot answer is a MISS: the pages are served
/// from the database, or say their refresh is queued; once the database
/// fails too, a page that fetches in the request is a 503. No body carries
/// the store's URL, its keys or the driver's words.
#[tokio::test]
async fn a_failing_store_says_nothing_internal() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, ctx| async move {
        let (scheme, upstream, path) = split_redis_url(&redis_url());
        let proxy = Proxy::to(upstream).await;
        let address = format!("127.0.0.1:{}", proxy.port);
        let url = format!("{scheme}{address}{path}");
        let prefix = format!("sandbox-errors-{}:", std::process::id());
        let store = RedisStore::builder(url.clone())
            .key_prefix(prefix.clone())
            .timeout(Duration::from_millis(500))
            .connect()
            .await
            .unwrap_or_else(|e| {
                panic!("this test needs Redis at {} (`scripts/test` starts it): {e}", redis_url())
            });
        let engine = cached::register(Cacheback::builder().store("default", store), &ctx).build().unwrap();
        // The handlers read the engine from the context: this one, from now on.
        ctx.shared_store.insert(engine.clone());
        proxy.stop().await;

        // What the engine says of the store, and the driver's words under that.
        let keyed = engine.job(KeyedJob { db: ctx.db.clone() });
        let args = ("Item_1".to_owned(),);
        let err = keyed.delete(&args).await.unwrap_err();
        let cacheback::Error::Store { key, source, .. } = &err else { panic!("a store error: {err}") };
        assert_eq!(*key, keyed.key(&args).unwrap());
        let driver = std::error::Error::source(source).map(ToString::to_string).unwrap_or_default();
        let (key, err, source) = (key.clone(), err.to_string(), source.to_string());
        assert!(err.contains(&key) && source.contains("redis"), "{err}");

        // The pages show the job's name and link to `?name=Item_1`: the
        // store's own key, its prefix and its address are what must not show.
        let store_texts: [&str; 8] = [&err, &source, &driver, &url, &address, &prefix, "redis", "refused"];
        for uri in ["/?name=Item_1", "/?name=Item_1&qs", "/?function", "/?function&q=1", "/"] {
            let body = get_saying_nothing_internal(&request, uri, StatusCode::OK, &store_texts).await;
            assert!(body.contains(r#"<body data-status="miss""#), "{uri}: {body}");
        }

        ctx.db.execute_unprepared("DROP TABLE dummy_models").await.unwrap();
        let mut internal = store_texts.to_vec();
        internal.extend([key.as_str(), "Item_1", "sandbox::", "dummy_models", "no such table", "SELECT"]);
        let body = get_saying_nothing_internal(
            &request,
            "/?name=Item_1",
            StatusCode::SERVICE_UNAVAILABLE,
            &internal,
        )
        .await;
        assert!(body.contains("unavailable"), "{body}");
    })
    .await;
}

/// The table is gone: a page that fetches in the request, with nothing
/// cached to serve, is a 503 that says the data is unavailable, not why.
#[tokio::test]
async fn a_failing_database_is_a_503_that_says_nothing_internal() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, ctx| async move {
        ctx.db.execute_unprepared("DROP TABLE dummy_models").await.unwrap();
        // The driver's words for it (the next test's boot recreates the table).
        let driver = dummy_models::Entity::named(&ctx.db, "Item_13").await.unwrap_err().to_string();
        assert!(driver.contains("dummy_models"), "{driver}");

        // KeyedJob and the decorated function fetch on a miss.
        for (uri, key) in [("/?name=Item_13", "Item_13"), ("/?decorator", "decorated")] {
            let internal: [&str; 7] =
                [&driver, key, "dummy_models", "no such table", "SELECT", "sqlite", "sandbox::"];
            let body =
                get_saying_nothing_internal(&request, uri, StatusCode::SERVICE_UNAVAILABLE, &internal).await;
            assert!(body.contains("unavailable"), "{uri}: {body}");
        }
    })
    .await;
}

/// Arguments a key cannot be built from are the caller's fault: a 400 that
/// says what is wrong with them, and nothing of the job or its key.
#[tokio::test]
async fn a_bad_call_is_a_400_that_says_only_what_is_wrong() {
    let _turn = TURN.lock().await;
    request::<App, _, _>(|request, _ctx| async move {
        let long = "x".repeat(300);
        let job = KeyedJob::name();
        let internal: [&str; 3] = [&job, "cache key", &long];
        for uri in [format!("/?name={long}"), "/?name=".to_owned()] {
            let body = get_saying_nothing_internal(&request, &uri, StatusCode::BAD_REQUEST, &internal).await;
            assert!(body.contains("`name` must be 1 to 200 bytes long"), "{uri}: {body}");
        }
    })
    .await;
}
