//! The refresh side of a [`JobHandle`]: synchronous refreshes shared across
//! callers and processes (singleflight, fill claims), timed and counted;
//! handing refreshes to the queue; and running the ones a worker took off it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tracing::{Instrument, debug, error, warn};

use super::{Fresh, JobHandle, Read, Slot};
use crate::clock::Timestamp;
use crate::engine::Detached;
use crate::error::{Error, SharedError};
use crate::item::{self, CachedItem};
use crate::job::{Dispatch, Job, Refetched};
use crate::payload::{RefreshOutcome, RefreshPayload};
use crate::store::{CacheStore, StoredValue};
use crate::tags;
use crate::telemetry::{self, Claim, Mode, Outcome, Write};

/// The first pause of a process waiting for another's fill of a cold key; it
/// doubles up to [`FILL_POLL_MAX`].
const FILL_POLL_FIRST: Duration = Duration::from_millis(2);
/// The longest pause between two looks at a key another process is filling.
const FILL_POLL_MAX: Duration = Duration::from_millis(50);

impl<J: Job> JobHandle<J> {
    // ------------------------------------------------------------------
    // The worker side.
    // ------------------------------------------------------------------

    /// Runs a queued refresh of prepared `args`: skipped when the item is
    /// fresh and was fetched since the refresh was queued (another refresh
    /// or a `set` got there first, or the queue delivered it twice).
    pub(crate) async fn refresh_queued(
        &self,
        args: &J::Args,
        payload: &RefreshPayload,
    ) -> Result<RefreshOutcome, Error> {
        let slot = self.slot(args)?;
        if slot.key != payload.key {
            warn!(
                target: "cacheback",
                "Job {} refresh queued under key '{}' recomputes to '{}'; using the latter",
                J::name(),
                payload.key,
                slot.key
            );
        }
        if let Some(queued_at) = payload.queued_at
            && let Ok(Some(item)) = self.read(&slot).await.map(super::Read::item)
            && item.data.is_some()
            && item.expiry > self.cache.now()
            && item.fetched_at.is_some_and(|fetched_at| fetched_at >= queued_at)
        {
            self.metrics.refreshed(Mode::Queued, Outcome::SkippedFresh, None);
            return Ok(RefreshOutcome::SkippedFresh);
        }
        // A reader's fill under way (perhaps one it stopped waiting for, past
        // a fetch timeout) is waited for, not repeated. The worker takes no
        // claim itself: a killed worker's would hold up its job's recovery.
        if slot.store.is_claimed(&slot.key, self.cache.now()).await.unwrap_or(false)
            && let Waited::Filled(_) = self.wait_for_fill(&slot, self.fill_deadline()).await
        {
            self.metrics.refreshed(Mode::Queued, Outcome::SkippedFresh, None);
            return Ok(RefreshOutcome::SkippedFresh);
        }
        self.fetch_and_store(&slot, args, Mode::Queued).await?.landed()?;
        Ok(RefreshOutcome::Refreshed)
    }

    /// Synchronous refresh shared by concurrent callers of one key: in this
    /// process through the singleflight, across processes through the key's
    /// fill claim. The first caller re-reads the store before fetching, so a
    /// caller arriving just after another fill landed reuses its result.
    pub(super) async fn refresh_once(
        &self,
        slot: &Slot<'_>,
        args: &J::Args,
    ) -> Result<Fresh<J::Output>, Error> {
        let flight = format!("{}\u{0}{}", slot.alias, slot.key);
        let fetched = self
            .cache
            .flights()
            .run(&flight, || async {
                if let Some(fresh) = self.fresh(slot).await {
                    return Ok(Arc::new(fresh));
                }
                self.fill(slot, args).await.map(Arc::new)
            })
            .await?;
        Ok(Fresh::clone(&fetched))
    }

    /// [`refresh_once`](Self::refresh_once), for at most the job's
    /// `fetch_hard_timeout`: past it, [`Error::FetchTimeout`] while the fetch
    /// goes on.
    pub(super) async fn refresh_bounded(
        &self,
        slot: &Slot<'_>,
        args: &J::Args,
    ) -> Result<Fresh<J::Output>, Error> {
        let Some(after) = self.job.fetch_hard_timeout().filter(|_| self.timeouts_apply()) else {
            return self.refresh_once(slot, args).await;
        };
        match tokio::time::timeout(after, self.refresh_once(slot, args)).await {
            Ok(fetched) => fetched,
            Err(_) => {
                self.metrics.fetch_timed_out(true);
                warn!(target: "cacheback", job = %J::name(), key = %slot.key, "The fetch took longer than fetch_hard_timeout ({after:?}); failing the read");
                Err(Error::FetchTimeout { job: J::name().into_owned(), key: slot.key.clone(), after })
            }
        }
    }

    /// The synchronous refresh of an item with stale data to serve:
    /// [`refresh_bounded`](Self::refresh_bounded), or `None` once the job's
    /// `fetch_soft_timeout` has passed (the caller serves the stale data;
    /// the fetch goes on).
    pub(super) async fn refresh_or_serve_stale(
        &self,
        slot: &Slot<'_>,
        args: &J::Args,
    ) -> Result<Option<Fresh<J::Output>>, Error> {
        let Some(after) = self.job.fetch_soft_timeout().filter(|_| self.timeouts_apply()) else {
            return self.refresh_bounded(slot, args).await.map(Some);
        };
        match tokio::time::timeout(after, self.refresh_bounded(slot, args)).await {
            Ok(fetched) => fetched.map(Some),
            Err(_) => {
                self.metrics.fetch_timed_out(false);
                debug!(target: "cacheback", job = %J::name(), key = %slot.key, "The fetch took longer than fetch_soft_timeout ({after:?}); serving the stale item");
                Ok(None)
            }
        }
    }

    /// Whether the job's fetch timeouts apply: a fetch a reader stops
    /// waiting for must go on without it, on a task running the job rebuilt
    /// by its registered factory. For a job that is not registered they do
    /// not (logged once): cut short, its fetch would never land.
    pub(super) fn timeouts_apply(&self) -> bool {
        let name = J::name();
        if self.cache.is_registered(&name) {
            return true;
        }
        if self.cache.first_time(format!("timeouts {name}")) {
            warn!(
                target: "cacheback",
                job = %name,
                "Job {name} has a fetch timeout but is not registered with this engine: a fetch cannot \
                 go on without its reader, so the timeouts do not apply. Register the job"
            );
        }
        false
    }

    /// The item if the store holds it fresh, with data.
    pub(super) async fn fresh(&self, slot: &Slot<'_>) -> Option<Fresh<J::Output>> {
        let item = self.load(slot).await.ok()?.item()?;
        if item.expiry <= self.cache.now() {
            return None;
        }
        self.fresh_of(item)
    }

    /// Fetches and stores under the key's fill claim, or waits for the
    /// process that holds it. Fails open: if the claim cannot be taken (the
    /// store is down), or its holder does not deliver within the job's
    /// `fill_wait` (its process died or hangs), this call fetches itself; if
    /// the holder lets go without a fresh item (its fetch failed, its caller
    /// was cancelled), this call claims it in turn.
    pub(super) async fn fill(&self, slot: &Slot<'_>, args: &J::Args) -> Result<Fresh<J::Output>, Error> {
        let give_up = self.fill_deadline();
        loop {
            let token = crate::id::unique_hex(12);
            let now = self.cache.now();
            let claimed = slot.store.claim(&slot.key, &token, now, self.job.timeout(now, args)).await;
            if let Ok(won) = claimed {
                self.metrics.claim(Claim::Fill, won);
            }
            match claimed {
                Ok(true) => return self.fill_claimed(slot, args, token).await,
                Ok(false) => match self.wait_for_fill(slot, give_up).await {
                    Waited::Filled(fresh) => return Ok(fresh),
                    Waited::Released => {}
                    Waited::GaveUp => {
                        self.metrics.fill_gave_up();
                        warn!(
                            target: "cacheback",
                            job = %J::name(),
                            key = %slot.key,
                            "Another process's fill of this key took longer than fill_wait; fetching"
                        );
                        return self.fetch_for_reader(slot, args).await;
                    }
                },
                // Unable to take the fill claim (the store is down, or refuses
                // writes): fetch.
                Err(e) => {
                    self.write_refused(Write::Claim, slot.error("claim", e))?;
                    return self.fetch_for_reader(slot, args).await;
                }
            }
        }
    }

    /// Fetches and stores while holding the fill claim `token`; releases it
    /// when done, and, if this future is dropped first (its caller went
    /// away), in the background, so that waiters take over at once.
    async fn fill_claimed(
        &self,
        slot: &Slot<'_>,
        args: &J::Args,
        token: String,
    ) -> Result<Fresh<J::Output>, Error> {
        let claim = HeldClaim { store: Some(Arc::clone(slot.store)), key: slot.key.clone(), token };
        // A fetch a reader may stop waiting for runs on a task of its own,
        // so that it completes and stores for the next reader.
        if (self.job.fetch_soft_timeout().is_some() || self.job.fetch_hard_timeout().is_some())
            && let Some(fill) = self.detach(slot, args)
        {
            return self.run_detached(slot, fill, claim).await;
        }
        let fetched = self.fetch_for_reader(slot, args).await;
        claim.release().await;
        fetched
    }

    /// The fill of `args` as a future that owns what it needs: the job
    /// rebuilt by its registered factory from its `init_state`, as a worker
    /// would. `None` for a job that is not registered or does not rebuild
    /// (logged): its fetch runs in the reader, and a timeout cuts it short.
    fn detach(&self, slot: &Slot<'_>, args: &J::Args) -> Option<BoxFuture<'static, Result<Detached, Error>>> {
        let refresher = self.cache.refresher_of(&J::name())?;
        let detached = self.payload(slot, args).and_then(|payload| refresher.detach(&self.cache, &payload));
        match detached {
            Ok(fill) => Some(fill),
            Err(err) => {
                warn!(target: "cacheback", error = %err, "Unable to run the fetch on a task of its own; fetching in the reader");
                None
            }
        }
    }

    /// Runs a detached fill on a task that holds the fill claim until it has
    /// stored; waits for it (a reader that stops waiting leaves it running).
    async fn run_detached(
        &self,
        slot: &Slot<'_>,
        fill: BoxFuture<'static, Result<Detached, Error>>,
        claim: HeldClaim,
    ) -> Result<Fresh<J::Output>, Error> {
        // Bounded like a queued refresh: past the refresh timeout the claim
        // has expired and another fetch may have landed; this one is dropped.
        let (after, job, key) = (self.job.refresh_timeout(), J::name().into_owned(), slot.key.clone());
        let task = tokio::spawn(async move {
            let filled = match tokio::time::timeout(after, fill).await {
                Ok(filled) => filled,
                Err(_) => {
                    warn!(target: "cacheback", %job, %key, "A fetch outlived the refresh timeout ({after:?}): abandoned, not stored");
                    Err(Error::FetchTimeout { job, key, after })
                }
            };
            claim.release().await;
            filled
        });
        let failed =
            |source: SharedError| Error::Fetch { job: J::name().into_owned(), key: slot.key.clone(), source };
        let filled = task.await.map_err(|e| failed(Arc::new(e)))??;
        let fresh = filled.downcast::<Fresh<J::Output>>().map_err(|_| Error::Decode {
            key: slot.key.clone(),
            type_name: std::any::type_name::<J::Output>(),
            message: "the job registered under this name has another output type".to_owned(),
        })?;
        Ok(Fresh::clone(&fresh))
    }

    /// How long from now a wait for another process's fill lasts: the job's
    /// `fill_wait`, never past its refresh timeout (which bounds the claim).
    fn fill_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.job.fill_wait().min(self.job.refresh_timeout())
    }

    /// Polls for the fresh item another process is filling, until `give_up`.
    pub(super) async fn wait_for_fill(
        &self,
        slot: &Slot<'_>,
        give_up: tokio::time::Instant,
    ) -> Waited<J::Output> {
        let mut pause = FILL_POLL_FIRST;
        loop {
            tokio::time::sleep(pause.min(give_up.saturating_duration_since(tokio::time::Instant::now())))
                .await;
            // The claim is read before the item: a holder stores, then releases.
            let held = slot.store.is_claimed(&slot.key, self.cache.now()).await.unwrap_or(false);
            if let Some(fresh) = self.fresh(slot).await {
                return Waited::Filled(fresh);
            }
            if !held {
                return Waited::Released;
            }
            if tokio::time::Instant::now() >= give_up {
                return Waited::GaveUp;
            }
            pause = (pause * 2).min(FILL_POLL_MAX);
        }
    }

    pub(super) async fn fetch(&self, slot: &Slot<'_>, args: &J::Args) -> Result<Arc<J::Output>, Error> {
        self.job.fetch(args).await.map(Arc::new).map_err(|source| Error::Fetch {
            job: J::name().into_owned(),
            key: slot.key.clone(),
            source: source.into(),
        })
    }

    /// Fetches and stores a fresh item: a refresh, counted and timed (and,
    /// in the caller, in a `cacheback.refresh` span: a worker's refresh has
    /// its span from [`Cacheback::perform`]). `Err` when the fetch failed;
    /// whether the store kept the data is the caller's to weigh
    /// ([`Refreshed::landed`], or [`fetch_for_reader`](Self::fetch_for_reader)).
    pub(super) async fn fetch_and_store(
        &self,
        slot: &Slot<'_>,
        args: &J::Args,
        mode: Mode,
    ) -> Result<Refreshed<J::Output>, Error> {
        let refresh = async {
            let fetched_at = self.cache.now();
            // The versions of its tags before the fetch: an invalidation
            // while it runs leaves the item stale.
            let versions = tags::read_versions(&**slot.store, &slot.tags).await;
            // The data this refresh starts from, if the store holds any: a
            // refetch may find it not modified and keep it.
            let data = match self.load(slot).await {
                Ok(Read::Found(raw, CachedItem { data: Some(stale), .. })) => {
                    match self.refetch(slot, args, &stale).await? {
                        Refetched::Modified(data) => Arc::new(data),
                        Refetched::NotModified => {
                            return self.renew(slot, args, &raw, stale, fetched_at, versions).await;
                        }
                    }
                }
                _ => self.fetch(slot, args).await?,
            };
            let expiry = self.expiry_of(args, &data);
            let took = self.cache.now() - fetched_at;
            let item = CachedItem::new(expiry, Some(Arc::clone(&data)), Some(fetched_at))
                .with_took(took)
                .with_tags(versions);
            let kept = self.store_item(slot, item).await;
            Ok(Refreshed { fresh: Fresh { data, fetched_at, expiry: Some(expiry) }, kept })
        };
        self.refreshing(slot, mode, refresh).await
    }

    /// A reader's synchronous refresh: [`fetch_and_store`](Self::fetch_and_store),
    /// where a store that refuses the write (a demoted master, an
    /// out-of-memory Redis, an ACL) does not fail a read that has data to
    /// serve: the data is served as fetched without the cache (no expiry),
    /// the refusal logged (at most every 10 s) and counted.
    async fn fetch_for_reader(&self, slot: &Slot<'_>, args: &J::Args) -> Result<Fresh<J::Output>, Error> {
        let Refreshed { fresh, kept } = self.fetch_and_store(slot, args, Mode::Sync).await?;
        match kept {
            Ok(()) => Ok(fresh),
            Err(err) => {
                self.write_refused(Write::Set, err)?;
                Ok(Fresh { expiry: None, ..fresh })
            }
        }
    }

    /// [`Job::refetch`] of the stale data.
    async fn refetch(
        &self,
        slot: &Slot<'_>,
        args: &J::Args,
        stale: &J::Output,
    ) -> Result<Refetched<J::Output>, Error> {
        self.job.refetch(args, stale).await.map_err(|source| Error::Fetch {
            job: J::name().into_owned(),
            key: slot.key.clone(),
            source: source.into(),
        })
    }

    /// Keeps the stale data (a refetch found it not modified): stored again
    /// as it is (`raw`'s bytes, or the same `Arc`), with a new expiry, fetch
    /// time and tag versions.
    async fn renew(
        &self,
        slot: &Slot<'_>,
        args: &J::Args,
        raw: &StoredValue,
        data: Arc<J::Output>,
        fetched_at: Timestamp,
        versions: Option<crate::item::TagVersions>,
    ) -> Result<Refreshed<J::Output>, Error> {
        let expiry = self.expiry_of(args, &data);
        let took = self.cache.now() - fetched_at;
        let item = CachedItem::new(expiry, Some(Arc::clone(&data)), Some(fetched_at))
            .with_took(took)
            .with_tags(versions);
        let renewed = item::renew(raw, &item)?;
        let kept =
            slot.store.set(&slot.key, renewed, self.job.cache_ttl()).await.map_err(|e| slot.error("set", e));
        if kept.is_ok()
            && let Some(local) = slot.local
        {
            local.put(&slot.key, &item, self.cache.now());
        }
        Ok(Refreshed { fresh: Fresh { data, fetched_at, expiry: Some(expiry) }, kept })
    }

    /// Runs `refresh`, counting and timing it in the job's metrics.
    pub(super) async fn refreshing<T: Landed>(
        &self,
        slot: &Slot<'_>,
        mode: Mode,
        refresh: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        // A worker's refresh has its span from `Cacheback::perform`.
        let span = match mode {
            Mode::Sync => telemetry::refresh_span(&J::name(), &slot.key, mode),
            Mode::Queued => tracing::Span::none(),
        };
        let started = Instant::now();
        let result = refresh.instrument(span.clone()).await;
        let outcome =
            if result.as_ref().is_ok_and(Landed::has_landed) { Outcome::Ok } else { Outcome::Error };
        span.record("outcome", outcome.as_str());
        self.metrics.refreshed(mode, outcome, Some(started.elapsed()));
        result
    }

    pub(super) async fn dispatch(&self, slot: &Slot<'_>, args: &J::Args) -> Dispatch {
        let dispatch = self.try_dispatch(slot, args).await;
        self.metrics.dispatched(dispatch);
        dispatch
    }

    pub(super) async fn try_dispatch(&self, slot: &Slot<'_>, args: &J::Args) -> Dispatch {
        // A job this engine cannot rebuild from a payload, no worker built
        // the same way can either: queued, its refresh would fail there
        // while readers wait out the refresh timeout.
        if !self.cache.may_queue(&J::name()) {
            return self.refresh_inline(slot, args).await;
        }
        let Err(err) = self.enqueue(slot, args).await else { return Dispatch::Enqueued };
        error!(
            target: "cacheback",
            error = %err,
            "Unable to trigger task asynchronously - failing over to synchronous refresh"
        );
        self.refresh_inline(slot, args).await
    }

    /// A refresh in this call, where it could not be queued.
    async fn refresh_inline(&self, slot: &Slot<'_>, args: &J::Args) -> Dispatch {
        match self.fetch_and_store(slot, args, Mode::Sync).await.and_then(Refreshed::landed) {
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

    pub(super) async fn enqueue(&self, slot: &Slot<'_>, args: &J::Args) -> Result<(), Error> {
        let payload = self.payload(slot, args)?;
        self.cache
            .queue()
            .enqueue(payload, &self.job.task_options())
            .await
            .map_err(|source| Error::Queue { job: J::name().into_owned(), source })
    }

    /// The refresh of prepared `args`, as a payload.
    fn payload(&self, slot: &Slot<'_>, args: &J::Args) -> Result<RefreshPayload, Error> {
        let args = serde_json::to_value(args).map_err(|e| Error::Encode {
            type_name: std::any::type_name::<J::Args>(),
            message: e.to_string(),
        })?;
        Ok(RefreshPayload {
            job: J::name().into_owned(),
            state: self.job.init_state(),
            args,
            key: slot.key.clone(),
            queued_at: Some(self.cache.now()),
            trace: crate::trace_context::current(),
        })
    }

    /// A detached fill's work (`Refresher::detach`): fetch and store
    /// prepared `args`, as a reader's synchronous refresh.
    pub(crate) async fn fill_detached(&self, args: &J::Args) -> Result<Fresh<J::Output>, Error> {
        self.fetch_for_reader(&self.slot(args)?, args).await
    }
}

/// A refresh that fetched: its data, and whether the store kept it.
pub(super) struct Refreshed<T> {
    fresh: Fresh<T>,
    kept: Result<(), Error>,
}

impl<T> Refreshed<T> {
    /// The data if the store kept it, else the store's error: for a refresh
    /// that must land (a worker's, [`JobHandle::refresh`], a failover).
    pub(super) fn landed(self) -> Result<Fresh<T>, Error> {
        self.kept.map(|()| self.fresh)
    }
}

/// Whether a refresh's result is a success in the metrics: data fetched and
/// kept.
pub(super) trait Landed {
    fn has_landed(&self) -> bool;
}

impl<T> Landed for Refreshed<T> {
    fn has_landed(&self) -> bool {
        self.kept.is_ok()
    }
}

/// Data fetched without the cache (its store could not be read).
impl<T> Landed for Arc<T> {
    fn has_landed(&self) -> bool {
        true
    }
}

/// How a wait for another process's fill ended.
pub(super) enum Waited<T> {
    /// The item is fresh: the holder stored it.
    Filled(Fresh<T>),
    /// The claim is gone without a fresh item (the fetch failed, or its
    /// caller was cancelled): claim it in turn.
    Released,
    /// `fill_wait` passed with the claim still held.
    GaveUp,
}

/// A fill claim this process holds: released by [`release`](Self::release),
/// or, if dropped before (the fill's future was cancelled), by a task of its
/// own, as `Drop` cannot wait for the store.
pub(super) struct HeldClaim {
    store: Option<Arc<dyn CacheStore>>,
    key: String,
    token: String,
}

impl HeldClaim {
    /// The claim of `key` that `token` holds in `store`.
    pub(super) fn new(store: &Arc<dyn CacheStore>, key: &str, token: String) -> Self {
        Self { store: Some(Arc::clone(store)), key: key.to_owned(), token }
    }

    /// No claim: a fill that goes on without one (the store refused it).
    pub(super) fn none() -> Self {
        Self { store: None, key: String::new(), token: String::new() }
    }

    /// Releases the claim; a failure is logged (the claim then expires with
    /// the refresh timeout).
    pub(super) async fn release(mut self) {
        if let Some(store) = self.store.take() {
            release(&*store, &self.key, &self.token).await;
        }
    }
}

async fn release(store: &dyn CacheStore, key: &str, token: &str) {
    if let Err(e) = store.release(key, token).await {
        warn!(target: "cacheback", error = %e, %key, "Unable to release the fill claim");
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else { return };
        let (key, token) = (std::mem::take(&mut self.key), std::mem::take(&mut self.token));
        // Outside a runtime (the runtime itself is shutting down) the claim
        // expires with the refresh timeout instead.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release(&*store, &key, &token).await });
        }
    }
}
