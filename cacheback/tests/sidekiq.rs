//! Refreshes through the real Sidekiq queue in a real Redis: the seed's
//! queue-backed tests with a burst-mode worker, retry and dead sets, garbage,
//! graceful shutdown, failover, and Ruby Sidekiq (6.4) reading our jobs and
//! pushing jobs our worker runs.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use ::redis::AsyncCommands;
use cacheback::queue::sidekiq::{Message, REFRESH_CLASS, SidekiqQueue, SidekiqWorker};
use cacheback::queue::{RefreshPayload, RefreshQueue};
use cacheback::{CacheStatus, Dispatch, Error, Job, Retry, TaskOptions, cacheback};
use common::*;

/// An engine queueing on a Sidekiq queue of its own, and a worker for it.
struct Sidekiq {
    fx: Fixture,
    queue: String,
    worker: SidekiqWorker,
    redis: ::redis::aio::ConnectionManager,
}

impl Sidekiq {
    async fn new(backend: Backend) -> Self {
        Self::with(backend, |q| q, |w| w).await
    }

    async fn with(
        backend: Backend,
        queue: impl FnOnce(
            cacheback::queue::sidekiq::SidekiqQueueBuilder,
        ) -> cacheback::queue::sidekiq::SidekiqQueueBuilder,
        worker: impl FnOnce(
            cacheback::queue::sidekiq::SidekiqWorkerBuilder,
        ) -> cacheback::queue::sidekiq::SidekiqWorkerBuilder,
    ) -> Self {
        Self::slow(backend, Duration::ZERO, queue, worker).await
    }

    /// Every fetch of the dummy jobs takes `delay`.
    async fn slow(
        backend: Backend,
        delay: Duration,
        queue: impl FnOnce(
            cacheback::queue::sidekiq::SidekiqQueueBuilder,
        ) -> cacheback::queue::sidekiq::SidekiqQueueBuilder,
        worker: impl FnOnce(
            cacheback::queue::sidekiq::SidekiqWorkerBuilder,
        ) -> cacheback::queue::sidekiq::SidekiqWorkerBuilder,
    ) -> Self {
        let name = unique_prefix("q").replace(':', "-").trim_end_matches('-').to_owned();
        let sidekiq = queue(SidekiqQueue::builder(redis_url()).default_queue(&name)).connect().await.unwrap();
        let fx = fixture(backend).fetch_delay(delay).refresh_queue(sidekiq).build().await;
        let worker = worker(
            SidekiqWorker::builder(fx.cache.clone(), redis_url()).queues([name.clone()]).concurrency(2),
        )
        .connect()
        .await
        .unwrap();
        let redis = ::redis::Client::open(redis_url()).unwrap().get_connection_manager().await.unwrap();
        Self { fx, queue: name, worker, redis }
    }

    /// The seed's `len(rq_worker.queues[0].jobs)`.
    async fn queued(&self) -> usize {
        self.redis.clone().llen(format!("queue:{}", self.queue)).await.unwrap()
    }

    async fn jobs(&self) -> Vec<Message> {
        let raw: Vec<String> =
            self.redis.clone().lrange(format!("queue:{}", self.queue), 0, -1).await.unwrap();
        raw.iter().map(|r| serde_json::from_str(r).unwrap()).collect()
    }

    /// This queue's entries in the `retry` or `dead` set, with their scores.
    async fn in_set(&self, set: &str) -> Vec<(Message, f64)> {
        let raw: Vec<(String, f64)> = self.redis.clone().zrange_withscores(set, 0, -1).await.unwrap();
        raw.iter()
            .filter_map(|(r, score)| serde_json::from_str::<Message>(r).ok().map(|m| (m, *score)))
            .filter(|(m, _)| m.queue == self.queue)
            .collect()
    }

    async fn raw_dead(&self, needle: &str) -> bool {
        let raw: Vec<String> = self.redis.clone().zrange("dead", 0, -1).await.unwrap();
        raw.iter().any(|r| r.contains(needle))
    }

    /// Makes this queue's retries due now.
    async fn make_retries_due(&self) {
        for (msg, _) in self.in_set("retry").await {
            let raw: Vec<String> = self.redis.clone().zrange("retry", 0, -1).await.unwrap();
            for r in raw.iter().filter(|r| r.contains(&msg.jid)) {
                let () = self.redis.clone().zadd("retry", r, 0).await.unwrap();
            }
        }
    }
}

// ----------------------------------------------------------------------
// The seed's queue-backed tests, through Sidekiq.
// ----------------------------------------------------------------------

on_every_store!(
    get_miss_empty_async,
    get_stale_async,
    get_hit,
    invalidate_miss,
    invalidate_hit,
    async_refresh,
    job_class_lookup,
    task_options_route_jobs,
    failed_refreshes_retry_then_die,
    retry_off_goes_straight_to_the_dead_set,
    a_failed_refresh_keeps_the_stale_value,
    garbage_does_not_stop_the_worker,
);

async fn get_miss_empty_async(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    let job = sk.fx.empty();
    assert_eq!(job.get(&foo()).await.unwrap(), None);
    assert_eq!(sk.queued().await, 1);
    assert_eq!(sk.worker.drain().await.unwrap().processed, 1);
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
}

async fn get_stale_async(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    let job = sk.fx.stale();
    sk.fx.clock().set(at(0));
    let first = job.get(&foo()).await.unwrap().unwrap();
    sk.fx.clock().set(at(14));
    let second = job.get(&foo()).await.unwrap().unwrap();
    assert_eq!(first.1, second.1);
    assert_eq!(sk.queued().await, 1);
    sk.fx.clock().set(at(16));
    assert_eq!(sk.worker.drain().await.unwrap().processed, 1);
    sk.fx.clock().set(at(17));
    let third = job.get(&foo()).await.unwrap().unwrap();
    assert!(second.1 < third.1);
}

async fn get_hit(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    let job = sk.fx.stale();
    sk.fx.clock().set(at(0));
    let first = job.get(&foo()).await.unwrap().unwrap();
    sk.fx.clock().set(at(5));
    assert_eq!(first.1, job.get(&foo()).await.unwrap().unwrap().1);
    assert_eq!(sk.queued().await, 0);
}

async fn invalidate_miss(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    sk.fx.dummy().invalidate(&foo()).await.unwrap();
    assert_eq!(sk.queued().await, 0);
}

async fn invalidate_hit(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    let job = sk.fx.dummy();
    job.refresh(&foo()).await.unwrap();
    job.invalidate(&foo()).await.unwrap();
    assert_eq!(sk.queued().await, 1);
}

/// The seed's `test_async_refresh`, and the wire format Ruby reads.
async fn async_refresh(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    let job = sk.fx.dummy();
    assert_eq!(job.async_refresh(&foo()).await.unwrap(), Dispatch::Enqueued);
    assert!(job.raw_get(&foo()).await.unwrap().is_none());
    assert_eq!(sk.queued().await, 1);
    let members: Vec<String> = sk.redis.clone().smembers("queues").await.unwrap();
    assert!(members.contains(&sk.queue));

    let raw: Vec<String> = sk.redis.clone().lrange(format!("queue:{}", sk.queue), 0, -1).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&raw[0]).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["args", "class", "created_at", "enqueued_at", "jid", "queue", "retry"]);
    assert_eq!(json["class"], REFRESH_CLASS);
    assert_eq!(json["queue"], sk.queue.as_str());
    assert_eq!(json["retry"], true);
    let jid = json["jid"].as_str().unwrap();
    assert!(
        jid.len() == 24 && jid.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{jid}"
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    for field in ["created_at", "enqueued_at"] {
        let at = json[field].as_f64().unwrap();
        assert!((now - at).abs() < 60.0, "{field} is in epoch seconds: {at}");
        assert!(at.fract() != 0.0, "{field} keeps sub-second precision");
    }
    let payload: RefreshPayload = serde_json::from_value(json["args"][0].clone()).unwrap();
    assert_eq!(payload.job, DummyJob::name());
    assert_eq!(payload.args, serde_json::json!(["foo"]));
    assert_eq!(payload.key, job.key(&foo()).unwrap());
}

/// The seed's `test_utils.py::TestGetJobClass`: a job is found by its name, or
/// the refresh fails naming it.
async fn job_class_lookup(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    assert!(sk.fx.cache.is_registered(&DummyJob::name()));
    for name in ["tests::foo::DummyClass", "base_job::common::OtherDummyClass"] {
        let payload = RefreshPayload::new(name, serde_json::json!([]), name);
        let err = sk.fx.cache.perform(&payload).await.unwrap_err();
        assert!(matches!(&err, Error::UnknownJob { job } if job == name), "{err:?}");
    }
}

/// The seed's `test_utils.py::TestEnqueueTask`: task options route jobs (queue)
/// and set retry; configuration overrides a job's own options.
async fn task_options_route_jobs(backend: Backend) {
    let routed = format!("{}-routed", unique_prefix("r").replace(':', "-"));
    let configured = routed.clone();
    let sk = Sidekiq::with(
        backend,
        |q| {
            q.task_options(
                EmptyDummyJob::name(),
                TaskOptions::default().queue(configured).retry(Retry::Count(2)),
            )
        },
        |w| w,
    )
    .await;
    let payload = |job: &str| RefreshPayload::new(job, serde_json::json!(["foo"]), "k");
    let queue = SidekiqQueue::builder(redis_url()).default_queue(&sk.queue).connect().await.unwrap();
    let msg = queue
        .message(payload("a::Job"), &TaskOptions::default().queue("low").retry(Retry::Count(7)))
        .unwrap();
    assert_eq!((msg.queue.as_str(), msg.retry.clone()), ("low", serde_json::json!(7)));
    let msg = queue.message(payload("a::Job"), &TaskOptions::default()).unwrap();
    assert_eq!((msg.queue.as_str(), msg.retry.clone()), (sk.queue.as_str(), serde_json::json!(true)));
    let msg = queue.message(payload("a::Job"), &TaskOptions::default().retry(Retry::Enabled(false))).unwrap();
    assert_eq!(msg.retry, serde_json::json!(0), "retry off still keeps the failure in the dead set");

    // Configured per job: the miss of EmptyDummyJob lands on its own queue.
    assert_eq!(sk.fx.empty().get(&foo()).await.unwrap(), None);
    assert_eq!(sk.queued().await, 0);
    let on_routed: Vec<String> = sk.redis.clone().lrange(format!("queue:{routed}"), 0, -1).await.unwrap();
    let msg: Message = serde_json::from_str(&on_routed[0]).unwrap();
    assert_eq!(msg.retry, serde_json::json!(2));
    let _: () = sk.redis.clone().del(format!("queue:{routed}")).await.unwrap();
}

async fn failed_refreshes_retry_then_die(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    let job = sk.fx.cache.job(FailJob);
    job.async_refresh(&foo()).await.unwrap();
    let report = sk.worker.drain().await.unwrap();
    assert_eq!((report.processed, report.failed), (1, 1));

    let retries = sk.in_set("retry").await;
    assert_eq!(retries.len(), 1);
    let (msg, score) = &retries[0];
    assert_eq!(msg.retry_count, Some(0));
    assert_eq!(msg.error_class.as_deref(), Some("Cacheback::FetchError"));
    assert!(msg.error_message.as_deref().unwrap().contains("JOB-FAILED"));
    let failed_at = msg.failed_at.unwrap().as_secs_f64();
    assert!((15.0..=25.0).contains(&(score - failed_at)), "Sidekiq's first backoff: {}", score - failed_at);
    // Other tests' retries share the set: only this test's job is watched.
    sk.worker.enqueue_due().await.unwrap();
    assert_eq!(sk.in_set("retry").await.len(), 1, "not due yet: still in the retry set");
    assert_eq!(sk.queued().await, 0, "and not back on the queue");

    sk.make_retries_due().await;
    assert!(sk.worker.enqueue_due().await.unwrap() >= 1);
    assert_eq!(sk.worker.drain().await.unwrap().failed, 1);
    let (msg, _) = sk.in_set("retry").await.remove(0);
    assert_eq!(msg.retry_count, Some(1));
    assert_eq!(msg.failed_at.map(|at| at.as_secs_f64()), Some(failed_at));
    assert!(msg.retried_at.unwrap().as_secs_f64() >= failed_at);

    // Exhaust: a job with one retry dies on its second failure.
    let sk = Sidekiq::with(backend, |q| q.default_retry(Retry::Count(1)), |w| w).await;
    sk.fx.cache.job(FailJob).async_refresh(&foo()).await.unwrap();
    sk.worker.drain().await.unwrap();
    sk.make_retries_due().await;
    sk.worker.enqueue_due().await.unwrap();
    sk.worker.drain().await.unwrap();
    assert!(sk.in_set("retry").await.is_empty());
    let dead = sk.in_set("dead").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0.retry_count, Some(1));
}

async fn retry_off_goes_straight_to_the_dead_set(backend: Backend) {
    let sk = Sidekiq::with(backend, |q| q.default_retry(Retry::Enabled(false)), |w| w).await;
    sk.fx.cache.job(FailJob).async_refresh(&foo()).await.unwrap();
    assert_eq!(sk.worker.drain().await.unwrap().failed, 1);
    assert!(sk.in_set("retry").await.is_empty());
    assert_eq!(sk.in_set("dead").await.len(), 1);
}

async fn a_failed_refresh_keeps_the_stale_value(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    let job = sk.fx.dummy();
    job.refresh(&foo()).await.unwrap();
    sk.fx.clock().advance(Duration::from_secs(601));
    sk.fx.env.failing.store(true, Ordering::SeqCst);
    assert_eq!(job.lookup(&foo()).await.unwrap().status, CacheStatus::Stale);
    assert_eq!(sk.worker.drain().await.unwrap().failed, 1);
    let item = job.raw_get(&foo()).await.unwrap().unwrap();
    assert_eq!(item.data.unwrap().1, at(0), "the stale value is still there");
}

/// Bad JSON, an unknown class, wrong arguments, an unknown job name: each is
/// handled as Sidekiq would, and the worker goes on to the next job.
async fn garbage_does_not_stop_the_worker(backend: Backend) {
    let sk = Sidekiq::new(backend).await;
    let list = format!("queue:{}", sk.queue);
    let marker = format!("not json {{ {}", sk.queue);
    let bad = |class: &str, args: serde_json::Value| {
        serde_json::json!({"class": class, "args": args, "jid": "0123456789abcdef01234567", "queue": sk.queue,
                           "retry": true, "created_at": 1.0, "enqueued_at": 1.0})
        .to_string()
    };
    let garbage = [
        marker.clone(),
        bad("SomeRubyWorker", serde_json::json!([1])),
        bad(REFRESH_CLASS, serde_json::json!(["just a string"])),
        bad(REFRESH_CLASS, serde_json::json!([{"job": "x::Unknown", "args": [], "key": "k"}])),
    ];
    for raw in &garbage {
        let () = sk.redis.clone().lpush(&list, raw).await.unwrap();
    }
    sk.fx.empty().get(&foo()).await.unwrap();
    let report = sk.worker.drain().await.unwrap();
    assert_eq!((report.processed, report.failed), (5, 4));
    assert_eq!(sk.fx.empty().get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo", "the good job ran");
    assert!(sk.raw_dead(&marker).await, "unparseable jobs go to the dead set");
    let mut classes: Vec<_> =
        sk.in_set("retry").await.into_iter().filter_map(|(m, _)| m.error_class).collect();
    classes.sort();
    assert_eq!(classes, ["ArgumentError", "Cacheback::UnknownJob", "NameError"]);
}

// ----------------------------------------------------------------------
// The decorator's queue-backed tests.
// ----------------------------------------------------------------------

#[cacheback(fetch_on_miss = false)]
async fn no_fetch_miss_function(param: String) -> String {
    format!("JOB-EXECUTED:{param}")
}

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn decorator_miss_no_fetch_and_hit() {
    let _turn = TURN.lock().await;
    let sk = Sidekiq::new(Backend::Redis).await;
    sk.fx.cache.install_global();
    assert_eq!(no_fetch_miss_function("foo".into()).await, "");
    assert_eq!(sk.queued().await, 1);
    assert_eq!(sk.jobs().await[0].args[0]["job"], "sidekiq::no_fetch_miss_function");
    assert_eq!(sk.worker.drain().await.unwrap().processed, 1);
    assert_eq!(no_fetch_miss_function("foo".into()).await, "JOB-EXECUTED:foo");
    cacheback::Cacheback::uninstall_global();
}

// ----------------------------------------------------------------------
// A running worker: latency, graceful and forced shutdown.
// ----------------------------------------------------------------------

/// Waits up to 10 s for `condition`, failing the test after that.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_refreshes_in_the_background() {
    let sk = Sidekiq::new(Backend::Redis).await;
    let handle = sk.worker.start();
    let job = sk.fx.empty();
    assert_eq!(job.get(&foo()).await.unwrap(), None);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while job.get(&foo()).await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the worker did not refresh");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(handle.shutdown().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_refreshes() {
    let sk = Sidekiq::slow(
        Backend::Redis,
        Duration::from_millis(500),
        |q| q,
        |w| w.concurrency(1).shutdown_timeout(Duration::from_secs(10)),
    )
    .await;
    let job = sk.fx.empty();
    let handle = sk.worker.start();
    job.async_refresh(&foo()).await.unwrap();
    wait_until("the refresh starts", || sk.fx.env.fetches() > 0).await;
    assert_eq!(handle.shutdown().await, 0, "nothing cut short");
    assert!(job.raw_get(&foo()).await.unwrap().is_some(), "the in-flight refresh finished");
    // No new jobs after shutdown.
    job.async_refresh(&("bar".to_owned(),)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(sk.queued().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_shutdown_puts_cut_refreshes_back() {
    let sk = Sidekiq::slow(
        Backend::Redis,
        Duration::from_secs(5),
        |q| q,
        |w| w.concurrency(1).shutdown_timeout(Duration::from_millis(100)),
    )
    .await;
    let job = sk.fx.empty();
    let handle = sk.worker.start();
    job.async_refresh(&foo()).await.unwrap();
    wait_until("the refresh starts", || sk.fx.env.fetches() > 0).await;
    assert_eq!(handle.shutdown().await, 1);
    assert_eq!(sk.queued().await, 1, "nothing is lost");
    assert!(job.raw_get(&foo()).await.unwrap().is_none());
}

// ----------------------------------------------------------------------
// Failover: the queue's Redis goes away and comes back.
// ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_enqueue_refreshes_in_the_request_and_recovers() {
    let mut redis = PrivateRedis::start_anywhere();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let queue = SidekiqQueue::builder(&url).timeout(Duration::from_millis(300)).connect().await.unwrap();
    let fx = fixture(Backend::Memory).refresh_queue(queue.clone()).build().await;
    let job = fx.dummy();
    job.refresh(&foo()).await.unwrap();
    fx.clock().advance(Duration::from_secs(601));

    redis.stop();
    let (logs, _guard) = Logs::capture();
    let stale = job.lookup(&foo()).await.expect("never an error page");
    assert_eq!(stale.status, CacheStatus::Stale);
    assert!(logs.text().contains("failing over to synchronous refresh"), "{}", logs.text());
    let fresh = job.lookup(&foo()).await.unwrap();
    assert_eq!(
        (fresh.status, fresh.value.unwrap().1),
        (CacheStatus::Hit, fx.cache.now()),
        "refreshed in the request"
    );

    let _redis = PrivateRedis::start(redis.port);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let dispatched = job.async_refresh(&("bar".to_owned(),)).await.unwrap();
        if dispatched == Dispatch::Enqueued {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "enqueueing did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn =
        ::redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let queued: usize = conn.llen("queue:cacheback").await.unwrap();
    assert_eq!(queued, 1, "async refresh resumed without a restart");
    assert!(queue.ping().await.is_ok());
}

// ----------------------------------------------------------------------
// Ruby Sidekiq 6.4, the reference.
// ----------------------------------------------------------------------

fn ruby(script: &str, env: &[(&str, &str)]) -> serde_json::Value {
    ruby_sidekiq(script, env)
}

/// a. Ruby's `Sidekiq::Queue` and `Sidekiq::Stats` read a job cacheback enqueued.
#[tokio::test]
async fn ruby_sidekiq_reads_our_jobs() {
    let sk = Sidekiq::new(Backend::Redis).await;
    let job = sk.fx.dummy();
    job.async_refresh(&foo()).await.unwrap();
    let ours = sk.jobs().await.remove(0);
    let seen = ruby(
        "q = Sidekiq::Queue.new(ENV['QUEUE']); j = q.first\n\
         puts 'RESULT ' + JSON.generate({size: q.size, klass: j.klass, args: j.args, queue: j.queue, jid: j.jid,\n\
           latency: q.latency, enqueued_at: j.enqueued_at.to_f, created_at: j.created_at.to_f,\n\
           stats: Sidekiq::Stats.new.queues[ENV['QUEUE']]})",
        &[("QUEUE", &sk.queue)],
    );
    assert_eq!(seen["size"], 1);
    assert_eq!(seen["klass"], REFRESH_CLASS);
    assert_eq!(seen["queue"], sk.queue.as_str());
    assert_eq!(seen["jid"], ours.jid.as_str());
    assert_eq!(seen["args"][0]["job"], DummyJob::name().as_ref());
    assert_eq!(seen["args"][0]["key"], job.key(&foo()).unwrap());
    assert_eq!(seen["stats"], 1);
    let latency = seen["latency"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&latency), "latency in seconds: {latency}");
    assert!((seen["enqueued_at"].as_f64().unwrap() - ours.enqueued_at.unwrap().as_secs_f64()).abs() < 0.001);
    assert!((seen["created_at"].as_f64().unwrap() - ours.created_at.as_secs_f64()).abs() < 0.001);
}

/// b. A job pushed by Ruby's `Sidekiq::Client.push` runs on our worker.
#[tokio::test]
async fn our_worker_runs_jobs_ruby_pushed() {
    let sk = Sidekiq::new(Backend::Redis).await;
    let job = sk.fx.empty();
    let payload =
        RefreshPayload::new(EmptyDummyJob::name(), serde_json::json!(["foo"]), job.key(&foo()).unwrap());
    let pushed = ruby(
        "jid = Sidekiq::Client.push('class' => 'Cacheback::RefreshCache', 'queue' => ENV['QUEUE'],\n\
                                    'args' => [JSON.parse(ENV['PAYLOAD'])])\n\
         puts 'RESULT ' + JSON.generate({jid: jid})",
        &[("QUEUE", &sk.queue), ("PAYLOAD", &serde_json::to_string(&payload).unwrap())],
    );
    assert_eq!(sk.jobs().await[0].jid, pushed["jid"].as_str().unwrap());
    let report = sk.worker.drain().await.unwrap();
    assert_eq!((report.processed, report.failed), (1, 0));
    assert_eq!(job.get(&foo()).await.unwrap().unwrap().0, "JOB-EXECUTED:foo");
}

/// c. Garbage pushed by Ruby does not stop the worker, and Ruby reads the
/// retry and dead entries it leaves.
#[tokio::test]
async fn garbage_from_ruby_does_not_stop_the_worker() {
    let sk = Sidekiq::new(Backend::Redis).await;
    let marker = format!("garbage-{}", sk.queue);
    ruby(
        "q = ENV['QUEUE']\n\
         Sidekiq.redis { |c| c.lpush(\"queue:#{q}\", \"{ not json #{ENV['MARKER']}\") }\n\
         Sidekiq::Client.push('class' => 'SomeRubyWorker', 'queue' => q, 'args' => [1])\n\
         Sidekiq::Client.push('class' => 'Cacheback::RefreshCache', 'queue' => q, 'args' => ['wrong', 'args'])\n\
         Sidekiq::Client.push('class' => 'Cacheback::RefreshCache', 'queue' => q, 'args' => [{'job' => 'ruby::Unknown', 'args' => [], 'key' => 'k'}])\n\
         puts 'RESULT {}'",
        &[("QUEUE", &sk.queue), ("MARKER", &marker)],
    );
    sk.fx.empty().get(&foo()).await.unwrap();
    let report = sk.worker.drain().await.unwrap();
    assert_eq!((report.processed, report.failed), (5, 4));
    assert!(sk.fx.empty().get(&foo()).await.unwrap().is_some(), "the good job ran");
    assert!(sk.raw_dead(&marker).await);
    let seen = ruby(
        "now = Time.now.to_f\n\
         rs = Sidekiq::RetrySet.new.select { |j| j.queue == ENV['QUEUE'] }\n\
         puts 'RESULT ' + JSON.generate(rs.map { |j| {klass: j.klass, error_class: j['error_class'], retry_count: j['retry_count'],\n\
           failed_ago: now - j['failed_at'], due_in: j.at.to_f - now} }.sort_by { |h| h[:error_class] })",
        &[("QUEUE", &sk.queue)],
    );
    let seen = seen.as_array().unwrap();
    let classes: Vec<_> = seen.iter().map(|j| j["error_class"].as_str().unwrap()).collect();
    assert_eq!(classes, ["ArgumentError", "Cacheback::UnknownJob", "NameError"]);
    for entry in seen {
        assert_eq!(entry["retry_count"], 0);
        assert!(
            (0.0..60.0).contains(&entry["failed_ago"].as_f64().unwrap()),
            "failed_at in seconds: {entry}"
        );
        assert!(
            (10.0..30.0).contains(&entry["due_in"].as_f64().unwrap()),
            "retry due in Sidekiq's backoff: {entry}"
        );
    }
}
