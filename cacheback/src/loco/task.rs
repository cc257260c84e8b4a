//! The operator's loco task, `cargo loco task cacheback command:<command> ...`
//! (re-exported as [`crate::loco::CachebackTask`]).

use async_trait::async_trait;
use loco_rs::app::AppContext;
use loco_rs::task::{Task, TaskInfo, Vars};

use super::initializer::{CachebackInitializer, settings};
use super::overview::{QueueOverview, queue_overview};
use crate::engine::Cacheback;
use crate::error::Error;
use crate::queue::sidekiq::SidekiqQueue;
use crate::settings::{QueueChoice, Settings};

/// The usage, as `cargo loco task` lists it.
const USAGE: &str = "operate the cache and its queue: command:stats | command:invalidate job:<name> \
                     args:<JSON> [state:<JSON>] | command:delete job:<name> args:<JSON> [state:<JSON>] | \
                     command:invalidate-tag tag:<tag> | command:clear alias:<alias> | command:retry-dead [queue:<name>]";

/// The loco task `cacheback`, for operators: the cache's and the queue's
/// numbers, and the operations on items, stores and dead refreshes.
///
/// loco passes a task its arguments as `key:value` pairs (split at the first
/// `:`, so job names such as `app::jobs::Feed` need no quoting beyond the
/// shell's):
///
/// | command | does |
/// |---|---|
/// | `cargo loco task cacheback command:stats` | per store alias: its item count where the store can tell (memory: its entries; Redis: a `SCAN` of its `<prefix>item:*` keys); per Sidekiq queue: jobs queued and the oldest's latency; the `retry` and `dead` sets' sizes (how many dead are cacheback's); live worker processes |
/// | `cargo loco task cacheback command:invalidate job:<name> 'args:<JSON>' ['state:<JSON>']` | [`Cacheback::invalidate_by_name`]: the item goes stale and a refresh is queued |
/// | `cargo loco task cacheback command:delete job:<name> 'args:<JSON>' ['state:<JSON>']` | [`Cacheback::delete_by_name`]: the item leaves its store |
/// | `cargo loco task cacheback command:invalidate-tag tag:<tag>` | [`Cacheback::invalidate_tag`]: every item carrying the tag goes stale (one write per store) |
/// | `cargo loco task cacheback command:clear alias:<alias>` | [`CacheStore::clear`](crate::store::CacheStore::clear): every item of that store, and only its own keys (never `FLUSHDB`) |
/// | `cargo loco task cacheback command:retry-dead [queue:<name>]` | [`SidekiqQueue::retry_dead`]: the dead set's refreshes (of that queue only, if given) go back onto their queues; with `task_queue: loco`, cacheback's failed jobs on loco's PostgreSQL or SQLite queue go back in line |
///
/// `args` is the job's arguments as JSON, as in a refresh payload (`["bob"]`
/// for `(String,)`; absent: `null`, the arguments of a job taking `()`).
/// `state` is the job's [`init_state`](crate::Job::init_state) for its
/// factory (default `null`). An unknown job, alias or command fails the task
/// (a non-zero exit) with a message saying what is known.
///
/// loco runs a task without the app's initializers, so the task builds the
/// engine itself with the app's [`CachebackInitializer`]:
///
/// ```
/// use cacheback::loco::{CachebackInitializer, CachebackTask};
/// # fn register(builder: cacheback::Builder, _: &loco_rs::app::AppContext) -> cacheback::Builder { builder }
/// // impl Hooks for App { ...
/// fn register_tasks(tasks: &mut loco_rs::task::Tasks) {
///     tasks.register(CachebackTask::new(CachebackInitializer::new(register)));
/// }
/// ```
///
/// With the in-process queue, refreshes run in the process that queues them:
/// an `invalidate` run by the task refreshes in the task's own process, if it
/// lives long enough, and a memory store is the task process's own (empty)
/// one. The commands are meant for shared stores and the Sidekiq queue.
#[derive(Debug, Clone)]
pub struct CachebackTask {
    initializer: CachebackInitializer,
}

impl CachebackTask {
    /// The task, building the engine (jobs included) with `initializer`.
    pub fn new(initializer: CachebackInitializer) -> Self {
        Self { initializer }
    }
}

fn fail(message: impl std::fmt::Display) -> loco_rs::Error {
    loco_rs::Error::Message(format!("cacheback: {message}"))
}

/// The JSON value of argument `name`; `null` if absent.
fn json_arg(vars: &Vars, name: &str) -> loco_rs::Result<serde_json::Value> {
    vars.cli.get(name).map_or(Ok(serde_json::Value::Null), |raw| {
        serde_json::from_str(raw).map_err(|e| fail(format!("`{name}:{raw}` is not JSON: {e}")))
    })
}

fn required<'v>(vars: &'v Vars, name: &str, command: &str) -> loco_rs::Result<&'v str> {
    vars.cli
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| fail(format!("`command:{command}` needs `{name}:<..>`; usage: {USAGE}")))
}

#[async_trait]
impl Task for CachebackTask {
    fn task(&self) -> TaskInfo {
        TaskInfo { name: "cacheback".to_owned(), detail: USAGE.to_owned() }
    }

    async fn run(&self, ctx: &AppContext, vars: &Vars) -> loco_rs::Result<()> {
        let Some(command) = vars.cli.get("command") else {
            return Err(fail(format!("no `command:<..>`; usage: {USAGE}")));
        };
        let known = ["stats", "invalidate", "delete", "invalidate-tag", "clear", "retry-dead"];
        if !known.contains(&command.as_str()) {
            return Err(fail(format!(
                "unknown command `{command}` (known: {}); usage: {USAGE}",
                known.join(", ")
            )));
        }
        let settings = settings(ctx).map_err(fail)?;
        let cache = self.initializer.install(ctx).await.map_err(fail)?;
        match command.as_str() {
            "stats" => stats(ctx, &cache, &settings).await,
            "invalidate" | "delete" => {
                let job = required(vars, "job", command)?;
                let (state, args) = (json_arg(vars, "state")?, json_arg(vars, "args")?);
                let item = if command == "invalidate" {
                    cache.invalidate_by_name(job, &state, &args).await
                } else {
                    cache.delete_by_name(job, &state, &args).await
                }
                .map_err(|e| match e {
                    Error::UnknownJob { .. } => {
                        fail(format!("{e} (registered: {})", cache.registered_jobs().join(", ")))
                    }
                    e => fail(e),
                })?;
                let done = match (command.as_str(), item.was_cached) {
                    (_, false) => "not cached (nothing to do)",
                    ("invalidate", true) => "invalidated (refresh queued)",
                    _ => "deleted",
                };
                println!("{job} {args}: key `{}` {done}", item.key);
                Ok(())
            }
            "invalidate-tag" => {
                let tag = required(vars, "tag", command)?;
                cache.invalidate_tag(tag).await.map_err(fail)?;
                println!("tag `{tag}`: invalidated (its items are stale)");
                Ok(())
            }
            "clear" => {
                let alias = required(vars, "alias", command)?;
                let store = cache.store(alias).map_err(fail)?;
                store.clear().await.map_err(|source| {
                    fail(Error::StoreAdmin { alias: alias.to_owned(), op: "clear", source })
                })?;
                println!("cache {alias}: cleared");
                Ok(())
            }
            _ if matches!(settings.queue_choice(), Ok(QueueChoice::Loco(_))) => {
                retry_failed_on_loco(ctx).await
            }
            _ => {
                let queue = sidekiq(&settings).await?;
                let report =
                    queue.retry_dead(vars.cli.get("queue").map(String::as_str)).await.map_err(fail)?;
                println!(
                    "retry-dead: {} refreshes back on their queues, {} other dead jobs left",
                    report.retried, report.skipped
                );
                Ok(())
            }
        }
    }
}

/// The Sidekiq queue of `settings`, or why there is none.
async fn sidekiq(settings: &Settings) -> loco_rs::Result<SidekiqQueue> {
    match settings.queue_choice().map_err(fail)? {
        QueueChoice::Sidekiq(sidekiq) => sidekiq.queue().await.map_err(fail),
        _ => Err(fail(
            "`initializers.cacheback.task_queue` is not `sidekiq`: the in-process queue has no dead set",
        )),
    }
}

/// `retry-dead` on loco's queue: its failed refreshes go back in line.
#[cfg(feature = "sea-orm")]
async fn retry_failed_on_loco(ctx: &AppContext) -> loco_rs::Result<()> {
    let retried = super::queue::retry_failed_refreshes(ctx).await.map_err(fail)?;
    println!("retry-dead: {retried} failed refreshes back on loco's queue");
    Ok(())
}

#[cfg(not(feature = "sea-orm"))]
async fn retry_failed_on_loco(_: &AppContext) -> loco_rs::Result<()> {
    Err(fail("`retry-dead` on loco's queue needs cacheback's feature `sea-orm` (it reads the queue's table)"))
}

/// `stats` of loco's queue: cacheback's refreshes in its table.
#[cfg(feature = "sea-orm")]
async fn print_loco_queue(ctx: &AppContext) -> loco_rs::Result<()> {
    match super::queue::loco_queue_stats(ctx).await.map_err(fail)? {
        Some(stats) => println!(
            "queue loco ({}): {} queued, {} processing, {} failed cacheback refreshes",
            stats.table, stats.queued, stats.processing, stats.failed
        ),
        None => println!("queue loco: {} (its jobs are not counted here)", describe_loco_queue(ctx)),
    }
    Ok(())
}

#[cfg(not(feature = "sea-orm"))]
async fn print_loco_queue(ctx: &AppContext) -> loco_rs::Result<()> {
    println!("queue loco: {} (counts need cacheback's feature `sea-orm`)", describe_loco_queue(ctx));
    Ok(())
}

fn describe_loco_queue(ctx: &AppContext) -> String {
    ctx.queue_provider.as_ref().map_or_else(|| "no queue provider".to_owned(), |queue| queue.describe())
}

async fn stats(ctx: &AppContext, cache: &Cacheback, settings: &Settings) -> loco_rs::Result<()> {
    for alias in cache.aliases() {
        let store = cache.store(&alias).map_err(fail)?;
        let count = store.item_count().await.map_err(|source| {
            fail(Error::StoreAdmin { alias: alias.clone(), op: "count the items of", source })
        })?;
        let default = if alias == cache.default_alias() { " (default)" } else { "" };
        match count {
            Some(n) => println!("cache {alias}{default}: {n} items"),
            None => println!("cache {alias}{default}: item count unknown"),
        }
    }
    println!("jobs: {}", cache.registered_jobs().join(", "));
    println!(
        "metrics: per process, through the metrics facade (cacheback_* series; see docs/observability.md)"
    );
    let stats = match queue_overview(settings).await.map_err(fail)? {
        QueueOverview::Sidekiq(stats) => stats,
        QueueOverview::Loco => return print_loco_queue(ctx).await,
        QueueOverview::InProcess { .. } => {
            println!(
                "queue in_process: refreshes run in the process that queues them (none pending in this one)"
            );
            return Ok(());
        }
    };
    for queue in &stats.queues {
        println!("queue {}: {} queued, latency {:.3}s", queue.queue, queue.size, queue.latency);
    }
    println!("retry: {}", stats.retry);
    println!("dead: {} ({} cacheback refreshes)", stats.dead, stats.dead_refreshes);
    println!("workers: {} live ({} registered)", stats.live_workers, stats.workers);
    Ok(())
}
