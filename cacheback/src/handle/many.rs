//! Bulk reads: [`JobHandle::get_many`] and [`JobHandle::lookup_many`].
//!
//! The single-key flow, in three steps over many keys: every key is read in
//! one [`get_many`](crate::store::CacheStore::get_many) (the local copy first); HITs are
//! answered at once; misses that fetch synchronously are fetched together,
//! in one [`Job::fetch_many`], each under its own fill claim; every other
//! key (STALE, a MISS that queues, an early refresh) takes the single-key
//! path, all of them at once, so their claims and queue pushes share the
//! connection's round trips instead of taking one each.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;
use tracing::warn;

use super::refresh::HeldClaim;
use super::{Fresh, JobHandle, Lookup, Read, Served, Slot};
use crate::error::Error;
use crate::item::CachedItem;
use crate::job::{CacheStatus, Call, Job};
use crate::store::StoredValue;
use crate::tags;
use crate::telemetry::{Claim, Mode, Outcome, Write};

/// One key of a bulk read: where it lives, and the arguments (prepared, and
/// as given) of its first occurrence.
struct Wanted<'h, 'a, J: Job> {
    slot: Slot<'h>,
    args: std::borrow::Cow<'a, J::Args>,
    raw: &'a J::Args,
}

impl<J: Job> JobHandle<J> {
    /// [`get`](Self::get) of each of `args`, in one go: the values in the
    /// order asked.
    ///
    /// ```
    /// # use cacheback::{Cacheback, FetchError, Job};
    /// # struct Double;
    /// # impl Job for Double {
    /// #     type Args = (u32,);
    /// #     type Output = u32;
    /// #     async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> { Ok(n * 2) }
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let double = Cacheback::builder().build().unwrap().job(Double);
    /// let values = double.get_many(&[(1,), (2,)]).await.unwrap();
    /// assert_eq!(values.iter().map(|v| *v.as_deref().unwrap()).collect::<Vec<_>>(), [2, 4]);
    /// # });
    /// ```
    pub async fn get_many(&self, args: &[J::Args]) -> Result<Vec<Option<Arc<J::Output>>>, Error> {
        Ok(self.lookup_many(args).await?.into_iter().map(|found| found.value).collect())
    }

    /// [`lookup`](Self::lookup) of each of `args`, in one go: the answers in
    /// the order asked, each what `lookup` of that argument would answer.
    ///
    /// * The keys the local copy does not answer are read in one
    ///   [`get_many`](crate::store::CacheStore::get_many) (one `MGET` on Redis, with the
    ///   versions of their tags); an argument asked twice is read once, and
    ///   an empty slice reads nothing.
    /// * Misses fetched synchronously are fetched in one
    ///   [`Job::fetch_many`], each under its fill claim: a key another
    ///   process is filling is waited for, as `lookup` waits.
    /// * STALE keys, and misses that queue a refresh, each take `lookup`'s
    ///   path, all at once: of all the readers of a stale key, `get` and
    ///   `get_many` alike, exactly one queues its refresh.
    ///
    /// The first error (a key that cannot be derived, a failed fetch) fails
    /// the whole call.
    ///
    /// ```
    /// # use cacheback::{Cacheback, CacheStatus, FetchError, Job};
    /// # struct Double;
    /// # impl Job for Double {
    /// #     type Args = (u32,);
    /// #     type Output = u32;
    /// #     async fn fetch(&self, (n,): &(u32,)) -> Result<u32, FetchError> { Ok(n * 2) }
    /// # }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let double = Cacheback::builder().build().unwrap().job(Double);
    /// double.get(&(1,)).await.unwrap();
    /// let found = double.lookup_many(&[(1,), (2,)]).await.unwrap();
    /// assert_eq!([found[0].status, found[1].status], [CacheStatus::Hit, CacheStatus::Miss]);
    /// # });
    /// ```
    pub async fn lookup_many(&self, raw_args: &[J::Args]) -> Result<Vec<Lookup<J::Output>>, Error> {
        if raw_args.is_empty() {
            return Ok(Vec::new());
        }
        let (wanted, positions) = self.wanted(raw_args)?;
        let mut answers: Vec<Option<Lookup<J::Output>>> =
            wanted.iter().map(|w| self.local_hit(&w.slot, &Call { args: w.raw })).collect();
        let to_read: Vec<usize> = (0..wanted.len()).filter(|&i| answers[i].is_none()).collect();
        let reads = self.read_many(&wanted, &to_read).await;

        // HITs at once; synchronous misses together; the rest one by one, at once.
        let (mut misses, mut others) = (Vec::new(), Vec::new());
        for (n, (&i, read)) in to_read.iter().zip(&reads).enumerate() {
            let Wanted { slot, args, raw } = &wanted[i];
            if let Some(hit) = self.fresh_hit(slot, read, &Call { args: raw }) {
                answers[i] = Some(hit);
                continue;
            }
            match read {
                Ok(Read::Missing | Read::Undecodable(_))
                    if self.job.should_missing_item_be_fetched_synchronously(args) =>
                {
                    misses.push(i);
                }
                _ => others.push(n),
            }
        }
        let mut reads: Vec<Option<Result<Read<J::Output>, Error>>> = reads.into_iter().map(Some).collect();
        let singles = others.iter().map(|&n| {
            let i = to_read[n];
            let Wanted { slot, args, raw } = &wanted[i];
            let read = reads[n].take().expect("each key is read once");
            async move { (i, self.answer(slot, read, args, &Call { args: raw }).await) }
        });
        let (singles, filled) = futures::join!(join_all(singles), self.fill_many(&wanted, &misses));
        for (i, found) in singles {
            answers[i] = Some(found?);
        }
        for (i, fresh) in misses.into_iter().zip(filled?) {
            let call = Call { args: wanted[i].raw };
            answers[i] = Some(self.finish(Served::Data(fresh), &call, CacheStatus::Miss, Some(true)));
        }

        let answers: Vec<Lookup<J::Output>> =
            answers.into_iter().map(|found| found.expect("every key is answered")).collect();
        for found in &answers {
            self.metrics.lookup(found.status, found.refresh_failed);
        }
        Ok(positions.into_iter().map(|i| answers[i].clone()).collect())
    }

    /// Each key once, in the order first asked, and for each argument the
    /// index of its key.
    #[allow(clippy::type_complexity)]
    fn wanted<'a>(&self, raw_args: &'a [J::Args]) -> Result<(Vec<Wanted<'_, 'a, J>>, Vec<usize>), Error> {
        let mut all = Vec::with_capacity(raw_args.len());
        for raw in raw_args {
            let args = self.job.prepare_args(raw);
            all.push(Wanted { slot: self.slot(&args)?, args, raw });
        }
        // Where each key is first asked.
        let firsts: Vec<usize> = {
            let mut first: HashMap<&str, usize, foldhash::fast::RandomState> =
                HashMap::with_capacity_and_hasher(all.len(), foldhash::fast::RandomState::default());
            all.iter().enumerate().map(|(i, w)| *first.entry(w.slot.key.as_str()).or_insert(i)).collect()
        };
        let (mut wanted, mut index) = (Vec::with_capacity(all.len()), vec![0; all.len()]);
        for (i, w) in all.into_iter().enumerate() {
            if firsts[i] == i {
                index[i] = wanted.len();
                wanted.push(w);
            }
        }
        Ok((wanted, firsts.into_iter().map(|first| index[first]).collect()))
    }

    /// What the store holds under the keys `which` of `wanted`, in one
    /// [`get_many`](crate::store::CacheStore::get_many) with the versions of their tags;
    /// each read as [`read`](Self::read) would give it.
    async fn read_many(
        &self,
        wanted: &[Wanted<'_, '_, J>],
        which: &[usize],
    ) -> Vec<Result<Read<J::Output>, Error>> {
        if which.is_empty() {
            return Vec::new();
        }
        // The items' keys, then the versions of their tags, each once.
        let mut version_keys: Vec<String> = Vec::new();
        let mut version_at: HashMap<&str, usize> = HashMap::new();
        for &i in which {
            for tag in &wanted[i].slot.tags {
                version_at.entry(tag).or_insert_with(|| {
                    version_keys.push(crate::store::tag_version_key(tag));
                    which.len() + version_keys.len() - 1
                });
            }
        }
        let refs: Vec<&str> = which
            .iter()
            .map(|&i| wanted[i].slot.key.as_str())
            .chain(version_keys.iter().map(String::as_str))
            .collect();
        let store = wanted[which[0]].slot.store;
        let got = match store.get_many(&refs).await {
            Ok(got) if got.len() == refs.len() => Ok(got),
            Ok(got) => Err(crate::error::StoreError::new(format!(
                "get_many answered {} values for {} keys",
                got.len(),
                refs.len()
            ))),
            Err(err) => Err(err),
        };
        which
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let slot = &wanted[i].slot;
                let (item, versions) = match &got {
                    Ok(got) => {
                        let versions: Vec<Option<StoredValue>> =
                            slot.tags.iter().map(|tag| got[version_at[tag.as_str()]].clone()).collect();
                        (Ok(got[n].clone()), versions)
                    }
                    Err(err) => (Err(err.clone()), Vec::new()),
                };
                self.noted(slot, self.decoded(slot, item, &versions))
            })
            .collect()
    }

    /// The synchronous fetch of the misses `which` of `wanted`: each key's
    /// fill claim taken at once; the keys this call holds fetched in one
    /// [`Job::fetch_many`] and stored, each claim released when done (or,
    /// if this call is dropped, in the background); a key another process
    /// holds is waited for as `lookup` waits ([`fill`](Self::fill)). The
    /// fresh data in the order of `which`.
    async fn fill_many(
        &self,
        wanted: &[Wanted<'_, '_, J>],
        which: &[usize],
    ) -> Result<Vec<Fresh<J::Output>>, Error> {
        if which.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.cache.now();
        let claims = which.iter().map(|&i| {
            let Wanted { slot, args, .. } = &wanted[i];
            let token = crate::id::unique_hex(12);
            async move {
                let claimed = slot.store.claim(&slot.key, &token, now, self.job.timeout(now, args)).await;
                if let Ok(won) = claimed {
                    self.metrics.claim(Claim::Fill, won);
                }
                match claimed {
                    Ok(true) => Ok(Some(HeldClaim::new(slot.store, &slot.key, token))),
                    Ok(false) => Ok(None),
                    // The store refuses the claim: fetch anyway (fail open), as `fill` does.
                    Err(e) => self
                        .write_refused(Write::Claim, slot.error("claim", e))
                        .map(|()| Some(HeldClaim::none())),
                }
            }
        });
        let claims: Vec<Option<HeldClaim>> = join_all(claims).await.into_iter().collect::<Result<_, _>>()?;
        let (mut held, mut waiting) = (Vec::new(), Vec::new());
        for (n, claim) in claims.into_iter().enumerate() {
            match claim {
                Some(claim) => held.push((n, claim)),
                None => waiting.push(n),
            }
        }
        let waited = waiting.iter().map(|&n| {
            let Wanted { slot, args, .. } = &wanted[which[n]];
            self.refresh_bounded(slot, args)
        });
        let (fetched, waited) = futures::join!(self.fetch_held(wanted, which, &held), join_all(waited));
        let mut fresh: Vec<Option<Fresh<J::Output>>> = (0..which.len()).map(|_| None).collect();
        for ((n, claim), data) in held.into_iter().zip(fetched?) {
            claim.release().await;
            fresh[n] = Some(data);
        }
        for (n, data) in waiting.into_iter().zip(waited) {
            fresh[n] = Some(data?);
        }
        Ok(fresh.into_iter().map(|data| data.expect("every miss is filled")).collect())
    }

    /// Fetches the misses whose fill claims this call holds in one
    /// [`Job::fetch_many`], and stores each: the [`fetch_and_store`](Self::fetch_and_store)
    /// of many keys, counted as a synchronous refresh of each.
    async fn fetch_held(
        &self,
        wanted: &[Wanted<'_, '_, J>],
        which: &[usize],
        held: &[(usize, HeldClaim)],
    ) -> Result<Vec<Fresh<J::Output>>, Error> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&Wanted<'_, '_, J>> = held.iter().map(|(n, _)| &wanted[which[*n]]).collect();
        let first = &keys[0].slot;
        let started = std::time::Instant::now();
        let fetched_at = self.cache.now();
        // The versions of their tags before the fetch (see `fetch_and_store`).
        let versions =
            join_all(keys.iter().map(|w| tags::read_versions(&**w.slot.store, &w.slot.tags))).await;
        let args: Vec<J::Args> = keys.iter().map(|w| w.args.clone().into_owned()).collect();
        let failed = |source: crate::error::SharedError| Error::Fetch {
            job: J::name().into_owned(),
            key: first.key.clone(),
            source,
        };
        let fetched = match self.job.fetch_hard_timeout().filter(|_| self.timeouts_apply()) {
            None => self.job.fetch_many(&args).await,
            Some(after) => match tokio::time::timeout(after, self.job.fetch_many(&args)).await {
                Ok(fetched) => fetched,
                Err(_) => {
                    self.metrics.fetch_timed_out(true);
                    warn!(target: "cacheback", job = %J::name(), keys = keys.len(), "A bulk fetch took longer than fetch_hard_timeout ({after:?}); failing the read");
                    return Err(Error::FetchTimeout {
                        job: J::name().into_owned(),
                        key: first.key.clone(),
                        after,
                    });
                }
            },
        };
        let outcome = |ok: bool| if ok { Outcome::Ok } else { Outcome::Error };
        let data = match fetched {
            Ok(data) if data.len() == args.len() => data,
            Ok(data) => {
                let message =
                    format!("fetch_many answered {} values for {} arguments", data.len(), args.len());
                return Err(failed(crate::error::FetchError::from(message).into()));
            }
            Err(source) => {
                for _ in &keys {
                    self.metrics.refreshed(Mode::Sync, outcome(false), Some(started.elapsed()));
                }
                return Err(failed(source.into()));
            }
        };
        let took = self.cache.now() - fetched_at;
        let stores = keys.iter().zip(data).zip(versions).map(|((w, data), versions)| async move {
            let (slot, data) = (&w.slot, Arc::new(data));
            let expiry = self.expiry_of(&w.args, &data);
            let item = CachedItem::new(expiry, Some(Arc::clone(&data)), Some(fetched_at))
                .with_took(took)
                .with_tags(versions);
            let kept = self.store_item(slot, item).await;
            self.metrics.refreshed(Mode::Sync, outcome(kept.is_ok()), Some(started.elapsed()));
            match kept {
                Ok(()) => Ok(Fresh { data, fetched_at, expiry: Some(expiry) }),
                Err(err) => {
                    self.write_refused(Write::Set, err).map(|()| Fresh { data, fetched_at, expiry: None })
                }
            }
        });
        join_all(stores).await.into_iter().collect()
    }
}
