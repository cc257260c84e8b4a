//! The README's quickstart, runnable: `cargo run -p cacheback --example quickstart`.
//!
//! Prints:
//!
//! ```text
//! first read: None
//! right after: HIT None
//! once refreshed: Some(["tweet by bob"])
//! after set and invalidate: Some(["manual"])
//! ```

use std::time::Duration;

use cacheback::{Cacheback, FetchError, Job};

#[derive(Default)]
struct UserTweets;

impl Job for UserTweets {
    type Args = (String,); // positional args: a tuple; named: a struct
    type Output = Vec<String>;

    async fn fetch(&self, (user,): &(String,)) -> Result<Vec<String>, FetchError> {
        Ok(vec![format!("tweet by {user}")]) // the slow read
    }

    // Every policy is a method with the original's default; override what you need.
    fn lifetime(&self) -> Duration {
        Duration::from_secs(20 * 60)
    }
    fn fetch_on_miss(&self) -> bool {
        false // a miss returns None and refreshes in the background
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> cacheback::Result<()> {
    let cache = Cacheback::builder() // in-memory store, in-process queue
        .register_default::<UserTweets>() // jobs a worker may refresh
        .build()?;
    let tweets = cache.job(UserTweets);
    let bob = ("bob".to_owned(),);

    let first = tweets.get(&bob).await?; // None: a refresh was queued
    println!("first read: {first:?}");
    let found = tweets.lookup(&bob).await?; // until it lands: the placeholder, a HIT with no value
    println!("right after: {} {:?}", found.status, found.value);
    tokio::time::sleep(Duration::from_millis(50)).await; // the in-process queue refreshes meanwhile
    println!("once refreshed: {:?}", tweets.get(&bob).await?);

    tweets.set(&bob, vec!["manual".into()]).await?;
    tweets.invalidate(&bob).await?; // queues a refresh; reads return "manual" until it lands
    println!("after set and invalidate: {:?}", tweets.get(&bob).await?);
    Ok(())
}
