//! Cold-miss singleflight: concurrent synchronous refreshes of one key in one
//! process run `fetch` once; the other callers await its result.
//!
//! Hand-rolled (about 40 lines) on `tokio::sync::OnceCell`: the crates that do
//! this are either unmaintained or tie the result type to the map, while here
//! one map serves jobs of every output type. `OnceCell` also gives the
//! property we need when a caller is cancelled: a waiter takes over the fetch.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

use crate::error::Error;

type Outcome = Result<Arc<dyn Any + Send + Sync>, Error>;

#[derive(Default)]
pub(crate) struct SingleFlight {
    calls: Mutex<HashMap<String, Arc<OnceCell<Outcome>>>>,
}

impl SingleFlight {
    fn calls(&self) -> MutexGuard<'_, HashMap<String, Arc<OnceCell<Outcome>>>> {
        // The map holds no invariant a panicking holder could break.
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` for `key` unless a run is in flight, in which case its result is shared.
    pub(crate) async fn run<T, F, Fut>(&self, key: &str, f: F) -> Result<Arc<T>, Error>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<T>, Error>>,
    {
        let cell = self.calls().entry(key.to_owned()).or_default().clone();
        let outcome =
            cell.get_or_init(|| async { f().await.map(|v| v as Arc<dyn Any + Send + Sync>) }).await.clone();
        {
            let mut calls = self.calls();
            if calls.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                calls.remove(key);
            }
        }
        outcome?.downcast::<T>().map_err(|_| Error::Decode {
            key: key.to_owned(),
            type_name: std::any::type_name::<T>(),
            message: "a concurrent fetch of this key returned another type: two jobs share the key"
                .to_owned(),
        })
    }
}
