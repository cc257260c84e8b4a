//! A job that was never registered (`register_model` forgotten): an engine
//! built from the settings (as its workers are) refreshes it in the caller
//! instead of queueing refreshes no worker can run, and says why once.

mod common;

use cacheback::settings::Settings;
use cacheback::{Dispatch, FetchError, Job};
use common::*;

struct Forgotten;

impl Job for Forgotten {
    type Args = (u32,);
    type Output = u32;
    async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> {
        Ok(n * 2)
    }
}

#[tokio::test]
async fn an_unregistered_job_is_refreshed_in_the_caller_and_logged_once() {
    let cache = Settings::default().builder().await.unwrap().build().unwrap();
    assert!(!cache.is_registered(&Forgotten::name()));
    let (logs, _guard) = Logs::capture();
    let job = cache.job(Forgotten);
    for _ in 0..3 {
        assert_eq!(job.async_refresh(&(21,)).await.unwrap(), Dispatch::RefreshedInline);
    }
    assert_eq!(*job.raw_get(&(21,)).await.unwrap().unwrap().data.unwrap(), 42, "refreshed");
    let text = logs.text();
    assert_eq!(text.matches("is not registered with this engine").count(), 1, "{text}");
    assert!(text.contains("register_model"), "the error names the fix: {text}");
}

/// A registered job is queued as before.
#[tokio::test]
async fn a_registered_job_is_queued() {
    #[derive(Default)]
    struct Known;
    impl Job for Known {
        type Args = ();
        type Output = u32;
        async fn fetch(&self, _: &()) -> Result<u32, FetchError> {
            Ok(1)
        }
    }
    let cache = Settings::default().builder().await.unwrap().register_default::<Known>().build().unwrap();
    assert_eq!(cache.job(Known).async_refresh(&()).await.unwrap(), Dispatch::Enqueued);
}
