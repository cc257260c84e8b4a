//! The seed's `tests/test_base_job.py`, ported with the same intent, run
//! against the in-memory store and against a real Redis.

mod common;

use std::time::Duration;

use cacheback::key::{ByIdentity, Identity};
use cacheback::queue::{RefreshOutcome, RefreshPayload};
use cacheback::{CacheStatus, Dispatch, Error, FetchError, Job, TaskOptions};
use common::*;

on_every_store!(
    init,
    get_miss_sync,
    get_uses_cache_alias,
    get_miss_empty_async,
    get_stale_sync,
    get_stale_async,
    get_hit,
    invalidate_miss,
    invalidate_hit,
    delete_miss,
    delete_hit,
    store,
    store_verify_fail,
    store_no_verify_fail,
    refresh,
    async_refresh,
    async_refresh_task_fail,
    async_refresh_task_fail_sync_fail,
    raw_get,
    raw_get_empty,
    set,
    set_preset_cache,
    set_default_kw_arg,
    set_default_custom_kw_arg,
    set_positional_call,
    job_refresh_unknown_jobclass,
    job_refresh_perform_error,
    job_refresh,
    job_refresh_bad_args,
    statuses_reach_process_result,
    undecodable_item_is_a_miss,
);

async fn init(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    assert_eq!(job.job().cache_alias(), None);
    assert_eq!(fx.cache.default_alias(), "default");
    assert_eq!(job.job().task_options(), TaskOptions::default());
}

async fn get_miss_sync(backend: Backend) {
    let fx = fixture(backend).build().await;
    assert_eq!(fx.dummy().get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
}

async fn get_uses_cache_alias(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.cache.job(CacheAliasDummyJob(fx.env.clone()));
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
    let key = job.key(&foo()).unwrap();
    assert!(!fx.contains("default", &key).await);
    assert!(fx.contains("secondary", &key).await);
}

async fn get_miss_empty_async(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.empty();
    assert_eq!(job.get(&foo()).await.unwrap(), None);
    assert_eq!(fx.queue.run_pending().await, 1);
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
}

async fn get_stale_sync(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.stale();
    fx.clock().set(at(0));
    let first = job.get(&foo()).await.unwrap().unwrap();
    fx.clock().set(at(16));
    let second = job.lookup(&foo()).await.unwrap();
    assert_eq!((second.status, second.sync_fetch), (CacheStatus::Stale, Some(true)));
    assert!(first.1 < second.value.unwrap().1);
}

async fn get_stale_async(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.stale();
    fx.clock().set(at(0));
    let first = job.get(&foo()).await.unwrap().unwrap();
    fx.clock().set(at(14));
    let second = job.lookup(&foo()).await.unwrap();
    assert_eq!((second.status, second.sync_fetch), (CacheStatus::Stale, Some(false)));
    assert_eq!(first.1, second.value.unwrap().1);
    fx.clock().set(at(16));
    assert_eq!(fx.queue.run_pending().await, 1);
    fx.clock().set(at(17));
    let third = job.get(&foo()).await.unwrap().unwrap();
    assert!(first.1 < third.1);
    assert_eq!(third.1, at(16));
}

async fn get_hit(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.stale();
    fx.clock().set(at(0));
    let first = job.get(&foo()).await.unwrap().unwrap();
    fx.clock().set(at(5));
    let second = job.lookup(&foo()).await.unwrap();
    assert_eq!((second.status, second.sync_fetch), (CacheStatus::Hit, None));
    assert_eq!(first.1, second.value.unwrap().1);
    assert_eq!(fx.queue.pending(), 0, "a HIT queues nothing");
}

async fn invalidate_miss(backend: Backend) {
    let fx = fixture(backend).build().await;
    fx.dummy().invalidate(&foo()).await.unwrap();
    assert_eq!(fx.queue.pending(), 0, "nothing was cached, nothing to do");
}

async fn invalidate_hit(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    job.invalidate(&foo()).await.unwrap();
    assert_eq!(fx.queue.pending(), 1);
    // The item is now marked with the refresh timeout, not the lifetime.
    let item = job.raw_get(&foo()).await.unwrap().unwrap();
    assert_eq!(item.expiry, fx.cache.now() + 60.0);
    // A second invalidation is explicit too: it queues again.
    job.invalidate(&foo()).await.unwrap();
    assert_eq!(fx.queue.pending(), 2);
}

async fn delete_miss(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    job.delete(&foo()).await.unwrap();
    assert!(!fx.contains("default", &job.key(&foo()).unwrap()).await);
}

async fn delete_hit(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    let key = job.key(&foo()).unwrap();
    assert!(fx.contains("default", &key).await);
    job.delete(&foo()).await.unwrap();
    assert!(!fx.contains("default", &key).await);
}

async fn store(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    let key = job.key(&foo()).unwrap();
    let expiry = job.job().expiry(fx.cache.now(), &foo());
    job.store_raw(&key, expiry, Some(("stored".into(), 1.0))).await.unwrap();
    assert!(fx.contains("default", &key).await);
}

async fn store_verify_fail(backend: Backend) {
    let fx = fixture(backend).default_alias("dummy").verify(true).build().await;
    let job = fx.dummy();
    let key = job.key(&foo()).unwrap();
    let err = job.store_raw(&key, 0.0, Some(("x".into(), 1.0))).await.unwrap_err();
    assert!(matches!(err, Error::VerifyWrite { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("unable to save data of type `(alloc::string::String, f64)`"), "{message}");
    assert!(message.contains("cache `dummy`"), "{message}");
    // An empty value is not verified, as in the original.
    job.store_raw(&key, 0.0, None).await.unwrap();
}

async fn store_no_verify_fail(backend: Backend) {
    let fx = fixture(backend).default_alias("dummy").verify(false).build().await;
    let job = fx.dummy();
    let key = job.key(&foo()).unwrap();
    job.store_raw(&key, 0.0, Some(("x".into(), 1.0))).await.unwrap();
    assert!(!fx.contains("dummy", &key).await);
}

async fn refresh(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    assert_eq!(job.refresh(&foo()).await.unwrap().0, "JOB-EXECUTED:foo");
    assert!(fx.contains("default", &job.key(&foo()).unwrap()).await);
}

async fn async_refresh(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    assert_eq!(job.async_refresh(&foo()).await.unwrap(), Dispatch::Enqueued);
    assert!(!fx.contains("default", &job.key(&foo()).unwrap()).await);
    assert_eq!(fx.queue.pending(), 1);
    let payload = &fx.queue.pending_payloads()[0];
    assert_eq!(payload.job, DummyJob::name());
    assert_eq!(payload.args, serde_json::json!(["foo"]));
    assert_eq!(payload.key, job.key(&foo()).unwrap());
}

async fn async_refresh_task_fail(backend: Backend) {
    let fx = fixture(backend).build().await;
    fx.queue.close();
    let (logs, _guard) = Logs::capture();
    let job = fx.dummy();
    assert_eq!(job.async_refresh(&foo()).await.unwrap(), Dispatch::RefreshedInline);
    assert!(logs.text().contains("failing over to synchronous refresh"), "{}", logs.text());
    let found = job.lookup(&foo()).await.unwrap();
    assert_eq!(found.status, CacheStatus::Hit, "the failover refresh filled the cache");
    assert_eq!(found.value.unwrap().0, "JOB-EXECUTED:foo");
}

async fn async_refresh_task_fail_sync_fail(backend: Backend) {
    let fx = fixture(backend).build().await;
    fx.queue.close();
    let (logs, _guard) = Logs::capture();
    let job = fx.cache.job(FailJob);
    assert_eq!(job.async_refresh(&foo()).await.unwrap(), Dispatch::Failed);
    assert!(logs.text().contains("Unable to refresh data synchronously"), "{}", logs.text());
    assert!(job.raw_get(&foo()).await.unwrap().is_none());
}

async fn raw_get(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    fx.clock().set(at(5));
    job.set(&foo(), ("MANUALLY_SET".into(), 0.0)).await.unwrap();
    let item = job.raw_get(&foo()).await.unwrap().unwrap();
    assert_eq!(item.expiry, 1_458_483_300.0);
    assert_eq!(item.data.unwrap().0, "MANUALLY_SET");
}

async fn raw_get_empty(backend: Backend) {
    let fx = fixture(backend).build().await;
    assert!(fx.dummy().raw_get(&foo()).await.unwrap().is_none());
}

async fn set(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    job.set(&foo(), ("MANUALLY_SET".into(), 0.0)).await.unwrap();
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "MANUALLY_SET");
    assert_eq!(fx.env.fetches(), 0);
}

async fn set_preset_cache(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
    assert!(fx.contains("default", &job.key(&foo()).unwrap()).await);
    job.set(&foo(), ("MANUALLY_SET".into(), 0.0)).await.unwrap();
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "MANUALLY_SET");
}

async fn set_default_kw_arg(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.cache.job(NamedDummyJob);
    job.set_call(serde_json::json!({"param": "foo", "data": "MANUALLY_SET_WITH_KW_ARG"})).await.unwrap();
    let args = Param { param: "foo".into() };
    assert_eq!(*job.get(&args).await.unwrap().unwrap(), "MANUALLY_SET_WITH_KW_ARG");
}

async fn set_default_custom_kw_arg(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.cache.job(CustomPayloadLabelJob);
    let call = serde_json::json!({"param": "foo", "my_cache_data": "MANUALLY_SET_WITH_CUSTOM_KW_ARG"});
    job.set_call(call).await.unwrap();
    let args = Param { param: "foo".into() };
    assert_eq!(*job.get(&args).await.unwrap().unwrap(), "MANUALLY_SET_WITH_CUSTOM_KW_ARG");
    // The default label is not the data here: it is an unknown argument.
    let err = job.set_call(serde_json::json!({"param": "foo", "data": "x"})).await.unwrap_err();
    assert!(matches!(err, Error::Call { .. }), "{err:?}");
    assert!(err.to_string().contains("no `my_cache_data` field"), "{err}");
}

async fn set_positional_call(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    job.set_call(("foo", ("LAST_POSITIONAL", 1.5))).await.unwrap();
    let got = job.get(&foo()).await.unwrap().unwrap();
    assert_eq!(*got, ("LAST_POSITIONAL".to_owned(), 1.5));
    let err = job.set_call(Vec::<String>::new()).await.unwrap_err();
    assert!(err.to_string().contains("positional call is empty"), "{err}");
}

async fn job_refresh_unknown_jobclass(backend: Backend) {
    let fx = fixture(backend).build().await;
    let (logs, _guard) = Logs::capture();
    let payload = RefreshPayload::new("foomodule::BarJob", serde_json::json!([]), "foomodule::BarJob");
    let err = fx.cache.perform(&payload).await.unwrap_err();
    assert!(matches!(&err, Error::UnknownJob { job } if job == "foomodule::BarJob"), "{err:?}");
    assert!(logs.text().contains("Unable to construct foomodule::BarJob"), "{}", logs.text());
}

async fn job_refresh_perform_error(backend: Backend) {
    let fx = fixture(backend).build().await;
    let (logs, _guard) = Logs::capture();
    let payload = RefreshPayload::new(
        FailJob::name(),
        serde_json::json!(["foo"]),
        fx.cache.job(FailJob).key(&foo()).unwrap(),
    );
    let err = fx.cache.perform(&payload).await.unwrap_err();
    assert!(matches!(err, Error::Fetch { .. }), "{err:?}");
    assert!(err.to_string().contains("JOB-FAILED"), "{err}");
    assert!(logs.text().contains("Error running job"), "{}", logs.text());
}

async fn job_refresh(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.empty();
    let payload =
        RefreshPayload::new(EmptyDummyJob::name(), serde_json::json!(["foo"]), job.key(&foo()).unwrap());
    assert_eq!(fx.cache.perform(&payload).await.unwrap(), RefreshOutcome::Refreshed);
    assert!(job.get(&foo()).await.unwrap().is_some());
}

async fn job_refresh_bad_args(backend: Backend) {
    let fx = fixture(backend).build().await;
    let (logs, _guard) = Logs::capture();
    let payload = RefreshPayload::new(DummyJob::name(), serde_json::json!({"not": "a tuple"}), "whatever");
    let err = fx.cache.perform(&payload).await.unwrap_err();
    assert!(matches!(err, Error::Payload { .. }), "{err:?}");
    assert!(err.to_string().contains("do not decode as `(alloc::string::String,)`"), "{err}");
    assert!(logs.text().contains("Error running job"), "{}", logs.text());
    assert_eq!(fx.env.fetches(), 0);
}

/// `process_result` sees every status with the right `sync_fetch`.
async fn statuses_reach_process_result(backend: Backend) {
    #[derive(Clone)]
    struct Labelled(Env);
    impl Job for Labelled {
        type Args = (String,);
        type Output = String;
        async fn fetch(&self, (p,): &(String,)) -> Result<String, FetchError> {
            Ok(self.0.fetch(p).await?.0)
        }
        fn fetch_on_miss(&self) -> bool {
            false
        }
        fn empty(&self) -> Option<String> {
            Some("EMPTY".into())
        }
        fn process_result(
            &self,
            result: Option<std::sync::Arc<String>>,
            call: &cacheback::Call<'_, (String,)>,
            status: CacheStatus,
            sync_fetch: Option<bool>,
        ) -> Option<std::sync::Arc<String>> {
            let value = result.map(|r| r.to_string()).unwrap_or_default();
            Some(std::sync::Arc::new(format!("{value}|{}|{status}|{sync_fetch:?}", call.args.0)))
        }
    }
    let fx = fixture(backend).build().await;
    let env = fx.env.clone();
    let job = fx.cache.job(Labelled(env));
    let label = |s: Option<std::sync::Arc<String>>| s.unwrap().to_string();
    assert_eq!(label(job.get(&foo()).await.unwrap()), "EMPTY|foo|MISS|Some(false)");
    // The empty placeholder is what readers get until the refresh lands.
    assert_eq!(label(job.get(&foo()).await.unwrap()), "EMPTY|foo|HIT|None");
    job.refresh(&foo()).await.unwrap();
    assert_eq!(label(job.get(&foo()).await.unwrap()), "JOB-EXECUTED:foo|foo|HIT|None");
    fx.clock().advance(Duration::from_secs(601));
    assert_eq!(label(job.get(&foo()).await.unwrap()), "JOB-EXECUTED:foo|foo|STALE|Some(false)");
}

/// An item this job cannot decode (a deploy changed its output type) is a
/// MISS, not an error page.
async fn undecodable_item_is_a_miss(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.dummy();
    let key = job.key(&foo()).unwrap();
    let other = fx.cache.job(FailJob);
    other.store_raw(&key, fx.cache.now() + 600.0, Some("a string, not a tuple".into())).await.unwrap();
    // Since 0.3 every operation treats it alike (tests/undecodable.rs): raw_get too.
    assert!(job.raw_get(&foo()).await.unwrap().is_none(), "raw_get sees a MISS");
    let found = job.lookup(&foo()).await.unwrap();
    assert_eq!((found.status, found.sync_fetch), (CacheStatus::Miss, Some(true)));
    assert_eq!(found.value.unwrap().0, "JOB-EXECUTED:foo");
    // The refresh overwrote the old item.
    assert_eq!(job.raw_get(&foo()).await.unwrap().unwrap().data.unwrap().0, "JOB-EXECUTED:foo");
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Hit);
}

// ----------------------------------------------------------------------
// Policies, without a store.
// ----------------------------------------------------------------------

fn env() -> Env {
    fixture(Backend::Memory).env()
}

#[test]
fn expiry() {
    assert_eq!(DummyJob(env()).expiry(at(5), &foo()), 1_458_483_300.0);
}

#[test]
fn timeout() {
    assert_eq!(DummyJob(env()).timeout(at(5), &foo()), 1_458_482_760.0);
}

#[test]
fn should_stale_item_be_fetched_synchronously_no_threshold() {
    assert!(!DummyJob(env()).should_stale_item_be_fetched_synchronously(Duration::ZERO, &foo()));
}

#[test]
fn should_stale_item_be_fetched_synchronously_reached() {
    assert!(
        StaleDummyJob(env()).should_stale_item_be_fetched_synchronously(Duration::from_secs(301), &foo())
    );
}

#[test]
fn should_stale_item_be_fetched_synchronously_not_reached() {
    assert!(
        !StaleDummyJob(env()).should_stale_item_be_fetched_synchronously(Duration::from_secs(300), &foo())
    );
}

#[test]
fn defaults_are_the_seeds() {
    let job = DummyJob(env());
    assert_eq!(job.lifetime(), Duration::from_secs(600));
    assert_eq!(job.refresh_timeout(), Duration::from_secs(60));
    assert_eq!(job.cache_ttl(), Duration::from_secs(2_592_000));
    assert!(job.fetch_on_miss());
    assert_eq!(job.fetch_on_stale_threshold(), None);
    assert_eq!(job.set_data_kwarg(), "data");
    assert_eq!(job.empty(), None);
}

#[test]
fn key_no_args() {
    #[derive(Default)]
    struct NoArgs;
    impl Job for NoArgs {
        type Args = ();
        type Output = ();
        async fn fetch(&self, _: &()) -> Result<(), FetchError> {
            Ok(())
        }
    }
    assert_eq!(NoArgs.key(&()).unwrap(), "base_job::key_no_args::NoArgs");
}

#[test]
fn key_args() {
    let job = DummyJob(env());
    let key = job.key(&foo()).unwrap();
    let (name, digest) = key.rsplit_once(':').unwrap();
    assert_eq!(name, "base_job::common::DummyJob");
    assert_eq!(digest.len(), 32);
    assert_ne!(key, job.key(&("bar".to_owned(),)).unwrap());
}

#[test]
fn key_named_args() {
    let job = NamedDummyJob;
    let key = job.key(&Param { param: "foo".into() }).unwrap();
    assert!(key.starts_with("base_job::common::NamedDummyJob:"));
    assert_ne!(key, DummyJob(env()).key(&foo()).unwrap().replace("DummyJob", "NamedDummyJob"));
}

/// The seed's `test_key_django_model`: a model argument keys on its identity.
#[test]
fn key_model_identity() {
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct DummyModel {
        id: i32,
        name: String,
    }
    impl Identity for DummyModel {
        type Id = i32;
        fn entity(&self) -> &str {
            "dummy_models"
        }
        fn id(&self) -> i32 {
            self.id
        }
    }
    #[derive(Default)]
    struct ModelJob;
    impl Job for ModelJob {
        type Args = (ByIdentity<DummyModel>,);
        type Output = String;
        async fn fetch(&self, (m,): &Self::Args) -> Result<String, FetchError> {
            Ok(m.name.clone())
        }
    }
    let alan = DummyModel { id: 1, name: "Alan".into() };
    let john = DummyModel { id: 2, name: "John".into() };
    let key = |m: &DummyModel| ModelJob.key(&(ByIdentity(m.clone()),)).unwrap();
    assert_ne!(key(&alan), key(&john));
    assert_eq!(key(&alan), key(&DummyModel { name: "Alan (renamed)".into(), ..alan.clone() }));
    // Only (entity, id) is hashed: the key is the one of the bare identity.
    let identity = cacheback::key::derive_key(&ModelJob::name(), &((("dummy_models", 1),),)).unwrap();
    assert_eq!(key(&alan), identity);
}
