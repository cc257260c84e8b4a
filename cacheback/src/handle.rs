//! [`JobHandle`]: a job bound to an engine, with the whole job API.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tracing::{debug, error, warn};

use crate::engine::Cacheback;
use crate::error::{Error, StoreError};
use crate::item::{self, CachedItem};
use crate::job::{CacheStatus, Call, Job};
use crate::local::LocalCache;
use crate::payload::{RefreshOutcome, RefreshPayload};
use crate::store::{CacheStore, ClaimMode};

/// The answer of [`JobHandle::lookup`]: the value `get` returns, and how it was found.
///
/// ```
/// use cacheback::{CacheStatus, Lookup};
/// let found: Lookup<u32> = Lookup { value: None, status: CacheStatus::Miss, sync_fetch: Some(false) };
/// assert!(found.value.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup<T> {
    /// The value, after [`Job::process_result`].
    pub value: Option<Arc<T>>,
    /// How the item was found.
    pub status: CacheStatus,
    /// `Some(true)` if this call fetched, `Some(false)` if it queued a refresh,
    /// `None` on a HIT.
    pub sync_fetch: Option<bool>,
}

/// What [`JobHandle::async_refresh`] did.
///
/// ```
/// use cacheback::Dispatch;
/// assert_ne!(Dispatch::Enqueued, Dispatch::Failed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// The refresh was queued.
    Enqueued,
    /// The queue failed; the refresh ran synchronously instead.
    RefreshedInline,
    /// The queue failed and so did the synchronous refresh (both logged).
    Failed,
}

/// A [`Job`] bound to a [`Cacheback`] engine (see [`Cacheback::job`]).
///
/// ```
/// use cacheback::{Cacheback, CacheStatus, FetchError, Job};
///
/// struct Double;
/// impl Job for Double {
///     type Args = (u32,);
///     type Output = u32;
///     async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> { Ok(n * 2) }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = Cacheback::builder().build().unwrap();
/// let double = cache.job(Double);
/// assert_eq!(double.lookup(&(2,)).await.unwrap().status, CacheStatus::Miss);
/// let hit = double.lookup(&(2,)).await.unwrap();
/// assert_eq!((*hit.value.unwrap(), hit.status), (4, CacheStatus::Hit));
/// double.set(&(2,), 5).await.unwrap();
/// assert_eq!(*double.get(&(2,)).await.unwrap().unwrap(), 5);
/// # });
/// ```
pub struct JobHandle<J> {
    cache: Cacheback,
    job: J,
}

impl<J: std::fmt::Debug> std::fmt::Debug for JobHandle<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("job", &self.job).finish_non_exhaustive()
    }
}

impl<J: Clone> Clone for JobHandle<J> {
    fn clone(&self) -> Self {
        Self { cache: self.cache.clone(), job: self.job.clone() }
    }
}

impl Cacheback {
    /// Binds `job` to this engine; the handle has the whole job API.
    ///
    /// ```
    /// # use cacheback::{Cacheback, FetchError, Job};
    /// # struct Answer;
    /// # impl Job for Answer {
    /// #     type Args = ();
    /// #     type Output = u32;
    /// #     async fn fetch(&self, _: &()) -> Result<u32, FetchError> { Ok(42) }
    /// # }
    /// let cache = Cacheback::builder().build().unwrap();
    /// let answer = cache.job(Answer);
    /// assert!(answer.key(&()).unwrap().ends_with("Answer"));
    /// ```
    pub fn job<J: Job>(&self, job: J) -> JobHandle<J> {
        JobHandle { cache: self.clone(), job }
    }
}

impl<J: Job> JobHandle<J> {
    /// The job.
    pub fn job(&self) -> &J {
        &self.job
    }

    /// The engine.
    pub fn cache(&self) -> &Cacheback {
        &self.cache
    }

    /// Returns the data for `args`, from the cache when possible.
    ///
    /// `None` is the job's [`empty`](Job::empty) value, returned on a MISS
    /// whose refresh was queued.
    pub async fn get(&self, args: &J::Args) -> Result<Option<Arc<J::Output>>, Error> {
        Ok(self.lookup(args).await?.value)
    }

    /// [`get`](Self::get), also telling how the item was found.
    ///
    /// * MISS: fetch synchronously, or store [`empty`](Job::empty) for the
    ///   refresh timeout, queue a refresh and return empty.
    /// * STALE: past `fetch_on_stale_threshold`, fetch synchronously; otherwise
    ///   re-store the stale data for the refresh timeout (so a failed refresh
    ///   cannot leave it in limbo), queue a refresh and return the stale data.
    /// * HIT: return the data.
    ///
    /// Only the one reader that wins the key's refresh claim queues a refresh;
    /// concurrent synchronous fetches of one key share one `fetch`.
    pub async fn lookup(&self, raw_args: &J::Args) -> Result<Lookup<J::Output>, Error> {
        let args = self.job.prepare_args(raw_args);
        let slot = self.slot(&args)?;
        let (key, name) = (&slot.key, J::name());
        let call = Call { args: raw_args };

        let item = match self.read_local_first(&slot).await {
            Ok(item) => item,
            // A deploy changed the output type: the old item is a MISS, overwritten below.
            Err(err @ Error::Decode { .. }) => {
                warn!(target: "cacheback", error = %err, "Undecodable cached item treated as a MISS");
                None
            }
            // The store is down: serve the read without it.
            Err(err) => return self.uncached(err, &slot, &args, &call).await,
        };

        let Some(item) = item else {
            if self.job.should_missing_item_be_fetched_synchronously(&args) {
                debug!(target: "cacheback", "Job {name} with key '{key}' - cache MISS - running synchronous refresh");
                let data = self.refresh_once(&slot, &args).await?;
                return Ok(self.finish(Some(data), &call, CacheStatus::Miss, Some(true)));
            }
            debug!(
                target: "cacheback",
                "Job {name} with key '{key}' - cache MISS - triggering async refresh and returning empty result"
            );
            // Store the empty result until the refresh lands, so that readers in
            // the meantime do not queue refreshes of their own.
            let empty = self.job.empty().map(Arc::new);
            if self.claim(&slot, &args, ClaimMode::IfFree).await {
                let timeout = self.job.timeout(self.cache.now(), &args);
                self.store_item(&slot, timeout, empty.clone()).await?;
                self.dispatch(&slot, &args).await;
            }
            return Ok(self.finish(empty, &call, CacheStatus::Miss, Some(false)));
        };

        let delta = self.cache.now() - item.expiry;
        if delta <= 0.0 {
            debug!(target: "cacheback", "Job {name} with key '{key}' - cache HIT");
            return Ok(self.finish(item.data, &call, CacheStatus::Hit, None));
        }

        if self.job.should_stale_item_be_fetched_synchronously(Duration::from_secs_f64(delta), &args) {
            debug!(target: "cacheback", "Job {name} with key '{key}' - STALE cache hit - running synchronous refresh");
            let data = self.refresh_once(&slot, &args).await?;
            return Ok(self.finish(Some(data), &call, CacheStatus::Stale, Some(true)));
        }

        debug!(
            target: "cacheback",
            "Job {name} with key '{key}' - STALE cache hit - triggering async refresh and returning stale result"
        );
        if self.claim(&slot, &args, ClaimMode::IfFree).await {
            // Re-store the stale data with the timeout as its expiry: no other
            // refresh is queued before it passes, and if this one fails the
            // item goes stale again instead of staying in limbo.
            let timeout = self.job.timeout(self.cache.now(), &args);
            self.store_item(&slot, timeout, item.data.clone()).await?;
            self.dispatch(&slot, &args).await;
        }
        Ok(self.finish(item.data, &call, CacheStatus::Stale, Some(false)))
    }

    /// Marks the cached item for `args` stale and queues a refresh; does
    /// nothing if nothing is cached.
    pub async fn invalidate(&self, raw_args: &J::Args) -> Result<(), Error> {
        let args = self.job.prepare_args(raw_args);
        let slot = self.slot(&args)?;
        let Some(item) = self.read(&slot).await? else {
            return Ok(());
        };
        let timeout = self.job.timeout(self.cache.now(), &args);
        self.store_item(&slot, timeout, item.data).await?;
        // An invalidation is explicit: it queues a refresh even if one is pending.
        self.claim(&slot, &args, ClaimMode::Force).await;
        self.dispatch(&slot, &args).await;
        Ok(())
    }

    /// Removes the cached item for `args`.
    pub async fn delete(&self, raw_args: &J::Args) -> Result<(), Error> {
        let slot = self.slot(&self.job.prepare_args(raw_args))?;
        if let Some(local) = slot.local {
            local.remove(&slot.key);
        }
        slot.store.delete(&slot.key).await.map_err(|e| slot.error("delete", e))
    }

    /// The item cached for `args` as stored (`(expiry, data)`), without
    /// triggering a refresh.
    pub async fn raw_get(&self, raw_args: &J::Args) -> Result<Option<CachedItem<J::Output>>, Error> {
        let slot = self.slot(&self.job.prepare_args(raw_args))?;
        self.read(&slot).await
    }

    /// Caches `data` for `args`, fresh for the job's lifetime.
    pub async fn set(&self, raw_args: &J::Args, data: J::Output) -> Result<(), Error> {
        let args = self.job.prepare_args(raw_args);
        let slot = self.slot(&args)?;
        let expiry = self.job.expiry(self.cache.now(), &args);
        debug!(target: "cacheback", "Setting {} cache with key '{}', expiry '{expiry}'", J::name(), slot.key);
        self.store_item(&slot, expiry, Some(Arc::new(data))).await
    }

    /// [`set`](Self::set) with the data inside the call, as the original's
    /// `set(*args, **kwargs)`: for named arguments (a map or struct) the data is
    /// the field named [`set_data_kwarg`](Job::set_data_kwarg); for positional
    /// arguments (a sequence) it is the last element. A named call of a job
    /// with [`parameter_names`](Job::parameter_names) maps onto them.
    ///
    /// ```
    /// # use cacheback::{Cacheback, FetchError, Job};
    /// # #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// # struct ByUser { user: String }
    /// # struct Tweets;
    /// # impl Job for Tweets {
    /// #     type Args = ByUser;
    /// #     type Output = Vec<String>;
    /// #     async fn fetch(&self, _: &ByUser) -> Result<Vec<String>, FetchError> { Ok(vec![]) }
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let tweets = Cacheback::builder().build().unwrap().job(Tweets);
    /// tweets.set_call(serde_json::json!({"user": "bob", "data": ["hi"]})).await.unwrap();
    /// let args = ByUser { user: "bob".into() };
    /// assert_eq!(tweets.get(&args).await.unwrap().unwrap().as_slice(), ["hi"]);
    /// # });
    /// ```
    pub async fn set_call(&self, call: impl Serialize) -> Result<(), Error> {
        let invalid = |message: String| Error::Call { job: J::name().into_owned(), message };
        let call =
            serde_json::to_value(call).map_err(|e| invalid(format!("the call does not serialize: {e}")))?;
        let (args, data) = match call {
            serde_json::Value::Object(mut fields) => {
                let name = self.job.set_data_kwarg();
                let data = fields.remove(name).ok_or_else(|| {
                    invalid(format!("the named call has no `{name}` field holding the data"))
                })?;
                let names = self.job.parameter_names();
                if names.is_empty() {
                    (serde_json::Value::Object(fields), data)
                } else {
                    let positional = names
                        .iter()
                        .map(|n| fields.remove(*n).ok_or_else(|| invalid(format!("missing argument `{n}`"))))
                        .collect::<Result<Vec<_>, _>>()?;
                    if let Some(extra) = fields.keys().next() {
                        return Err(invalid(format!("unexpected argument `{extra}`")));
                    }
                    (serde_json::Value::Array(positional), data)
                }
            }
            serde_json::Value::Array(mut items) => {
                let data =
                    items.pop().ok_or_else(|| invalid("the positional call is empty: no data".to_owned()))?;
                (serde_json::Value::Array(items), data)
            }
            other => return Err(invalid(format!("expected named or positional arguments, got {other}"))),
        };
        let args: J::Args = serde_json::from_value(args).map_err(|e| invalid(format!("arguments: {e}")))?;
        let data: J::Output = serde_json::from_value(data).map_err(|e| invalid(format!("data: {e}")))?;
        self.set(&args, data).await
    }

    /// Fetches synchronously and caches the result.
    pub async fn refresh(&self, raw_args: &J::Args) -> Result<Arc<J::Output>, Error> {
        let args = self.job.prepare_args(raw_args);
        self.fetch_and_store(&self.slot(&args)?, &args).await
    }

    /// Queues a refresh. If the queue fails, refreshes synchronously; if that
    /// fails too, logs it and carries on.
    pub async fn async_refresh(&self, raw_args: &J::Args) -> Result<Dispatch, Error> {
        let args = self.job.prepare_args(raw_args);
        Ok(self.dispatch(&self.slot(&args)?, &args).await)
    }

    /// The cache key for `args`.
    pub fn key(&self, raw_args: &J::Args) -> Result<String, Error> {
        self.key_of(&self.job.prepare_args(raw_args))
    }

    /// Writes `(expiry, data)` under `key` in the job's store, verifying the
    /// write if the engine is configured to.
    pub async fn store_raw(&self, key: &str, expiry: f64, data: Option<J::Output>) -> Result<(), Error> {
        let slot = self.slot_for(key.to_owned())?;
        self.store_item(&slot, expiry, data.map(Arc::new)).await
    }

    // ------------------------------------------------------------------
    // The worker side.
    // ------------------------------------------------------------------

    /// Runs a queued refresh of prepared `args`: skipped when the item is
    /// already fresh and nobody holds its refresh claim (another refresh or a
    /// `set` got there first).
    pub(crate) async fn refresh_queued(
        &self,
        args: &J::Args,
        queued_key: &str,
    ) -> Result<RefreshOutcome, Error> {
        let slot = self.slot(args)?;
        if slot.key != queued_key {
            warn!(
                target: "cacheback",
                "Job {} refresh queued under key '{queued_key}' recomputes to '{}'; using the latter",
                J::name(),
                slot.key
            );
        }
        if self.is_fresh_and_unclaimed(&slot).await {
            return Ok(RefreshOutcome::SkippedFresh);
        }
        self.fetch_and_store(&slot, args).await?;
        Ok(RefreshOutcome::Refreshed)
    }

    async fn is_fresh_and_unclaimed(&self, slot: &Slot<'_>) -> bool {
        let Ok(Some(item)) = self.read(slot).await else { return false };
        if item.data.is_none() || item.expiry <= self.cache.now() {
            return false;
        }
        matches!(slot.store.is_claimed(&slot.key, self.cache.now()).await, Ok(false))
    }

    // ------------------------------------------------------------------
    // Helpers.
    // ------------------------------------------------------------------

    fn key_of(&self, args: &J::Args) -> Result<String, Error> {
        self.job.key(args).map_err(|e| Error::Key { job: J::name().into_owned(), message: e.to_string() })
    }

    /// Where the item for prepared `args` lives.
    fn slot(&self, args: &J::Args) -> Result<Slot<'_>, Error> {
        self.slot_for(self.key_of(args)?)
    }

    fn slot_for(&self, key: String) -> Result<Slot<'_>, Error> {
        let alias = self.job.cache_alias().unwrap_or(self.cache.default_alias());
        Ok(Slot { alias, store: self.cache.store(alias)?, local: self.cache.local_cache(alias), key })
    }

    fn finish(
        &self,
        result: Option<Arc<J::Output>>,
        call: &Call<'_, J::Args>,
        status: CacheStatus,
        sync_fetch: Option<bool>,
    ) -> Lookup<J::Output> {
        Lookup { value: self.job.process_result(result, call, status, sync_fetch), status, sync_fetch }
    }

    /// The item this process holds a fresh [local copy](crate::LocalCache) of,
    /// or else the store's.
    async fn read_local_first(&self, slot: &Slot<'_>) -> Result<Option<CachedItem<J::Output>>, Error> {
        if let Some(item) = slot.local.and_then(|local| local.get(&slot.key, self.cache.now())) {
            return Ok(Some(item));
        }
        self.read(slot).await
    }

    /// The item as the store holds it (keeping a local copy if it is fresh).
    async fn read(&self, slot: &Slot<'_>) -> Result<Option<CachedItem<J::Output>>, Error> {
        let Some(value) = slot.store.get(&slot.key).await.map_err(|e| slot.error("get", e))? else {
            return Ok(None);
        };
        let item = item::decode(&slot.key, value)?;
        if let Some(local) = slot.local {
            local.put(&slot.key, &item, self.cache.now());
        }
        Ok(Some(item))
    }

    /// The store could not be read (it is down): answer as on a MISS that
    /// cannot be cached, fetching only if the job fetches on a miss.
    async fn uncached(
        &self,
        err: Error,
        slot: &Slot<'_>,
        args: &J::Args,
        call: &Call<'_, J::Args>,
    ) -> Result<Lookup<J::Output>, Error> {
        error!(target: "cacheback", error = %err, "Cache read failed; answering without the cache");
        if !self.job.should_missing_item_be_fetched_synchronously(args) {
            return Ok(self.finish(self.job.empty().map(Arc::new), call, CacheStatus::Miss, Some(false)));
        }
        let data = self.fetch(slot, args).await?;
        Ok(self.finish(Some(data), call, CacheStatus::Miss, Some(true)))
    }

    async fn claim(&self, slot: &Slot<'_>, args: &J::Args, mode: ClaimMode) -> bool {
        let now = self.cache.now();
        match slot.store.claim(&slot.key, now, self.job.timeout(now, args), mode).await {
            Ok(won) => won,
            Err(e) => {
                error!(target: "cacheback", error = %slot.error("claim", e), "Unable to claim the refresh");
                false
            }
        }
    }

    /// Synchronous refresh shared by concurrent callers of one key in this
    /// process. The first caller re-reads the store before fetching, so a
    /// caller arriving just after another flight landed reuses its result.
    async fn refresh_once(&self, slot: &Slot<'_>, args: &J::Args) -> Result<Arc<J::Output>, Error> {
        let flight = format!("{}\u{0}{}", slot.alias, slot.key);
        self.cache
            .flights()
            .run(&flight, || async {
                if let Ok(Some(CachedItem { expiry, data: Some(data) })) = self.read(slot).await
                    && expiry > self.cache.now()
                {
                    return Ok(data);
                }
                self.fetch_and_store(slot, args).await
            })
            .await
    }

    async fn fetch(&self, slot: &Slot<'_>, args: &J::Args) -> Result<Arc<J::Output>, Error> {
        self.job.fetch(args).await.map(Arc::new).map_err(|source| Error::Fetch {
            job: J::name().into_owned(),
            key: slot.key.clone(),
            source: source.into(),
        })
    }

    async fn fetch_and_store(&self, slot: &Slot<'_>, args: &J::Args) -> Result<Arc<J::Output>, Error> {
        let data = self.fetch(slot, args).await?;
        let expiry = self.job.expiry(self.cache.now(), args);
        self.store_item(slot, expiry, Some(Arc::clone(&data))).await?;
        if let Err(e) = slot.store.release(&slot.key).await {
            warn!(target: "cacheback", error = %slot.error("release", e), "Unable to release the refresh claim");
        }
        Ok(data)
    }

    async fn store_item(
        &self,
        slot: &Slot<'_>,
        expiry: f64,
        data: Option<Arc<J::Output>>,
    ) -> Result<(), Error> {
        let verify = self.cache.verifies_writes() && data.is_some();
        let copy = slot.local.map(|local| (local, CachedItem { expiry, data: data.clone() }));
        let value = item::encode(slot.store.representation(), expiry, data)?;
        slot.store.set(&slot.key, value, self.job.cache_ttl()).await.map_err(|e| slot.error("set", e))?;
        if let Some((local, item)) = copy {
            local.put(&slot.key, &item, self.cache.now());
        }
        if verify && slot.store.get(&slot.key).await.map_err(|e| slot.error("get", e))?.is_none() {
            return Err(Error::VerifyWrite {
                alias: slot.alias.to_owned(),
                key: slot.key.clone(),
                type_name: std::any::type_name::<J::Output>(),
            });
        }
        Ok(())
    }

    async fn dispatch(&self, slot: &Slot<'_>, args: &J::Args) -> Dispatch {
        let Err(err) = self.enqueue(slot, args).await else { return Dispatch::Enqueued };
        error!(
            target: "cacheback",
            error = %err,
            "Unable to trigger task asynchronously - failing over to synchronous refresh"
        );
        match self.fetch_and_store(slot, args).await {
            Ok(_) => {
                debug!(target: "cacheback", "Failover synchronous refresh completed successfully");
                Dispatch::RefreshedInline
            }
            Err(e) => {
                error!(target: "cacheback", error = %e, "Unable to refresh data synchronously: {e}");
                Dispatch::Failed
            }
        }
    }

    async fn enqueue(&self, slot: &Slot<'_>, args: &J::Args) -> Result<(), Error> {
        let job = J::name().into_owned();
        let args = serde_json::to_value(args).map_err(|e| Error::Encode {
            type_name: std::any::type_name::<J::Args>(),
            message: e.to_string(),
        })?;
        let payload =
            RefreshPayload { job: job.clone(), state: self.job.init_state(), args, key: slot.key.clone() };
        self.cache
            .queue()
            .enqueue(payload, &self.job.task_options())
            .await
            .map_err(|source| Error::Queue { job, source })
    }
}

/// Where one item lives: a key in the store of an alias.
struct Slot<'a> {
    alias: &'a str,
    store: &'a Arc<dyn CacheStore>,
    local: Option<&'a LocalCache>,
    key: String,
}

impl Slot<'_> {
    fn error(&self, op: &'static str, source: StoreError) -> Error {
        Error::Store { alias: self.alias.to_owned(), op, key: self.key.clone(), source }
    }
}
