//! [`JobHandle`]: a job bound to an engine, with the whole job API.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tracing::field::Empty;
use tracing::{Instrument, debug, error, warn};

use crate::clock::Timestamp;
use crate::engine::Cacheback;
use crate::error::{Error, StoreError};
use crate::item::{self, CachedItem};
use crate::job::{CacheStatus, Call, Dispatch, Job};
use crate::local::{LocalCache, LocalView};
use crate::store::{CacheStore, StoredValue};
use crate::tags;
use crate::telemetry::{Claim, JobMetrics, Mode, Write};

mod many;
mod refresh;

/// The answer of [`JobHandle::lookup`]: the value `get` returns, and how it was found.
///
/// ```
/// # use cacheback::{Cacheback, CacheStatus, FetchError, Job};
/// # struct Answer;
/// # impl Job for Answer {
/// #     type Args = ();
/// #     type Output = u32;
/// #     async fn fetch(&self, _: &()) -> Result<u32, FetchError> { Ok(42) }
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = Cacheback::builder().build().unwrap();
/// let found = cache.job(Answer).lookup(&()).await.unwrap();
/// assert_eq!((found.status, found.sync_fetch, found.refresh_failed), (CacheStatus::Miss, Some(true), false));
/// // Fetched in this call, fresh for the job's lifetime (10 minutes by default).
/// assert!(found.fetched_at.unwrap() <= cache.now());
/// assert!(found.expiry.unwrap() > cache.now() + 599.0);
/// # });
/// ```
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub struct Lookup<T> {
    /// The value, after [`Job::process_result`].
    pub value: Option<Arc<T>>,
    /// How the item was found.
    pub status: CacheStatus,
    /// `Some(true)` if this call fetched, `Some(false)` if it queued a refresh,
    /// `None` on a HIT.
    pub sync_fetch: Option<bool>,
    /// This call's synchronous fetch failed and the stale value was served
    /// instead, within the job's [`stale_if_error`](Job::stale_if_error).
    pub refresh_failed: bool,
    /// This call's synchronous fetch took longer than the job's
    /// [`fetch_soft_timeout`](Job::fetch_soft_timeout): the stale value was
    /// served, and the fetch goes on in the background.
    pub timed_out: bool,
    /// When the data served was fetched, on the engine's clock (its age is
    /// [`Cacheback::now`] less this); `None` when no data was served (an
    /// empty answer) or the item predates 0.2.
    pub fetched_at: Option<Timestamp>,
    /// When the data served goes (or went) stale, on the engine's clock;
    /// `None` when no data was served or it was fetched without the cache
    /// (the store is down).
    pub expiry: Option<Timestamp>,
}

/// Any lookup clones: its value is shared.
impl<T> Clone for Lookup<T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            status: self.status,
            sync_fetch: self.sync_fetch,
            refresh_failed: self.refresh_failed,
            timed_out: self.timed_out,
            fetched_at: self.fetched_at,
            expiry: self.expiry,
        }
    }
}

/// What a lookup serves, before [`Job::process_result`]: nothing (the job's
/// empty value), or data with when it was fetched and goes stale.
enum Served<T> {
    /// No data: a refresh is queued, or the item cannot be cached.
    Empty(Option<Arc<T>>),
    /// Data read from the store, or fetched in this call.
    Data(Fresh<T>),
}

/// Data with its times: when it was fetched, and when it goes stale (`None`
/// for data fetched without the cache, the store being down).
pub(crate) struct Fresh<T> {
    data: Arc<T>,
    fetched_at: Timestamp,
    expiry: Option<Timestamp>,
}

impl<T> Clone for Fresh<T> {
    fn clone(&self) -> Self {
        Self { data: Arc::clone(&self.data), fetched_at: self.fetched_at, expiry: self.expiry }
    }
}

/// What the store holds under a key: the one read every operation starts
/// from. The value as stored is kept: it is what a compare-and-set compares
/// with.
enum Read<T> {
    /// Nothing.
    Missing,
    /// A value this job cannot decode (a deploy changed its output type).
    /// Every operation treats it as [`Missing`](Read::Missing), and a lookup
    /// replaces it through its compare-and-set.
    Undecodable(StoredValue),
    /// An item.
    Found(StoredValue, CachedItem<T>),
}

/// By hand: the data is shared (`Arc`), so `T` need not be `Clone`.
impl<T> Clone for Read<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Missing => Self::Missing,
            Self::Undecodable(raw) => Self::Undecodable(raw.clone()),
            Self::Found(raw, item) => Self::Found(raw.clone(), item.clone()),
        }
    }
}

impl<T> Read<T> {
    /// The item; `None` when nothing decodable is stored.
    fn item(self) -> Option<CachedItem<T>> {
        match self {
            Read::Found(_, item) => Some(item),
            Read::Missing | Read::Undecodable(_) => None,
        }
    }
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
    metrics: Arc<JobMetrics>,
    place: Arc<Place>,
}

/// Where a job's items live, resolved once when its handle is made: its
/// alias, the alias's store (`None` for an alias the engine does not know,
/// an error at each use) and local copy.
struct Place {
    alias: Box<str>,
    store: Option<Arc<dyn CacheStore>>,
    local: Option<LocalCache>,
}

impl<J: std::fmt::Debug> std::fmt::Debug for JobHandle<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("job", &self.job).finish_non_exhaustive()
    }
}

impl<J: Clone> Clone for JobHandle<J> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            job: self.job.clone(),
            metrics: Arc::clone(&self.metrics),
            place: Arc::clone(&self.place),
        }
    }
}

impl Cacheback {
    /// Binds `job` to this engine; the handle has the whole job API.
    ///
    /// The job's [`cache_alias`](Job::cache_alias) is resolved here, once: its
    /// store and local copy serve every call of the handle.
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
        let alias = job.cache_alias().unwrap_or(self.default_alias());
        let metrics = self.telemetry().of::<J>(J::name, alias);
        let place = Place {
            alias: alias.into(),
            store: self.store(alias).ok().cloned(),
            local: self.local_cache(alias).cloned(),
        };
        JobHandle { cache: self.clone(), job, metrics, place: Arc::new(place) }
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
    /// * STALE: past `fetch_on_stale_threshold` or `max_stale_age`, fetch
    ///   synchronously (and, within `stale_if_error`, serve the stale data if
    ///   that fails); otherwise re-store the stale data for the refresh
    ///   timeout (so a failed refresh cannot leave it in limbo), queue a
    ///   refresh and return the stale data.
    /// * HIT: return the data.
    ///
    /// The re-store of a STALE or MISS item is a compare-and-set on what this
    /// reader read: of all the readers that see it at once, exactly one
    /// queues a refresh, and a reader whose read predates a landed refresh
    /// leaves it alone. Concurrent synchronous fetches of one key share one
    /// `fetch`, across processes when the store is shared.
    pub async fn lookup(&self, raw_args: &J::Args) -> Result<Lookup<J::Output>, Error> {
        let args = self.job.prepare_args(raw_args);
        let slot = self.slot(&args)?;
        // Without a subscriber for it, no span at all: a disabled span still
        // costs its creation, and its enter and exit on every poll.
        if !tracing::enabled!(target: "cacheback", tracing::Level::DEBUG) {
            let found = self.lookup_in(&slot, &args, raw_args).await;
            if let Ok(found) = &found {
                self.metrics.lookup(found.status, found.refresh_failed);
            }
            return found;
        }
        let span = tracing::debug_span!(
            target: "cacheback",
            "cacheback.lookup",
            job = %J::name(),
            key = %slot.key,
            status = Empty,
            sync_fetch = Empty,
        );
        let found = self.lookup_in(&slot, &args, raw_args).instrument(span.clone()).await;
        if let Ok(found) = &found {
            self.metrics.lookup(found.status, found.refresh_failed);
            span.record("status", tracing::field::display(found.status));
            span.record("sync_fetch", tracing::field::debug(found.sync_fetch));
        }
        found
    }

    async fn lookup_in(
        &self,
        slot: &Slot<'_>,
        args: &J::Args,
        raw_args: &J::Args,
    ) -> Result<Lookup<J::Output>, Error> {
        let call = Call { args: raw_args };
        if let Some(hit) = self.local_hit(slot, &call) {
            return Ok(hit);
        }
        let read = match self.read_now(slot) {
            Some(read) => read,
            None if slot.local.is_some() => self.shared_read(slot).await,
            None => self.read(slot).await,
        };
        if let Some(hit) = self.fresh_hit(slot, &read, &call) {
            return Ok(hit);
        }
        // Every path past a plain HIT is boxed: the future of a lookup stays
        // small, so a HIT does not pay for the size of the refresh machinery.
        Box::pin(self.answer(slot, read, args, &call)).await
    }

    /// A HIT that needs nothing more, answered without a future: the item is
    /// fresh and no early refresh is to be drawn (with `early_refresh` set,
    /// [`answer`](Self::answer) draws).
    fn fresh_hit(
        &self,
        slot: &Slot<'_>,
        read: &Result<Read<J::Output>, Error>,
        call: &Call<'_, J::Args>,
    ) -> Option<Lookup<J::Output>> {
        let Ok(Read::Found(_, item)) = read else { return None };
        if item.expiry <= self.cache.now() || self.job.early_refresh().is_some() {
            return None;
        }
        debug!(target: "cacheback", "Job {} with key '{}' - cache HIT", J::name(), slot.key);
        Some(self.finish(self.served(item.clone()), call, CacheStatus::Hit, None))
    }

    /// A HIT on the local copy, if it has the item fresh.
    fn local_hit(&self, slot: &Slot<'_>, call: &Call<'_, J::Args>) -> Option<Lookup<J::Output>> {
        let copy = slot.local?.get::<J::Output>(&slot.key, self.cache.now())?;
        debug!(target: "cacheback", "Job {} with key '{}' - cache HIT", J::name(), slot.key);
        self.metrics.local_hit();
        Some(self.finish(self.served(copy), call, CacheStatus::Hit, None))
    }

    /// The answer to what the store holds: HIT, STALE or MISS, and what
    /// each does.
    async fn answer(
        &self,
        slot: &Slot<'_>,
        read: Result<Read<J::Output>, Error>,
        args: &J::Args,
        call: &Call<'_, J::Args>,
    ) -> Result<Lookup<J::Output>, Error> {
        let (key, name) = (&slot.key, J::name());
        let call = Call { args: call.args };
        let (raw, item) = match read {
            Ok(Read::Found(raw, item)) => (raw, item),
            Ok(Read::Undecodable(raw)) => return Box::pin(self.miss(slot, Some(&raw), args, &call)).await,
            Ok(Read::Missing) => return Box::pin(self.miss(slot, None, args, &call)).await,
            // The store is down: serve the read without it.
            Err(err) => return Box::pin(self.uncached(err, slot, args, &call)).await,
        };

        let now = self.cache.now();
        let delta = now - item.expiry;
        if delta <= 0.0 {
            debug!(target: "cacheback", "Job {name} with key '{key}' - cache HIT");
            if self.refreshes_early(&item, now) {
                Box::pin(self.refresh_early(slot, &raw, &item, args)).await;
            }
            return Ok(self.finish(self.served(item), &call, CacheStatus::Hit, None));
        }

        if self.must_fetch_stale(&item, delta, args) {
            debug!(target: "cacheback", "Job {name} with key '{key}' - STALE cache hit - running synchronous refresh");
            return match Box::pin(self.refresh_or_serve_stale(slot, args)).await {
                Ok(Some(fetched)) => {
                    Ok(self.finish(Served::Data(fetched), &call, CacheStatus::Stale, Some(true)))
                }
                // Past the soft timeout: the stale item, while the fetch goes on.
                Ok(None) => Ok(Lookup {
                    timed_out: true,
                    ..self.finish(self.served(item), &call, CacheStatus::Stale, Some(true))
                }),
                Err(err) if self.may_serve_after_error(&item) => {
                    warn!(target: "cacheback", error = %err, "Job {name} with key '{key}' - refresh failed; serving the stale item (stale_if_error)");
                    Box::pin(self.restore_for_refresh(slot, &raw, &item, args, self.job.stale_if_error()))
                        .await?;
                    let served = self.served(item);
                    Ok(Lookup {
                        refresh_failed: true,
                        ..self.finish(served, &call, CacheStatus::Stale, Some(true))
                    })
                }
                Err(err) => Err(err),
            };
        }

        debug!(
            target: "cacheback",
            "Job {name} with key '{key}' - STALE cache hit - triggering async refresh and returning stale result"
        );
        Box::pin(self.restore_for_refresh(slot, &raw, &item, args, None)).await?;
        Ok(self.finish(self.served(item), &call, CacheStatus::Stale, Some(false)))
    }

    /// A MISS: nothing decodable is stored (`raw` is what is, if anything).
    /// Fetches in this call, or stores the empty result and queues a refresh.
    async fn miss(
        &self,
        slot: &Slot<'_>,
        raw: Option<&StoredValue>,
        args: &J::Args,
        call: &Call<'_, J::Args>,
    ) -> Result<Lookup<J::Output>, Error> {
        let (key, name) = (&slot.key, J::name());
        if self.job.should_missing_item_be_fetched_synchronously(args) {
            debug!(target: "cacheback", "Job {name} with key '{key}' - cache MISS - running synchronous refresh");
            let fetched = self.refresh_bounded(slot, args).await?;
            return Ok(self.finish(Served::Data(fetched), call, CacheStatus::Miss, Some(true)));
        }
        debug!(
            target: "cacheback",
            "Job {name} with key '{key}' - cache MISS - triggering async refresh and returning empty result"
        );
        // Store the empty result until the refresh lands, so that readers in
        // the meantime do not queue refreshes of their own.
        let empty = self.job.empty().map(Arc::new);
        let timeout = self.job.timeout(self.cache.now(), args);
        self.claim_and_queue(slot, raw, CachedItem::new(timeout, empty.clone(), None), args).await?;
        Ok(self.finish(Served::Empty(empty), call, CacheStatus::Miss, Some(false)))
    }

    /// Marks the cached item for `args` stale and queues a refresh; does
    /// nothing if nothing is cached.
    pub async fn invalidate(&self, raw_args: &J::Args) -> Result<(), Error> {
        let args = self.job.prepare_args(raw_args);
        let slot = self.slot(&args)?;
        let Some(item) = self.read(&slot).await?.item() else {
            return Ok(());
        };
        let timeout = self.job.timeout(self.cache.now(), &args);
        let (fetched_at, versions) = (self.fetched_at(&item), item.tags.clone());
        self.store_item(&slot, CachedItem::new(timeout, item.data, Some(fetched_at)).with_tags(versions))
            .await?;
        // An invalidation is explicit: it queues a refresh even if one is pending.
        self.dispatch(&slot, &args).await;
        Ok(())
    }

    /// Whether the store holds a value under the key of `args` (decodable or
    /// not), without reading it further.
    pub(crate) async fn is_stored(&self, raw_args: &J::Args) -> Result<bool, Error> {
        let slot = self.slot(&self.job.prepare_args(raw_args))?;
        let stored = slot.store.get(&slot.key).await.map_err(|e| slot.error("get", e))?;
        Ok(stored.is_some())
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
    /// triggering a refresh; `None` when nothing is stored, or what is stored
    /// does not decode as this job's output (as every operation treats it: a
    /// MISS).
    pub async fn raw_get(&self, raw_args: &J::Args) -> Result<Option<CachedItem<J::Output>>, Error> {
        let slot = self.slot(&self.job.prepare_args(raw_args))?;
        Ok(self.read(&slot).await?.item())
    }

    /// Caches `data` for `args`, fresh for the job's lifetime.
    pub async fn set(&self, raw_args: &J::Args, data: J::Output) -> Result<(), Error> {
        let args = self.job.prepare_args(raw_args);
        let slot = self.slot(&args)?;
        let expiry = self.expiry_of(&args, &data);
        debug!(target: "cacheback", "Setting {} cache with key '{}', expiry '{expiry}'", J::name(), slot.key);
        let versions = tags::read_versions(&**slot.store, &slot.tags).await;
        let item = CachedItem::new(expiry, Some(Arc::new(data)), Some(self.cache.now())).with_tags(versions);
        self.store_item(&slot, item).await
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
        Ok(self.fetch_and_store(&self.slot(&args)?, &args, Mode::Sync).await?.landed()?.data)
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
    /// write if the engine is configured to: the original's
    /// `Job.store(cache_alias, key, expiry, data)`, kept public for what
    /// seeds or migrates items under keys it already has. Everything else
    /// wants [`set`](Self::set), which derives the key and the expiry.
    ///
    /// ```
    /// # use cacheback::{Cacheback, CacheStatus, FetchError, Job};
    /// # struct Answer;
    /// # impl Job for Answer {
    /// #     type Args = ();
    /// #     type Output = u32;
    /// #     async fn fetch(&self, _: &()) -> Result<u32, FetchError> { Ok(42) }
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = Cacheback::builder().build().unwrap();
    /// let answer = cache.job(Answer);
    /// let key = answer.key(&()).unwrap();
    /// answer.store_raw(&key, cache.now() + 60.0, Some(7)).await.unwrap();
    /// let found = answer.lookup(&()).await.unwrap();
    /// assert_eq!((*found.value.unwrap(), found.status), (7, CacheStatus::Hit));
    /// # });
    /// ```
    pub async fn store_raw(
        &self,
        key: &str,
        expiry: Timestamp,
        data: Option<J::Output>,
    ) -> Result<(), Error> {
        let slot = self.slot_for(key.to_owned())?;
        self.store_item(&slot, CachedItem::new(expiry, data.map(Arc::new), None)).await
    }

    // ------------------------------------------------------------------
    // Helpers.
    // ------------------------------------------------------------------

    fn key_of(&self, args: &J::Args) -> Result<String, Error> {
        self.job.key(args).map_err(|e| Error::Key { job: J::name().into_owned(), message: e.to_string() })
    }

    /// Where the item for prepared `args` lives.
    fn slot(&self, args: &J::Args) -> Result<Slot<'_>, Error> {
        Ok(Slot { tags: self.job.tags(args), ..self.slot_for(self.key_of(args)?)? })
    }

    /// Where the item under `key` lives, without its tags (for what has no
    /// arguments to ask [`Job::tags`]).
    fn slot_for(&self, key: String) -> Result<Slot<'_>, Error> {
        let Place { alias, store, local } = &*self.place;
        let store = match store {
            Some(store) => store,
            None => self.cache.store(alias)?,
        };
        Ok(Slot { alias, store, local: local.as_ref().map(LocalCache::view), key, tags: Vec::new() })
    }

    /// What serving `item` serves: its data with its times, or nothing for
    /// the placeholder.
    fn served(&self, item: CachedItem<J::Output>) -> Served<J::Output> {
        match self.fresh_of(item) {
            Some(fresh) => Served::Data(fresh),
            None => Served::Empty(None),
        }
    }

    /// The item's data with its times; `None` for the placeholder.
    fn fresh_of(&self, item: CachedItem<J::Output>) -> Option<Fresh<J::Output>> {
        let fetched_at = self.fetched_at(&item);
        item.data.map(|data| Fresh { data, fetched_at, expiry: Some(item.expiry) })
    }

    /// The answer: the value after `process_result`, and how it was found.
    fn finish(
        &self,
        served: Served<J::Output>,
        call: &Call<'_, J::Args>,
        status: CacheStatus,
        sync_fetch: Option<bool>,
    ) -> Lookup<J::Output> {
        let (data, fetched_at, expiry) = match served {
            Served::Empty(data) => (data, None, None),
            Served::Data(Fresh { data, fetched_at, expiry }) => (Some(data), Some(fetched_at), expiry),
        };
        if status == CacheStatus::Stale
            && let Some(fetched_at) = fetched_at
        {
            self.metrics.stale_served(self.cache.now() - fetched_at);
        }
        Lookup {
            value: self.job.process_result(data, call, status, sync_fetch),
            status,
            sync_fetch,
            refresh_failed: false,
            timed_out: false,
            fetched_at,
            expiry,
        }
    }

    /// What the store holds under the slot's key, logging an item that does
    /// not decode: once per operation, as each operation reads once (the
    /// re-reads of a fill use [`load`](Self::load)).
    async fn read(&self, slot: &Slot<'_>) -> Result<Read<J::Output>, Error> {
        let read = self.load(slot).await;
        self.noted(slot, read)
    }

    /// [`read`](Self::read), shared by the readers of the slot's key in this
    /// process that find its local copy lapsed at once: when a hot key's copy
    /// expires, every concurrent reader would otherwise ask the store
    /// together (on a database store, a burst of identical queries each
    /// `ttl_ms`, and a p99 of ~100 ms under `scripts/load`); one asks, the
    /// others take its answer. The read that starts a flight is no older
    /// than the others' would have been.
    async fn shared_read(&self, slot: &Slot<'_>) -> Result<Read<J::Output>, Error> {
        let key = format!("{}\u{0}{}", slot.alias, slot.key);
        let shared = self.cache.reads().run(&key, || async { self.read(slot).await.map(Arc::new) }).await?;
        Ok(Read::clone(&shared))
    }

    /// [`read`](Self::read) without a future, when the store answers at once
    /// ([`get_now`](CacheStore::get_now)); `None` when it must be awaited.
    fn read_now(&self, slot: &Slot<'_>) -> Option<Result<Read<J::Output>, Error>> {
        let got = slot.store.get_now(&slot.key)?;
        if slot.tags.is_empty() {
            return Some(self.noted(slot, self.decoded(slot, got, &[])));
        }
        let mut versions = Vec::with_capacity(slot.tags.len());
        for tag in &slot.tags {
            match slot.store.get_now(&crate::store::tag_version_key(tag))? {
                Ok(version) => versions.push(version),
                Err(err) => return Some(Err(slot.error("get", err))),
            }
        }
        Some(self.noted(slot, self.decoded(slot, got, &versions)))
    }

    /// What the store holds under the slot's key; keeps a local copy of a
    /// fresh item.
    async fn load(&self, slot: &Slot<'_>) -> Result<Read<J::Output>, Error> {
        if !slot.tags.is_empty() {
            return self.load_tagged(slot).await;
        }
        let got = match slot.store.get_now(&slot.key) {
            Some(got) => got,
            None => slot.store.get(&slot.key).await,
        };
        self.decoded(slot, got, &[])
    }

    /// [`load`](Self::load) of a tagged item: the item and the versions of
    /// its tags in one read ([`get_many`](CacheStore::get_many)).
    async fn load_tagged(&self, slot: &Slot<'_>) -> Result<Read<J::Output>, Error> {
        let versions: Vec<String> = slot.tags.iter().map(|tag| crate::store::tag_version_key(tag)).collect();
        let keys: Vec<&str> =
            std::iter::once(slot.key.as_str()).chain(versions.iter().map(String::as_str)).collect();
        match slot.store.get_many(&keys).await {
            Ok(mut got) if got.len() == keys.len() => {
                let versions = got.split_off(1);
                self.decoded(slot, Ok(got.pop().flatten()), &versions)
            }
            Ok(got) => Err(slot.error(
                "get",
                StoreError::new(format!("get_many answered {} values for {} keys", got.len(), keys.len())),
            )),
            Err(err) => Err(slot.error("get", err)),
        }
    }

    /// What the store answered, decoded, and checked against the current
    /// `versions` of its tags; keeps a local copy of a fresh item.
    fn decoded(
        &self,
        slot: &Slot<'_>,
        got: Result<Option<StoredValue>, StoreError>,
        versions: &[Option<StoredValue>],
    ) -> Result<Read<J::Output>, Error> {
        let Some(raw) = got.map_err(|e| slot.error("get", e))? else {
            return Ok(Read::Missing);
        };
        let Ok(item) = item::decode(&slot.key, &raw) else {
            return Ok(Read::Undecodable(raw));
        };
        let item = if slot.tags.is_empty() {
            item
        } else {
            tags::checked(item, &slot.tags, versions, self.cache.now())
        };
        if let Some(local) = slot.local {
            local.put(&slot.key, &item, self.cache.now());
        }
        Ok(Read::Found(raw, item))
    }

    /// `read`, having logged it if it does not decode.
    fn noted(&self, slot: &Slot<'_>, read: Result<Read<J::Output>, Error>) -> Result<Read<J::Output>, Error> {
        if let Ok(Read::Undecodable(raw)) = &read
            && let Err(err) = item::decode::<J::Output>(&slot.key, raw)
        {
            warn!(target: "cacheback", error = %err, "Undecodable cached item treated as a MISS");
        }
        read
    }

    /// When an item holding `data`, fetched now, goes stale: the job's
    /// [`expiry`](Job::expiry) moved by its
    /// [`lifetime_for`](Job::lifetime_for) the data.
    fn expiry_of(&self, args: &J::Args, data: &J::Output) -> Timestamp {
        let shift = self.job.lifetime_for(args, data).as_secs_f64() - self.job.lifetime().as_secs_f64();
        self.job.expiry(self.cache.now(), args) + shift
    }

    /// When the item's data was fetched; for an item stored by an earlier
    /// version, when it was stored (its expiry less the lifetime).
    fn fetched_at(&self, item: &CachedItem<J::Output>) -> Timestamp {
        item.fetched_at.unwrap_or_else(|| item.expiry - self.job.lifetime().as_secs_f64())
    }

    /// Whether a stale item is fetched in this call: past the original's
    /// `fetch_on_stale_threshold` (counted from its last store), or past
    /// `max_stale_age` (counted from its fetch).
    fn must_fetch_stale(&self, item: &CachedItem<J::Output>, delta: f64, args: &J::Args) -> bool {
        let age = self.cache.now() - self.fetched_at(item);
        self.job.should_stale_item_be_fetched_synchronously(saturating_secs(delta), args)
            || self.job.max_stale_age().is_some_and(|max| age > max.as_secs_f64())
    }

    /// Whether this HIT on `item` at `now` queues an early refresh (the job's
    /// [`early_refresh`](Job::early_refresh), XFetch): when `now − δ·β·ln(u)`
    /// reaches the expiry, δ the item's last fetch time and `u` uniform in
    /// (0, 1]; never while an early refresh of the item is pending.
    fn refreshes_early(&self, item: &CachedItem<J::Output>, now: Timestamp) -> bool {
        let (Some(beta), Some(took)) = (self.job.early_refresh(), item.took) else {
            return false;
        };
        if item.data.is_none() || item.refreshing_until.is_some_and(|until| until > now) {
            return false;
        }
        // `fastrand::f64` is in [0, 1): `1 − it` is in (0, 1].
        let draw = -(1.0 - fastrand::f64()).ln();
        now + took.max(0.0) * beta * draw >= item.expiry
    }

    /// Queues an early refresh of a fresh `item`, read as `raw`: through the
    /// same compare-and-set as a stale item's, which marks the item pending
    /// (its data and expiry kept) until the refresh timeout, so of all the
    /// readers that draw at once exactly one queues it, and none after it
    /// until it lands or times out. Nothing that goes wrong here fails the
    /// HIT: it has its data.
    async fn refresh_early(
        &self,
        slot: &Slot<'_>,
        raw: &StoredValue,
        item: &CachedItem<J::Output>,
        args: &J::Args,
    ) {
        let until = self.job.timeout(self.cache.now(), args);
        let pending = CachedItem { refreshing_until: Some(until), ..item.clone() };
        match self.claim_and_queue(slot, Some(raw), pending, args).await {
            Ok(true) => {
                debug!(target: "cacheback", job = %J::name(), key = %slot.key, "Early refresh (early_refresh)");
                self.metrics.refreshed_early();
            }
            Ok(false) => {}
            Err(err) => {
                warn!(target: "cacheback", error = %err, "Unable to queue an early refresh; answering the HIT")
            }
        }
    }

    /// Whether a stale item may be served when its fetch failed.
    fn may_serve_after_error(&self, item: &CachedItem<J::Output>) -> bool {
        let age = self.cache.now() - self.fetched_at(item);
        item.data.is_some() && self.job.stale_if_error().is_some_and(|bound| age <= bound.as_secs_f64())
    }

    /// Re-stores a stale item, as read, with the refresh timeout as its
    /// expiry, and queues its refresh: if this reader is the one whose
    /// compare-and-set lands. No other refresh is queued before the timeout
    /// passes, and if this one fails the item goes stale again instead of
    /// staying in limbo; the expiry is never past `max_stale_age` (nor past
    /// `bound`, the `stale_if_error` of an item served after a failed fetch).
    /// A store that refuses the re-store still lets the stale item be served,
    /// and nothing is queued until it takes writes again.
    async fn restore_for_refresh(
        &self,
        slot: &Slot<'_>,
        raw: &StoredValue,
        item: &CachedItem<J::Output>,
        args: &J::Args,
        bound: Option<Duration>,
    ) -> Result<(), Error> {
        let fetched_at = self.fetched_at(item);
        // Not past the job's bounds counted from the fetch: there, the item is
        // stale again and fetched in the request.
        let bounds = [self.job.max_stale_age(), bound].into_iter().flatten();
        let expiry = bounds.fold(self.job.timeout(self.cache.now(), args), |expiry, bound| {
            expiry.min(fetched_at + bound.as_secs_f64())
        });
        // Pending until then: no HIT on it draws an early refresh meanwhile.
        let restored = CachedItem {
            expiry,
            fetched_at: Some(fetched_at),
            refreshing_until: Some(expiry),
            ..item.clone()
        };
        self.claim_and_queue(slot, Some(raw), restored, args).await.map(drop)
    }

    /// Claims the refresh of a stale, missing or early-refreshed item and
    /// queues it: writes `item` if the store still holds `expected`
    /// ([`claim_refresh`](Self::claim_refresh)), then dispatches; returns
    /// whether this reader did. A store that refuses the write queues
    /// nothing, and fails nothing ([`write_refused`](Self::write_refused)):
    /// the reader has its answer.
    async fn claim_and_queue(
        &self,
        slot: &Slot<'_>,
        expected: Option<&StoredValue>,
        item: CachedItem<J::Output>,
        args: &J::Args,
    ) -> Result<bool, Error> {
        match self.claim_refresh(slot, expected, item).await {
            Ok(true) => {
                self.dispatch(slot, args).await;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(err) => self.write_refused(Write::Replace, err).map(|()| false),
        }
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
            if let Some(copy) = self.last_copy(slot, call) {
                return Ok(copy);
            }
            let empty = Served::Empty(self.job.empty().map(Arc::new));
            return Ok(self.finish(empty, call, CacheStatus::Miss, Some(false)));
        }
        let started = self.cache.now();
        let data = match self.refreshing(slot, Mode::Sync, self.fetch(slot, args)).await {
            Ok(data) => data,
            Err(err) => return self.last_copy(slot, call).ok_or(err),
        };
        let served = Served::Data(Fresh { data, fetched_at: started, expiry: None });
        Ok(self.finish(served, call, CacheStatus::Miss, Some(true)))
    }

    /// Neither the store nor the job answered: the local copy's last item,
    /// if it has one recent enough ([`LocalCache`](crate::LocalCache)), as
    /// a STALE whose refresh failed.
    fn last_copy(&self, slot: &Slot<'_>, call: &Call<'_, J::Args>) -> Option<Lookup<J::Output>> {
        let copy = slot.local?.fallback::<J::Output>(&slot.key)?;
        warn!(target: "cacheback", "Job {} with key '{}' - store and fetch failed; serving the last local copy", J::name(), slot.key);
        let lookup = self.finish(self.served(copy), call, CacheStatus::Stale, Some(true));
        Some(Lookup { refresh_failed: true, ..lookup })
    }

    /// A write of a read that failed. A store's error (a demoted master, an
    /// out-of-memory Redis, an ACL that forbids writes) does not fail a read
    /// that has its answer: it is counted, logged at most every 10 s per
    /// job and alias, and the read goes on; any other error fails the read.
    pub(super) fn write_refused(&self, write: Write, err: Error) -> Result<(), Error> {
        if !matches!(err, Error::Store { .. }) {
            return Err(err);
        }
        if let Some(refused) = self.metrics.write_refused(write) {
            warn!(
                target: "cacheback",
                error = %err,
                refused,
                "The store refused a write of a read ({refused} since the last warning); answering without it"
            );
        }
        Ok(())
    }

    /// The compare-and-set that lets one reader of a stale or missing item
    /// queue its refresh: writes `item` if the store still holds `expected`;
    /// returns whether it did.
    async fn claim_refresh(
        &self,
        slot: &Slot<'_>,
        expected: Option<&StoredValue>,
        item: CachedItem<J::Output>,
    ) -> Result<bool, Error> {
        let value = item::encode(slot.store.representation(), item.clone())?;
        let written = slot
            .store
            .replace(&slot.key, expected, value, self.job.cache_ttl())
            .await
            .map_err(|e| slot.error("replace", e))?;
        self.metrics.claim(Claim::Refresh, written);
        if written && let Some(local) = slot.local {
            local.put(&slot.key, &item, self.cache.now());
        }
        Ok(written)
    }

    async fn store_item(&self, slot: &Slot<'_>, item: CachedItem<J::Output>) -> Result<(), Error> {
        let verify = self.cache.verifies_writes() && item.data.is_some();
        let copy = slot.local.map(|local| (local, item.clone()));
        let value = item::encode(slot.store.representation(), item)?;
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
}

/// Where one item lives: a key in the store of an alias.
struct Slot<'a> {
    alias: &'a str,
    store: &'a Arc<dyn CacheStore>,
    local: Option<LocalView<'a>>,
    key: String,
    /// The item's [tags](Job::tags): read with it, their versions stored with it.
    tags: Vec<String>,
}

impl Slot<'_> {
    fn error(&self, op: &'static str, source: StoreError) -> Error {
        Error::Store { alias: self.alias.to_owned(), op, key: self.key.clone(), source }
    }
}

/// `secs` (positive, possibly infinite: an item's times come from the store)
/// as a `Duration`, `Duration::MAX` past its range.
fn saturating_secs(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}
