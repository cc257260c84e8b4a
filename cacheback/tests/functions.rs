//! The seed's `tests/test_decorators.py` and the `FunctionJob` part of
//! `tests/test_jobs.py`, ported, against the in-memory store and a real Redis.
//!
//! Decorated functions use the global engine, so these tests take turns.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cacheback::function::FunctionJob;
use cacheback::policy::{Options, Policy};
use cacheback::{CacheStatus, FetchError, Job, TaskOptions, cacheback};
use common::*;
use tokio::sync::{Mutex, MutexGuard};

static TURN: Mutex<()> = Mutex::const_new(());

/// A fixture whose engine is the global one, for the duration of the turn.
async fn global(backend: Backend) -> (MutexGuard<'static, ()>, Fixture) {
    let turn = TURN.lock().await;
    let fx = fixture(backend).extension(Greeter { greeting: "hello".into() }).build().await;
    fx.cache.install_global();
    (turn, fx)
}

// ----------------------------------------------------------------------
// The seed's decorated functions.
// ----------------------------------------------------------------------

/// The seed's `OtherFunctionJob`: a custom job type for the decorator.
#[derive(Debug)]
pub struct OtherFunctionJob(Options);

impl Policy for OtherFunctionJob {
    fn from_options(options: Options) -> Self {
        Self(options)
    }
    fn options(&self) -> &Options {
        &self.0
    }
}

#[cacheback(fetch_on_miss = false, job = OtherFunctionJob)]
async fn no_fetch_miss_function(param: String) -> String {
    format!("JOB-EXECUTED:{param}")
}

/// A policy that turns off fetching on a miss by itself, without the
/// attribute's `fetch_on_miss = false` (which would give the empty value).
#[derive(Debug)]
pub struct LazyPolicy(Options);

impl Policy for LazyPolicy {
    fn from_options(options: Options) -> Self {
        Self(options)
    }
    fn options(&self) -> &Options {
        &self.0
    }
    fn fetch_on_miss(&self) -> bool {
        false
    }
}

static LAZY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cacheback(job = LazyPolicy)]
async fn lazy_policy_function(param: String) -> String {
    LAZY_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("JOB-EXECUTED:{param}")
}

static NOTHING_CALLS: AtomicUsize = AtomicUsize::new(0);

/// An output that is JSON `null` when there is nothing.
#[cacheback]
async fn nothing_found(param: String) -> Option<u32> {
    NOTHING_CALLS.fetch_add(1, Ordering::SeqCst);
    param.parse().ok()
}

#[cacheback(lifetime = 30, fetch_on_miss = true)]
async fn fetch_miss_function(param: String) -> String {
    format!("JOB-EXECUTED:{param}")
}

#[cacheback(cache_alias = "secondary", fetch_on_miss = true)]
async fn fetch_cache_alias_function(param: String) -> String {
    format!("JOB-EXECUTED:{param}")
}

#[cacheback(set_data_kwarg = "my_data")]
async fn custom_payload_label_function(param: String) -> String {
    format!("JOB-EXECUTED:{param}")
}

/// A context the worker supplies from the engine's extensions.
#[derive(Debug, Clone)]
pub struct Greeter {
    greeting: String,
}

static GREETS: AtomicUsize = AtomicUsize::new(0);

#[cacheback(5, fetch_on_miss = false, queue = "greetings", retry = 3, extra(tier = "gold"))]
async fn greet(greeter: &Greeter, who: String, times: u32) -> Result<Vec<String>, std::io::Error> {
    GREETS.fetch_add(1, Ordering::SeqCst);
    if who.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "nobody to greet"));
    }
    Ok((0..times).map(|_| format!("{} {who}", greeter.greeting)).collect())
}

#[cacheback]
async fn answer() -> u64 {
    42
}

fn foo() -> (String,) {
    ("foo".to_owned(),)
}

on_every_store!(
    job_init,
    job_init_job_class,
    miss_no_fetch,
    miss_fetch,
    miss_with_a_lazy_policy_but_no_empty_value,
    none_is_cached_like_any_value,
    cache_alias,
    set,
    set_kwarg,
    set_custom_kwarg,
    hit,
    functions_are_registered_by_name,
    context_comes_from_the_caller_and_the_worker,
    errors_reach_the_caller_as_they_are,
    no_arguments,
    function_job_get,
    function_job_fetch_on_miss_per_instance,
    function_job_with_context,
);

async fn job_init(backend: Backend) {
    let (_turn, _fx) = global(backend).await;
    let job = fetch_miss_function::job().unwrap();
    assert_eq!(job.job().lifetime(), Duration::from_secs(30));
    let job = fetch_cache_alias_function::job().unwrap();
    assert_eq!(job.job().cache_alias(), Some("secondary"));
}

async fn job_init_job_class(backend: Backend) {
    let (_turn, _fx) = global(backend).await;
    let job = no_fetch_miss_function::job().unwrap();
    let policy: &OtherFunctionJob = job.job().policy();
    assert!(!policy.fetch_on_miss());
}

async fn miss_no_fetch(backend: Backend) {
    let (_turn, fx) = global(backend).await;
    // An async miss returns the job's empty value (the output's default).
    assert_eq!(no_fetch_miss_function("foo".into()).await, "");
    assert_eq!(fx.queue.pending(), 1);
    assert_eq!(fx.queue.pending_payloads()[0].job, "functions::no_fetch_miss_function");
}

async fn miss_fetch(backend: Backend) {
    let (_turn, _fx) = global(backend).await;
    assert_eq!(fetch_miss_function("foo".into()).await, "JOB-EXECUTED:foo");
}

async fn miss_with_a_lazy_policy_but_no_empty_value(backend: Backend) {
    let (_turn, fx) = global(backend).await;
    // The policy says no fetch on a miss, but the function has no empty value
    // to return: the miss fetches once, and queues nothing.
    let before = LAZY_CALLS.load(Ordering::SeqCst);
    assert_eq!(lazy_policy_function("foo".into()).await, "JOB-EXECUTED:foo");
    assert_eq!(LAZY_CALLS.load(Ordering::SeqCst) - before, 1, "one call on the miss");
    assert_eq!(fx.queue.pending(), 0, "no refresh queued beside the fetch");
    // Stored: the next call is a HIT.
    assert_eq!(lazy_policy_function("foo".into()).await, "JOB-EXECUTED:foo");
    assert_eq!(LAZY_CALLS.load(Ordering::SeqCst) - before, 1, "no call on the HIT");
    assert_eq!(lazy_policy_function::job().unwrap().lookup(&foo()).await.unwrap().status, CacheStatus::Hit);
}

async fn none_is_cached_like_any_value(backend: Backend) {
    let (_turn, _fx) = global(backend).await;
    let before = NOTHING_CALLS.load(Ordering::SeqCst);
    assert_eq!(nothing_found("foo".into()).await, None);
    // A HIT on `None`: not mistaken for the placeholder of a pending refresh.
    assert_eq!(nothing_found("foo".into()).await, None);
    assert_eq!(NOTHING_CALLS.load(Ordering::SeqCst) - before, 1, "the second call is a HIT");
    let found = nothing_found::job().unwrap().lookup(&foo()).await.unwrap();
    assert_eq!((found.status, found.value.as_deref()), (CacheStatus::Hit, Some(&None)));
    assert_eq!(nothing_found("7".into()).await, Some(7));
}

async fn cache_alias(backend: Backend) {
    let (_turn, fx) = global(backend).await;
    assert_eq!(fetch_cache_alias_function("foo".into()).await, "JOB-EXECUTED:foo");
    let key = fetch_cache_alias_function::job().unwrap().key(&foo()).unwrap();
    assert!(fx.contains("secondary", &key).await);
    assert!(!fx.contains("default", &key).await);
}

async fn set(backend: Backend) {
    let (_turn, _fx) = global(backend).await;
    no_fetch_miss_function::job().unwrap().set(&foo(), "MANUALLY_SET".into()).await.unwrap();
    assert_eq!(no_fetch_miss_function("foo".into()).await, "MANUALLY_SET");
}

async fn set_kwarg(backend: Backend) {
    let (_turn, _fx) = global(backend).await;
    let job = no_fetch_miss_function::job().unwrap();
    job.set_call(serde_json::json!({"param": "foo", "data": "MANUALLY_SET_WITH_KWARG"})).await.unwrap();
    assert_eq!(no_fetch_miss_function("foo".into()).await, "MANUALLY_SET_WITH_KWARG");
    let err = job.set_call(serde_json::json!({"parm": "foo", "data": "x"})).await.unwrap_err();
    assert!(err.to_string().contains("missing argument `param`"), "{err}");
}

async fn set_custom_kwarg(backend: Backend) {
    let (_turn, _fx) = global(backend).await;
    let call = serde_json::json!({"param": "foo", "my_data": "MANUALLY_SET_WITH_CUSTOM_KWARG"});
    custom_payload_label_function::job().unwrap().set_call(call).await.unwrap();
    assert_eq!(custom_payload_label_function("foo".into()).await, "MANUALLY_SET_WITH_CUSTOM_KWARG");
}

async fn hit(backend: Backend) {
    let (_turn, fx) = global(backend).await;
    assert_eq!(no_fetch_miss_function("foo".into()).await, "");
    assert_eq!(fx.queue.run_pending().await, 1);
    assert_eq!(no_fetch_miss_function("foo".into()).await, "JOB-EXECUTED:foo");
    let found = no_fetch_miss_function::job().unwrap().lookup(&foo()).await.unwrap();
    assert_eq!(found.status, CacheStatus::Hit);
}

async fn functions_are_registered_by_name(backend: Backend) {
    let (_turn, fx) = global(backend).await;
    for name in ["functions::no_fetch_miss_function", "functions::greet", "functions::answer"] {
        assert!(fx.cache.is_registered(name), "{name} in {:?}", fx.cache.registered_jobs());
    }
    // The seed's `fn.fn`: the function without the cache.
    assert_eq!(fetch_miss_function::uncached("x".into()).await, "JOB-EXECUTED:x");
}

async fn context_comes_from_the_caller_and_the_worker(backend: Backend) {
    let (_turn, fx) = global(backend).await;
    let caller = Greeter { greeting: "hi".into() };
    // A miss refreshes in the background: the empty value now.
    assert_eq!(greet(&caller, "bob".into(), 2).await.unwrap(), Vec::<String>::new());
    let payload = fx.queue.pending_payloads().remove(0);
    assert_eq!(payload.args, serde_json::json!(["bob", 2]), "the context is not in the payload");
    // The worker's context is its own ("hello", from the engine's extensions).
    assert_eq!(fx.queue.run_pending().await, 1);
    assert_eq!(greet(&caller, "bob".into(), 2).await.unwrap(), ["hello bob", "hello bob"]);
    // The key ignores the context too.
    let other = Greeter { greeting: "hey".into() };
    assert_eq!(
        greet::job(&caller).unwrap().key(&("bob".into(), 2)).unwrap(),
        greet::job(&other).unwrap().key(&("bob".into(), 2)).unwrap()
    );
    // The attribute's options reached the job.
    let job = greet::job(&caller).unwrap();
    assert_eq!(job.job().lifetime(), Duration::from_secs(5));
    assert_eq!(
        job.job().task_options(),
        TaskOptions::default().queue("greetings").retry(cacheback::Retry::Count(3))
    );
    assert_eq!(job.job().policy().extra["tier"], "gold");
}

async fn errors_reach_the_caller_as_they_are(backend: Backend) {
    let (_turn, fx) = global(backend).await;
    let before = CHECKS.load(Ordering::SeqCst);
    // A synchronous fetch that fails hands the caller the function's own error, once.
    let err: NotPositive = checked(-1).await.unwrap_err();
    assert_eq!(err, NotPositive(-1));
    assert_eq!(CHECKS.load(Ordering::SeqCst) - before, 1, "no second call to recover the error");
    assert!(
        !fx.contains("default", &checked::job().unwrap().key(&(-1,)).unwrap()).await,
        "errors are not cached"
    );
    assert_eq!(checked(3).await, Ok(3));
    assert_eq!(checked(3).await, Ok(3));
    assert_eq!(CHECKS.load(Ordering::SeqCst) - before, 2);
    // In the background, an error is logged and the empty value stays.
    let caller = Greeter { greeting: "hi".into() };
    assert_eq!(greet(&caller, String::new(), 1).await.unwrap(), Vec::<String>::new());
    assert_eq!(fx.queue.run_pending().await, 1);
    assert_eq!(greet(&caller, String::new(), 1).await.unwrap(), Vec::<String>::new());
}

/// An error type that is neither `Clone` nor `std::error::Error`.
#[derive(Debug, PartialEq)]
pub struct NotPositive(i64);

impl std::fmt::Display for NotPositive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not positive", self.0)
    }
}

static CHECKS: AtomicUsize = AtomicUsize::new(0);

#[cacheback]
async fn checked(n: i64) -> Result<i64, NotPositive> {
    CHECKS.fetch_add(1, Ordering::SeqCst);
    if n > 0 { Ok(n) } else { Err(NotPositive(n)) }
}

async fn no_arguments(backend: Backend) {
    let (_turn, fx) = global(backend).await;
    assert_eq!(answer().await, 42);
    let key = answer::job().unwrap().key(&()).unwrap();
    assert_eq!(key, "functions::answer");
    assert!(fx.contains("default", &key).await);
}

// ----------------------------------------------------------------------
// FunctionJob, without the attribute (the seed's TestFunctionJob).
// ----------------------------------------------------------------------

async fn dummy_function(param: String) -> Result<String, FetchError> {
    Ok(format!("JOB-EXECUTED:{param}"))
}

#[test]
fn function_job_init_defaults() {
    let job = FunctionJob::new(dummy_function);
    assert_eq!(job.lifetime(), Duration::from_secs(600));
    assert!(job.fetch_on_miss());
    assert_eq!(job.cache_alias(), None);
    assert_eq!(job.task_options(), TaskOptions::default());
}

#[test]
fn function_job_init() {
    let job = FunctionJob::new(dummy_function)
        .with_lifetime(Duration::from_secs(30))
        .with_fetch_on_miss(false)
        .with_cache_alias("secondary")
        .with_task_options(TaskOptions::default().queue("bar"));
    assert_eq!(job.lifetime(), Duration::from_secs(30));
    assert!(!job.fetch_on_miss());
    assert_eq!(job.cache_alias(), Some("secondary"));
    assert_eq!(job.task_options().queue.as_deref(), Some("bar"));
}

/// The seed's `test_prepare_args`: the function is named by its path.
#[test]
fn function_job_name_is_the_function_path() {
    fn name_of<J: Job>(_: &J) -> std::borrow::Cow<'static, str> {
        J::name()
    }
    assert_eq!(name_of(&FunctionJob::new(dummy_function)), "functions::dummy_function");
}

#[tokio::test]
async fn function_job_fetch() {
    let job = FunctionJob::new(dummy_function);
    assert_eq!(job.fetch(&foo()).await.unwrap(), "JOB-EXECUTED:foo");
}

#[tokio::test]
async fn function_job_fetch_decorated() {
    let job = FunctionJob::new(|param: String| async move {
        Ok::<_, FetchError>(fetch_miss_function::uncached(param).await)
    });
    assert_eq!(job.fetch(&foo()).await.unwrap(), "JOB-EXECUTED:foo");
}

#[test]
fn function_job_init_kwargs() {
    let state = |job: &dyn Fn() -> serde_json::Value| job();
    let default = state(&|| FunctionJob::new(dummy_function).init_state());
    assert_eq!(default["lifetime"], serde_json::json!({"secs": 600, "nanos": 0}));
    assert_eq!(default["cache_alias"], serde_json::Value::Null);
    let custom = FunctionJob::new(dummy_function)
        .with_lifetime(Duration::from_secs(30))
        .with_cache_alias("secondary")
        .init_state();
    assert_eq!(custom["lifetime"]["secs"], 30);
    assert_eq!(custom["cache_alias"], "secondary");
}

async fn function_job_get(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx.cache.job(FunctionJob::new(dummy_function));
    assert_eq!(*job.get(&foo()).await.unwrap().unwrap(), "JOB-EXECUTED:foo");
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Hit);
}

/// The seed sandbox's `job.fetch_on_miss = False` on a `FunctionJob`, and its
/// refresh by the worker from the payload's state.
async fn function_job_fetch_on_miss_per_instance(backend: Backend) {
    let fx = fixture(backend).build().await;
    let cache = fx.cache.clone();
    let job = cache.job(
        FunctionJob::new(dummy_function).with_fetch_on_miss(false).with_lifetime(Duration::from_secs(7)),
    );
    assert_eq!(job.get(&foo()).await.unwrap(), None);
    // Registered? Not yet: the payload is refused, and logged.
    let payload = fx.queue.pending_payloads().remove(0);
    assert!(matches!(cache.perform(&payload).await, Err(cacheback::Error::UnknownJob { .. })));

    let fx = fixture(backend).build().await;
    let cache = fx.cache.clone();
    let registered = cacheback::Cacheback::builder()
        .store_arc("default", std::sync::Arc::clone(cache.store("default").unwrap()))
        .clock(fx.clock().clone())
        .register_function(dummy_function)
        .build()
        .unwrap();
    let job = cache.job(
        FunctionJob::new(dummy_function).with_fetch_on_miss(false).with_lifetime(Duration::from_secs(7)),
    );
    assert_eq!(job.get(&foo()).await.unwrap(), None);
    let payload = fx.queue.pending_payloads().remove(0);
    assert_eq!(registered.perform(&payload).await.unwrap(), cacheback::queue::RefreshOutcome::Refreshed);
    let item = job.raw_get(&foo()).await.unwrap().unwrap();
    assert_eq!(item.data.as_deref().map(String::as_str), Some("JOB-EXECUTED:foo"));
    assert_eq!(item.expiry, fx.cache.now() + 7.0, "the worker used the instance's lifetime");
}

async fn shout(greeter: Greeter, who: String) -> Result<String, FetchError> {
    Ok(format!("{} {}!", greeter.greeting.to_uppercase(), who))
}

async fn function_job_with_context(backend: Backend) {
    let fx = fixture(backend).build().await;
    let job = fx
        .cache
        .job(FunctionJob::with_context(shout, Greeter { greeting: "hey".into() }).with_fetch_on_miss(false));
    assert_eq!(job.get(&("ann".to_owned(),)).await.unwrap(), None);
    let payload = fx.queue.pending_payloads().remove(0);
    let worker = cacheback::Cacheback::builder()
        .store_arc("default", std::sync::Arc::clone(fx.cache.store("default").unwrap()))
        .extension(Greeter { greeting: "ho".into() })
        .register_function_with_context(shout)
        .build()
        .unwrap();
    worker.perform(&payload).await.unwrap();
    assert_eq!(*job.get(&("ann".to_owned(),)).await.unwrap().unwrap(), "HO ann!");
}

/// Without an installed engine a decorated function is a plain call.
#[tokio::test]
async fn without_an_engine_calls_are_direct() {
    let _turn = TURN.lock().await;
    cacheback::Cacheback::uninstall_global();
    assert_eq!(fetch_miss_function("x".into()).await, "JOB-EXECUTED:x");
    assert!(fetch_miss_function::job().is_err());
}

/// Every policy the attribute can set, each away from its default.
#[allow(dead_code)]
#[cacheback(
    lifetime = 1,
    refresh_timeout = 2,
    cache_ttl = 3,
    fill_wait = 7,
    fetch_on_stale_threshold = 4,
    stale_if_error = 5,
    max_stale_age = 6,
    fetch_soft_timeout = 8,
    fetch_hard_timeout = 9,
    early_refresh = 1.5,
    fetch_on_miss = false,
    cache_alias = "secondary",
    queue = "q",
    retry = 2,
    set_data_kwarg = "d",
    tags = ["t1", "t2"]
)]
async fn every_option(param: String) -> String {
    param
}

/// The attribute, the setters and `Options::NAMES` agree: each policy named
/// there is an option of the attribute (its error message lists them), and
/// setting each one moves it off its default; and each option of the
/// attribute is a policy, but for those that are not: `name` (the job's
/// identity), `job` and `extra(..)` (the policy type and its options).
#[test]
fn the_attribute_sets_every_policy_of_options() {
    use cacheback::__private::Decorated;
    let set = serde_json::to_value(<every_option::Spec as Decorated>::options()).unwrap();
    let default = serde_json::to_value(Options::default()).unwrap();
    let listed = include_str!("ui/unknown_option.stderr");
    let options: Vec<&str> = listed
        .lines()
        .next()
        .and_then(|line| line.split_once("the options are: "))
        .map(|(_, list)| list.split(", ").collect())
        .expect("the error message lists the options");
    for name in Options::NAMES {
        assert_ne!(set[name], default[name], "`every_option` sets `{name}`");
        // `task_options` is set through `queue` and `retry`.
        let wanted: &[&str] = if *name == "task_options" { &["queue", "retry"] } else { &[name] };
        for option in wanted {
            assert!(options.contains(option), "the attribute's option list names `{option}`");
        }
    }
    const NOT_POLICIES: [&str; 3] = ["name", "job", "extra(..)"];
    for option in options {
        let policy = if option == "queue" || option == "retry" { "task_options" } else { option };
        assert!(
            Options::NAMES.contains(&policy) || NOT_POLICIES.contains(&option),
            "the attribute's option `{option}` is a policy of `Options` or a known non-policy"
        );
    }
}
