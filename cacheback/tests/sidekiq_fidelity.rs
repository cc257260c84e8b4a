//! Ruby Sidekiq reads every entry cacheback writes, and cacheback handles
//! every job Ruby writes: garbage is buried as jobs Ruby's API iterates
//! (checked with Sidekiq 6.4's `DeadSet`, `RetrySet`, `ScheduledSet` and
//! `Queue`), Sidekiq 8's millisecond times are read as such and kept, and
//! jobs with odd fields run or retry as Ruby would run or retry them.

mod common;

use ::redis::AsyncCommands;
use cacheback::queue::RefreshPayload;
use cacheback::queue::sidekiq::{
    INVALID_JOB_CLASS, Message, REFRESH_CLASS, SidekiqQueue, SidekiqQueueBuilder, SidekiqWorker, Stamp,
    Timestamps,
};
use cacheback::settings::SidekiqSettings;
use cacheback::{Job, Retry};
use common::*;
use serde_json::{Value, json};

/// An engine queueing on a Sidekiq queue of its own, and a worker for it.
struct Sidekiq {
    fx: Fixture,
    queue: String,
    worker: SidekiqWorker,
    redis: ::redis::aio::ConnectionManager,
}

impl Sidekiq {
    async fn new() -> Self {
        Self::with(|q| q).await
    }

    async fn with(queue: impl FnOnce(SidekiqQueueBuilder) -> SidekiqQueueBuilder) -> Self {
        let name = unique_prefix("fq").replace(':', "-").trim_end_matches('-').to_owned();
        let sidekiq = queue(SidekiqQueue::builder(redis_url()).default_queue(&name)).connect().await.unwrap();
        let fx = fixture(Backend::Redis).refresh_queue(sidekiq).build().await;
        let worker = SidekiqWorker::builder(fx.cache.clone(), redis_url())
            .queues([name.clone()])
            .concurrency(2)
            .connect()
            .await
            .unwrap();
        let redis = ::redis::Client::open(redis_url()).unwrap().get_connection_manager().await.unwrap();
        Self { fx, queue: name, worker, redis }
    }

    async fn push_raw(&self, raw: &str) {
        let () = self.redis.clone().lpush(format!("queue:{}", self.queue), raw).await.unwrap();
    }

    /// This queue's raw entries, oldest first.
    async fn queued(&self) -> Vec<Value> {
        let raw: Vec<String> =
            self.redis.clone().lrange(format!("queue:{}", self.queue), 0, -1).await.unwrap();
        raw.iter().rev().map(|r| serde_json::from_str(r).unwrap()).collect()
    }

    /// This queue's entries in a sorted set, as JSON, with their scores.
    async fn in_set(&self, set: &str) -> Vec<(Value, f64)> {
        let raw: Vec<(String, f64)> = self.redis.clone().zrange_withscores(set, 0, -1).await.unwrap();
        raw.iter()
            .filter_map(|(r, score)| serde_json::from_str::<Value>(r).ok().map(|v| (v, *score)))
            .filter(|(v, _)| v["queue"] == self.queue.as_str())
            .collect()
    }

    /// The entry of `set` with job id `jid`.
    async fn entry(&self, set: &str, jid: &str) -> Option<(Value, f64)> {
        self.in_set(set).await.into_iter().find(|(v, _)| v["jid"] == jid)
    }

    /// Moves this queue's retries back onto it now; returns the queue once
    /// it holds `count` jobs (another test's worker may be the one moving
    /// them: `enqueue_due` moves every queue's due retries).
    async fn requeue_retries(&self, count: usize) -> Vec<Value> {
        self.make_retries_due().await;
        self.worker.enqueue_due().await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let queued = self.queued().await;
            if queued.len() >= count {
                assert_eq!(queued.len(), count, "{queued:?}");
                return queued;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {count} retries requeued",
                queued.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The `error_class` and `error_message` of the retry of job `jid`.
    async fn failure(&self, jid: &str) -> (String, String) {
        let (entry, _) = self.entry("retry", jid).await.unwrap_or_else(|| panic!("{jid} is not in retry"));
        (
            entry["error_class"].as_str().unwrap().to_owned(),
            entry["error_message"].as_str().unwrap().to_owned(),
        )
    }

    /// Removes this queue's retries and jobs, which would otherwise come due
    /// in another test's `enqueue_due`.
    async fn clean_up(&self) {
        let raw: Vec<String> = self.redis.clone().zrange("retry", 0, -1).await.unwrap();
        for r in raw.iter().filter(|r| r.contains(&format!("\"queue\":\"{}\"", self.queue))) {
            let () = self.redis.clone().zrem("retry", r).await.unwrap();
        }
        let () = self.redis.clone().del(format!("queue:{}", self.queue)).await.unwrap();
    }

    /// Makes this queue's retries due now.
    async fn make_retries_due(&self) {
        let raw: Vec<String> = self.redis.clone().zrange("retry", 0, -1).await.unwrap();
        for r in raw.iter().filter(|r| r.contains(&format!("\"queue\":\"{}\"", self.queue))) {
            let () = self.redis.clone().zadd("retry", r, 0).await.unwrap();
        }
    }

    /// A refresh payload of `FailJob` for `foo`.
    fn fail(&self) -> Value {
        Self::payload(&FailJob::name(), self.fx.cache.job(FailJob).key(&foo()).unwrap())
    }

    /// A refresh payload of `EmptyDummyJob` for `foo`.
    fn good(&self) -> Value {
        Self::payload(&EmptyDummyJob::name(), self.fx.empty().key(&foo()).unwrap())
    }

    fn payload(job: &str, key: String) -> Value {
        serde_json::to_value(RefreshPayload::new(job, json!(["foo"]), key)).unwrap()
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[allow(clippy::cast_possible_truncation)]
fn now_ms() -> i64 {
    (now_secs() * 1000.0) as i64
}

/// A 24-hex-digit job id of this test's own.
fn jid(n: u8) -> String {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{n:02x}{:022x}", stamp % (1 << 88))
}

fn ruby(script: &str, env: &[(&str, &str)]) -> Value {
    ruby_sidekiq(script, env)
}

// ----------------------------------------------------------------------
// Garbage in, jobs out: what Ruby's API reads after a garbage run.
// ----------------------------------------------------------------------

/// Every kind of garbage on a queue and in the `schedule` set, a worker run,
/// then Ruby iterates the whole `dead`, `retry` and `schedule` sets and the
/// queue: no entry makes it raise, and it sees what cacheback left.
#[tokio::test]
async fn after_garbage_ruby_iterates_every_set_and_queue() {
    let sk = Sidekiq::new().await;
    let q = sk.queue.as_str();
    let started = now_secs() - 1.0;

    // Not jobs: buried, wrapped in a job carrying them.
    let not_jobs = [
        format!(r#"["x",1,2,"{q}"]"#),
        "12345.678".to_owned(),
        "null".to_owned(),
        format!(r#""str {q}""#),
        format!(r#"{{"queue":"{q}","args":[]}}"#),
        format!("{{ not json {q}"),
    ];
    for raw in &not_jobs {
        sk.push_raw(raw).await;
    }
    // Jobs Ruby would run or retry.
    let fail = sk.fail();
    let good = sk.good();
    let job = |jid: &str, args: Value, retry: Value| {
        json!({"class": REFRESH_CLASS, "args": args, "jid": jid, "queue": q, "retry": retry,
               "created_at": now_secs(), "enqueued_at": now_secs()})
    };
    let (string_args, hash_args, null_args, retry_string, retry_float) =
        (jid(1), jid(2), jid(3), jid(4), jid(5));
    let no_jid = json!({"class": REFRESH_CLASS, "args": [fail], "queue": q, "retry": true,
                            "enqueued_at": now_secs(), "tags": ["kept"]});
    let runs = json!({"class": REFRESH_CLASS, "args": [good], "queue": q});
    for entry in [
        job(&string_args, json!("just a string"), json!(true)),
        job(&hash_args, good.clone(), json!(true)),
        job(&null_args, Value::Null, json!("2")),
        job(&retry_string, json!([fail]), json!("2")),
        job(&retry_float, json!([fail]), json!(2.0)),
        no_jid,
        runs,
    ] {
        sk.push_raw(&entry.to_string()).await;
    }
    // Garbage due in `schedule`; a job scheduled in an hour stays there.
    let scheduled_garbage = format!(r#"["scheduled garbage","{q}"]"#);
    let later = jid(6);
    let scheduled = job(&later, json!([good]), json!(true)).to_string();
    let () = sk.redis.clone().zadd("schedule", &scheduled_garbage, 1.0).await.unwrap();
    let () = sk.redis.clone().zadd("schedule", &scheduled, now_secs() + 3600.0).await.unwrap();

    let report = sk.worker.drain().await.unwrap();
    assert_eq!((report.processed, report.failed), (13, 12));
    sk.worker.enqueue_due().await.unwrap();
    assert!(sk.fx.empty().raw_get(&foo()).await.unwrap().is_some(), "the job without jid/created_at ran");

    // Rust's view: what is not a job is in `dead` as a job carrying it.
    let dead: Vec<(String, f64)> = sk.redis.clone().zrange_withscores("dead", 0, -1).await.unwrap();
    let wrappers: Vec<Message> = dead
        .iter()
        .filter_map(|(raw, _)| serde_json::from_str::<Message>(raw).ok())
        .filter(|m| m.class == INVALID_JOB_CLASS && m.failed_at.is_some_and(|at| at.as_secs_f64() >= started))
        .collect();
    for raw in not_jobs.iter().chain([&scheduled_garbage]) {
        let wrapper = wrappers
            .iter()
            .find(|m| m.args.as_slice() == [Value::String(raw.clone())])
            .unwrap_or_else(|| panic!("{raw} is not in the dead set as a job"));
        assert_eq!(wrapper.error_class.as_deref(), Some(INVALID_JOB_CLASS));
        assert!(wrapper.error_message.as_deref().unwrap().starts_with("not a Sidekiq job: "), "{wrapper:?}");
        assert_eq!(wrapper.retry, json!(false));
    }
    assert!(dead.iter().all(|(raw, _)| !not_jobs.contains(raw)), "nothing is buried as it was");

    // Jobs with args of the wrong shape fail naming what is wrong, and retry.
    let (class, text) = sk.failure(&string_args).await;
    assert_eq!(class, "ArgumentError");
    assert!(text.ends_with("(Job args must be an Array, not String)"), "{text}");
    let (class, text) = sk.failure(&hash_args).await;
    assert_eq!(class, "ArgumentError");
    let given = format!("wrong number of arguments (given {}, expected 1)", good.as_object().unwrap().len());
    assert!(text.starts_with(&given), "as Ruby's perform(*hash): {text}");
    assert!(text.ends_with("(Job args must be an Array, not Hash)"), "{text}");
    let (_, text) = sk.failure(&null_args).await;
    assert!(text.starts_with("wrong number of arguments (given 0, expected 1)"), "{text}");
    assert!(text.ends_with("not NilClass)"), "{text}");
    assert_eq!(sk.entry("retry", &string_args).await.unwrap().0["args"], "just a string", "kept as it was");
    // `retry` as a string or a float: Ruby's default 25 retries, the field kept.
    for (jid, retry) in [(&retry_string, json!("2")), (&retry_float, json!(2.0))] {
        let (entry, _) = sk.entry("retry", jid).await.unwrap();
        assert_eq!((entry["retry"].clone(), entry["retry_count"].clone()), (retry, json!(0)));
        assert_eq!(entry["error_class"], "Cacheback::FetchError");
    }
    // The job without jid and created_at got both, and kept its other fields.
    let retried: Vec<Value> = sk.in_set("retry").await.into_iter().map(|(v, _)| v).collect();
    let given =
        retried.iter().find(|v| v["tags"] == json!(["kept"])).expect("the job without jid is retried");
    assert_eq!(given["jid"].as_str().unwrap().len(), 24);
    assert_eq!(given["created_at"], given["enqueued_at"]);
    assert_eq!(retried.len(), 6);

    // The retries go back onto the queue, as cacheback writes them there.
    let queued = sk.requeue_retries(6).await;
    assert!(queued.iter().all(|j| j["enqueued_at"].as_f64().unwrap() >= started));

    // Ruby's view.
    let garbage: Vec<&String> = not_jobs.iter().chain([&scheduled_garbage]).collect();
    let seen = ruby(
        "q = ENV['QUEUE']; garbage = JSON.parse(ENV['GARBAGE']); started = ENV['STARTED'].to_f\n\
         show = ->(j) { {klass: j.klass, display_class: j.display_class, display_args: j.display_args, args: j.args,\n\
                         jid: j.jid, queue: j.queue, created_at: j.created_at.to_f, enqueued_at: j.enqueued_at&.to_f,\n\
                         latency: j.latency, error_class: j['error_class'], error_message: j['error_message'],\n\
                         retry: j['retry'], retry_count: j['retry_count']} }\n\
         dead = []; Sidekiq::DeadSet.new.each { |j| dead << show.(j).merge(at: j.at.to_f) if j.klass == 'Cacheback::InvalidJob' && garbage.include?(j.args[0]) && j['failed_at'] >= started }\n\
         retries = []; Sidekiq::RetrySet.new.each { |j| retries << show.(j) if j.queue == q }\n\
         scheduled = []; Sidekiq::ScheduledSet.new.each { |j| scheduled << show.(j) if j.queue == q }\n\
         queued = Sidekiq::Queue.new(q).map { |j| show.(j) }\n\
         puts 'RESULT ' + JSON.generate({dead: dead, retries: retries, scheduled: scheduled, queued: queued,\n\
                                         latency: Sidekiq::Queue.new(q).latency})",
        &[
            ("QUEUE", q),
            ("GARBAGE", &serde_json::to_string(&garbage).unwrap()),
            ("STARTED", &started.to_string()),
        ],
    );
    let dead = seen["dead"].as_array().unwrap();
    let mut buried: Vec<&str> = dead.iter().map(|j| j["args"][0].as_str().unwrap()).collect();
    buried.sort_unstable();
    buried.dedup();
    assert_eq!(buried.len(), garbage.len(), "Ruby sees every wrapped entry: {dead:?}");
    for entry in dead {
        assert_eq!(entry["display_class"], INVALID_JOB_CLASS);
        assert_eq!(entry["error_class"], INVALID_JOB_CLASS);
        assert!(entry["error_message"].as_str().unwrap().starts_with("not a Sidekiq job: "));
        assert!((entry["at"].as_f64().unwrap() - now_secs()).abs() < 60.0, "scored in seconds: {entry}");
        assert!((entry["created_at"].as_f64().unwrap() - now_secs()).abs() < 60.0, "{entry}");
    }
    assert_eq!(seen["retries"], json!([]), "all moved back onto the queue");
    let in_schedule = seen["scheduled"].as_array().unwrap();
    assert_eq!(in_schedule.len(), 1);
    assert_eq!(in_schedule[0]["jid"], later.as_str());
    let queued = seen["queued"].as_array().unwrap();
    assert_eq!(queued.len(), 6, "{queued:?}");
    let by_jid = |jid: &str| queued.iter().find(|j| j["jid"] == jid).unwrap();
    assert_eq!(by_jid(&string_args)["display_args"], "just a string");
    assert_eq!(by_jid(&string_args)["retry_count"], 0);
    assert_eq!(by_jid(&retry_float)["retry"], 2.0);
    for entry in queued {
        let latency = entry["latency"].as_f64().unwrap();
        assert!((0.0..60.0).contains(&latency), "latency in seconds: {entry}");
        assert!(entry["error_message"].is_string(), "{entry}");
    }
    let latency = seen["latency"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&latency), "{latency}");

    let () = sk.redis.clone().zrem("schedule", &scheduled).await.unwrap();
    sk.clean_up().await;
}

/// `retry: false` discards, and `dead: false` discards what would be buried,
/// as Ruby's `JobRetry`; a `retry_for` retries by time, whatever the count.
#[tokio::test]
async fn retry_fields_are_read_as_ruby_reads_them() {
    let sk = Sidekiq::new().await;
    let q = sk.queue.as_str();
    let fail = sk.fail();
    let base = |jid: &str| json!({"class": REFRESH_CLASS, "args": [fail], "jid": jid, "queue": q, "created_at": now_secs()});
    let [off, undead, window_ms, window_s, open_window] = [jid(1), jid(2), jid(3), jid(4), jid(5)];
    let mut jobs = Vec::new();
    let mut job = base(&off);
    job["retry"] = json!(false);
    jobs.push(job);
    let mut job = base(&undead);
    job["retry"] = json!(0);
    job["dead"] = json!(false);
    jobs.push(job);
    // retry_for 1 h, first failure 2 h ago: exhausted, in either form of time.
    let mut job = base(&window_ms);
    job["created_at"] = json!(now_ms() - 7_300_000);
    job["failed_at"] = json!(now_ms() - 7_200_000);
    job["retry_count"] = json!(3);
    job["retry_for"] = json!(3600);
    jobs.push(job);
    let mut job = base(&window_s);
    job["failed_at"] = json!(now_secs() - 7200.0);
    job["retry_count"] = json!(3);
    job["retry_for"] = json!(3600);
    jobs.push(job);
    // retry_for 1 h, first failure 10 s ago: retried, though `retry` is 0.
    let mut job = base(&open_window);
    job["created_at"] = json!(now_ms() - 10_000);
    job["failed_at"] = json!(now_ms() - 10_000);
    job["retry"] = json!(0);
    job["retry_count"] = json!(0);
    job["retry_for"] = json!(3600);
    jobs.push(job);
    for job in &jobs {
        sk.push_raw(&job.to_string()).await;
    }
    let report = sk.worker.drain().await.unwrap();
    assert_eq!((report.processed, report.failed), (5, 5));
    for gone in [&off, &undead] {
        assert!(sk.entry("retry", gone).await.is_none() && sk.entry("dead", gone).await.is_none(), "{gone}");
    }
    for dead in [&window_ms, &window_s] {
        let (entry, _) = sk.entry("dead", dead).await.unwrap_or_else(|| panic!("{dead} is not dead"));
        assert_eq!(entry["retry_count"], 4);
    }
    let (entry, _) = sk.entry("dead", &window_ms).await.unwrap();
    assert!(entry["retried_at"].is_i64(), "a millisecond job gets millisecond times: {entry}");
    let (entry, _) = sk.entry("dead", &window_s).await.unwrap();
    assert!(entry["retried_at"].is_f64(), "{entry}");
    let (entry, _) = sk.entry("retry", &open_window).await.expect("retried within its retry_for");
    assert_eq!(entry["retry_count"], 1);
    sk.clean_up().await;
}

// ----------------------------------------------------------------------
// Sidekiq 8: times in integer epoch milliseconds.
// ----------------------------------------------------------------------

/// A hand-written Sidekiq 8 job (`created_at` etc. in integer epoch
/// milliseconds, per its `Changes.md`) fails, retries and dies keeping its
/// milliseconds; backoff, retry scores and the dead set's trimming are in
/// seconds, as in every Sidekiq.
#[tokio::test]
async fn sidekiq_8_jobs_keep_milliseconds_through_retry_and_death() {
    let sk = Sidekiq::new().await;
    let id = jid(8);
    let created = now_ms() - 3000;
    let enqueued = now_ms() - 2000;
    let raw = json!({"class": REFRESH_CLASS, "args": [sk.fail()], "jid": id, "queue": sk.queue,
                     "retry": 1, "created_at": created, "enqueued_at": enqueued,
                     "tags": ["sidekiq-8"]});
    let msg: Message = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(msg.timestamps(), Timestamps::Milliseconds);
    assert!(
        (1.9..10.0).contains(&msg.latency()),
        "latency of a millisecond job in seconds: {}",
        msg.latency()
    );
    sk.push_raw(&raw.to_string()).await;

    assert_eq!(sk.worker.drain().await.unwrap().failed, 1);
    let (entry, score) = sk.entry("retry", &id).await.expect("retried");
    assert_eq!(entry["created_at"], created, "kept as it came");
    assert_eq!(entry["enqueued_at"], enqueued);
    assert_eq!(entry["tags"], json!(["sidekiq-8"]));
    let failed_at = entry["failed_at"].as_i64().expect("failed_at in integer milliseconds");
    assert!((failed_at - now_ms()).abs() < 60_000, "{failed_at}");
    #[allow(clippy::cast_precision_loss)]
    let backoff = score - failed_at as f64 / 1000.0;
    assert!(
        (15.0..=25.0).contains(&backoff),
        "the retry is scored in seconds, Sidekiq's backoff later: {backoff}"
    );

    let queued = sk.requeue_retries(1).await;
    let again = queued.iter().find(|j| j["jid"] == id.as_str()).unwrap();
    let enqueued_again = again["enqueued_at"].as_i64().expect("re-pushed with enqueued_at in milliseconds");
    assert!((enqueued_again - now_ms()).abs() < 60_000);
    assert_eq!((again["created_at"].as_i64(), again["failed_at"].as_i64()), (Some(created), Some(failed_at)));
    let msg: Message = serde_json::from_value(again.clone()).unwrap();
    assert!((0.0..60.0).contains(&msg.latency()));

    assert_eq!(sk.worker.drain().await.unwrap().failed, 1);
    assert!(sk.entry("retry", &id).await.is_none());
    let (entry, score) = sk.entry("dead", &id).await.expect("dead after its one retry");
    assert!((score - now_secs()).abs() < 60.0, "the dead set is scored in seconds: {score}");
    assert_eq!(entry["retry_count"], 1);
    assert!(entry["retried_at"].as_i64().is_some_and(|at| (at - now_ms()).abs() < 60_000), "{entry}");
    assert_eq!(entry["failed_at"], failed_at);
    assert_eq!(entry["created_at"], created);

    // The dead set's trimming (six months, by score) keeps it: burying
    // another job trims again.
    sk.push_raw("null").await;
    sk.worker.drain().await.unwrap();
    assert!(sk.entry("dead", &id).await.is_some(), "not trimmed");
}

/// A Sidekiq 8 job pushed the way Sidekiq 8's client pushes it runs, as one
/// with float seconds does.
#[tokio::test]
async fn sidekiq_8_jobs_run() {
    let sk = Sidekiq::new().await;
    let raw = json!({"class": REFRESH_CLASS, "args": [sk.good()], "jid": jid(9),
                     "queue": sk.queue, "retry": true, "created_at": now_ms(), "enqueued_at": now_ms()});
    sk.push_raw(&raw.to_string()).await;
    let report = sk.worker.drain().await.unwrap();
    assert_eq!((report.processed, report.failed), (1, 0));
    assert!(sk.fx.empty().raw_get(&foo()).await.unwrap().is_some());
}

/// `timestamps: milliseconds` makes new jobs Sidekiq 8's; the default is
/// float seconds.
#[tokio::test]
async fn the_timestamps_setting_chooses_the_form_of_new_jobs() {
    let sk = Sidekiq::with(|q| q.timestamps(Timestamps::Milliseconds).default_retry(Retry::Count(0))).await;
    sk.fx.cache.job(FailJob).async_refresh(&foo()).await.unwrap();
    let queued = sk.queued().await;
    for field in ["created_at", "enqueued_at"] {
        let at =
            queued[0][field].as_i64().unwrap_or_else(|| panic!("{field} in milliseconds: {}", queued[0]));
        assert!((at - now_ms()).abs() < 60_000, "{field}: {at}");
    }
    assert_eq!(sk.worker.drain().await.unwrap().failed, 1);
    let (dead, _) = sk.in_set("dead").await.remove(0);
    assert!(dead["failed_at"].is_i64(), "{dead}");

    let sk = Sidekiq::new().await;
    sk.fx.dummy().async_refresh(&foo()).await.unwrap();
    assert!(sk.queued().await[0]["created_at"].is_f64());
    sk.clean_up().await;

    let settings = |extra: Value| {
        let mut json = json!({"url": "redis://127.0.0.1"});
        json.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value::<SidekiqSettings>(json)
    };
    assert_eq!(settings(json!({})).unwrap().timestamps, Timestamps::Seconds);
    assert_eq!(settings(json!({"timestamps": "seconds"})).unwrap().timestamps, Timestamps::Seconds);
    assert_eq!(settings(json!({"timestamps": "milliseconds"})).unwrap().timestamps, Timestamps::Milliseconds);
    assert!(settings(json!({"timestamps": "nanoseconds"})).is_err());
    assert_eq!(Stamp::from_secs_f64(1.5, Timestamps::Milliseconds), Stamp::Millis(1500));
}
