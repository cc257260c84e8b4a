//! `#[cacheback(name = "...")]` pins a function's job name, so that moving or
//! renaming the function keeps its cache keys, its queued refreshes and its
//! settings: the name is the job's `Job::name()`, the prefix of its keys, the
//! name the registry knows it by and the job of its queued refreshes.

use std::sync::atomic::{AtomicUsize, Ordering};

use cacheback::function::DecoratedJob;
use cacheback::queue::InProcessQueue;
use cacheback::{Cacheback, Job, cacheback};

/// The name `greet` had before it moved here.
const PINNED: &str = "app::old_module::greet";

static GREETINGS: AtomicUsize = AtomicUsize::new(0);

/// Moved from `app::old_module`, pinned to its former name. A miss returns
/// `""` and queues a refresh.
#[cacheback(name = "app::old_module::greet", fetch_on_miss = false)]
async fn greet(who: String) -> String {
    GREETINGS.fetch_add(1, Ordering::SeqCst);
    format!("hello {who}")
}

/// Not pinned: named after its path.
#[cacheback]
async fn unpinned(who: String) -> String {
    who
}

#[test]
fn the_pinned_name_is_the_jobs_name() {
    assert_eq!(<DecoratedJob<'static, greet::Spec> as Job>::name(), PINNED);
    assert_eq!(<DecoratedJob<'static, unpinned::Spec> as Job>::name(), concat!(module_path!(), "::unpinned"));
}

#[test]
fn the_registry_registers_the_pinned_name() {
    let cache = Cacheback::builder().build().unwrap();
    assert!(cache.is_registered(PINNED));
    assert!(!cache.is_registered(concat!(module_path!(), "::greet")), "not under its path as well");
    assert!(cache.is_registered(concat!(module_path!(), "::unpinned")));
}

#[tokio::test]
async fn keys_and_queued_refreshes_carry_the_pinned_name() {
    let queue = InProcessQueue::builder().manual().build();
    let cache = Cacheback::builder().queue(queue.clone()).build().unwrap();
    cache.install_global();

    let args = ("ann".to_owned(),);
    let key = greet::job().unwrap().key(&args).unwrap();
    assert!(key.starts_with(&format!("{PINNED}:")), "{key}");

    // A miss queues a refresh under the pinned name.
    assert_eq!(greet("ann".into()).await, "");
    let payloads = queue.pending_payloads();
    assert_eq!(payloads.len(), 1);
    assert_eq!(payloads[0].job, PINNED);
    assert_eq!(payloads[0].key, key);
    assert_eq!(GREETINGS.load(Ordering::SeqCst), 0);

    // The worker finds the job by that name and refreshes it.
    assert_eq!(queue.run_pending().await, 1);
    assert_eq!(GREETINGS.load(Ordering::SeqCst), 1);
    assert!(cache.store("default").unwrap().get(&key).await.unwrap().is_some());
    assert_eq!(greet("ann".into()).await, "hello ann");
    assert_eq!(GREETINGS.load(Ordering::SeqCst), 1, "served from the cache");
    assert_eq!(queue.pending(), 0);
}
