//! The cache policies as data: [`Options`], their defaults, and [`Policy`],
//! the policies of a cached function.
//!
//! Every policy is written once, in the table of the `policies!` macro below:
//! its field of [`Options`] (with its default and serde name), its `with_*`
//! setter (on [`Options`] and on every job kind that carries options), its
//! method on [`Job`](crate::Job) and on [`Policy`] (both reading
//! [`Options`] by default), and the delegation of a `#[cacheback]` function's
//! job to its policy. [`Options::NAMES`] lists them; the `#[cacheback]`
//! attribute's options are checked against that list by the test suite.
//!
//! ```
//! use std::time::Duration;
//! use cacheback::policy::{DEFAULT_LIFETIME, Options};
//! let options = Options::default().with_lifetime(Duration::from_secs(30)).with_cache_alias("slow");
//! assert_eq!(options.lifetime, Duration::from_secs(30));
//! assert_eq!(Options::default().lifetime, DEFAULT_LIFETIME);
//! assert!(Options::NAMES.contains(&"refresh_timeout"));
//! ```

use std::sync::LazyLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default [`lifetime`](Options::lifetime): 10 minutes.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Default [`refresh_timeout`](Options::refresh_timeout): 1 minute.
pub const DEFAULT_REFRESH_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`cache_ttl`](Options::cache_ttl): 30 days, memcached's longest expiration.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(2_592_000);
/// Default [`fill_wait`](Options::fill_wait): 5 seconds. Several times a slow
/// read (a fill that takes longer is rare, and then a second fetch costs less
/// than a page that hangs), and a twelfth of the default refresh timeout, the
/// whole wait before this policy existed.
pub const DEFAULT_FILL_WAIT: Duration = Duration::from_secs(5);
/// Default [`fetch_on_miss`](Options::fetch_on_miss): a MISS fetches synchronously.
pub const DEFAULT_FETCH_ON_MISS: bool = true;
/// Default [`set_data_kwarg`](Options::set_data_kwarg): `data`.
pub const DEFAULT_SET_DATA_KWARG: &str = "data";

/// The policy table: calls `$then!` with one entry per policy.
///
/// An entry: its doc, `name: FieldType = default`, the setter's argument and
/// how it becomes the field, and the getter's name (the policy's, but for
/// `static_tags`: [`Job::tags`](crate::Job::tags) takes the arguments),
/// return type and body (`o` is the [`Options`]).
macro_rules! policies {
    ($then:ident) => {
        $then! {
            /// How long an item is fresh. After it, reads are STALE and trigger a refresh.
            lifetime: ::std::time::Duration = $crate::policy::DEFAULT_LIFETIME;
                with_lifetime(value: ::std::time::Duration) value;
                lifetime(o) -> ::std::time::Duration { o.lifetime }
            /// How long a queued refresh is trusted to finish; no second refresh of
            /// the item is queued before it passes.
            refresh_timeout: ::std::time::Duration = $crate::policy::DEFAULT_REFRESH_TIMEOUT;
                with_refresh_timeout(value: ::std::time::Duration) value;
                refresh_timeout(o) -> ::std::time::Duration { o.refresh_timeout }
            /// The longest a reader waits for another process's fill of a cold
            /// (or too stale) key before it fetches itself (fail-open: the
            /// holder may have died or hung). Never longer than the refresh
            /// timeout, which bounds the claim itself.
            fill_wait: ::std::time::Duration = $crate::policy::DEFAULT_FILL_WAIT;
                with_fill_wait(value: ::std::time::Duration) value;
                fill_wait(o) -> ::std::time::Duration { o.fill_wait }
            /// How long the store keeps an item at all. After it, reads are a MISS.
            cache_ttl: ::std::time::Duration = $crate::policy::DEFAULT_CACHE_TTL;
                with_cache_ttl(value: ::std::time::Duration) value;
                cache_ttl(o) -> ::std::time::Duration { o.cache_ttl }
            /// Whether a MISS fetches synchronously (`true`) or returns
            /// [`empty`](crate::Job::empty) while a refresh is queued.
            fetch_on_miss: bool = $crate::policy::DEFAULT_FETCH_ON_MISS;
                with_fetch_on_miss(value: bool) value;
                fetch_on_miss(o) -> bool { o.fetch_on_miss }
            /// An age past which a STALE item is too old to serve: it is fetched
            /// synchronously instead. As in the original, the age counts from the
            /// item's last store, and a refresh re-stores a stale item with the
            /// refresh timeout as its expiry, so an item whose refreshes keep
            /// failing can be served older than this (see `max_stale_age`).
            /// `None` (the default) always serves stale items.
            fetch_on_stale_threshold: Option<::std::time::Duration> = None;
                with_fetch_on_stale_threshold(value: ::std::time::Duration) Some(value);
                fetch_on_stale_threshold(o) -> Option<::std::time::Duration> { o.fetch_on_stale_threshold }
            /// How long past its last successful fetch a stale item may still be
            /// served when a synchronous fetch of it fails (RFC 5861's
            /// `stale-if-error`): the lookup answers STALE with the refresh marked
            /// failed, and a background refresh is queued. `None` (the default, as
            /// in the original): the fetch's error reaches the caller.
            stale_if_error: Option<::std::time::Duration> = None;
                with_stale_if_error(value: ::std::time::Duration) Some(value);
                stale_if_error(o) -> Option<::std::time::Duration> { o.stale_if_error }
            /// An age, counted from the item's last successful fetch, past which a
            /// stale item is fetched synchronously however often it was re-stored
            /// for refreshes that did not land (unlike `fetch_on_stale_threshold`,
            /// which counts from the last re-store). `None` (the default): no bound.
            max_stale_age: Option<::std::time::Duration> = None;
                with_max_stale_age(value: ::std::time::Duration) Some(value);
                max_stale_age(o) -> Option<::std::time::Duration> { o.max_stale_age }
            /// How long a reader waits for a synchronous fetch of an item that
            /// has stale data to serve (past `fetch_on_stale_threshold` or
            /// `max_stale_age`): past it, the reader gets the stale data
            /// (`Lookup::timed_out`) and the fetch goes on in the background,
            /// under the same claim, and stores its result. `None` (the
            /// default): no bound.
            fetch_soft_timeout: Option<::std::time::Duration> = None;
                with_fetch_soft_timeout(value: ::std::time::Duration) Some(value);
                fetch_soft_timeout(o) -> Option<::std::time::Duration> { o.fetch_soft_timeout }
            /// How long a reader waits for any synchronous fetch (a cold miss
            /// included): past it, the reader fails with
            /// [`Error::FetchTimeout`](crate::Error::FetchTimeout) and the fetch
            /// goes on in the background and stores its result, for the next
            /// reader. `None` (the default): no bound.
            fetch_hard_timeout: Option<::std::time::Duration> = None;
                with_fetch_hard_timeout(value: ::std::time::Duration) Some(value);
                fetch_hard_timeout(o) -> Option<::std::time::Duration> { o.fetch_hard_timeout }
            /// Probabilistic early refresh (XFetch: Vattani, Chierichetti and
            /// Lowenstein, VLDB 2015), its β: a HIT at `now` on an item whose
            /// last fetch took δ (on the engine's clock) queues a refresh,
            /// still answering with the data it has, when `now − δ·β·ln(u)`
            /// reaches the item's expiry (`u` uniform in (0, 1]). A key read
            /// often is then refreshed shortly before it goes stale, about
            /// once per lifetime however many readers it has, and none of them
            /// sees it STALE; `1.0` is the paper's choice, more refreshes
            /// earlier. `None` (the default): off.
            early_refresh: Option<f64> = None;
                with_early_refresh(value: f64) Some(value);
                early_refresh(o) -> Option<f64> { o.early_refresh }
            /// The store alias; `None` uses the settings' `cache_alias`.
            cache_alias: Option<String> = None;
                with_cache_alias(value: impl Into<String>) Some(value.into());
                cache_alias(o) -> Option<&str> { o.cache_alias.as_deref() }
            /// Queue routing and retry for this job's refreshes.
            task_options: $crate::task::TaskOptions = $crate::task::TaskOptions::default();
                with_task_options(value: $crate::task::TaskOptions) value;
                task_options(o) -> $crate::task::TaskOptions { o.task_options.clone() }
            /// The name of the field carrying the data in
            /// [`set_call`](crate::JobHandle::set_call) (the original's `set_data_kwarg`).
            set_data_kwarg: String = $crate::policy::DEFAULT_SET_DATA_KWARG.to_owned();
                with_set_data_kwarg(value: impl Into<String>) value.into();
                set_data_kwarg(o) -> &str { &o.set_data_kwarg }
            /// Tags every item of the job carries, whatever its arguments (the
            /// `#[cacheback(tags = [..])]` attribute): an
            /// [`invalidate_tag`](crate::Cacheback::invalidate_tag) of one
            /// makes them all stale. [`Job::tags`](crate::Job::tags) starts
            /// from these. None by default.
            tags: Vec<String> = Vec::new();
                with_tags(value: impl IntoIterator<Item = impl Into<String>>) value.into_iter().map(Into::into).collect();
                static_tags(o) -> &[String] { &o.tags }
        }
    };
}

/// Defines [`Options`] from the table.
macro_rules! options_type {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = $default:expr;
        $setter:ident($value:ident: $arg:ty) $into:expr; $getter:ident($o:ident) -> $ret:ty $get:block)*) => {
        /// The policies of a job as data (the original decorator's arguments,
        /// and its `job_class_kwargs` as [`extra`](Self::extra)): what
        /// [`FunctionJob`](crate::function::FunctionJob), `#[cacheback]`
        /// functions and the ORM jobs carry, what a worker rebuilds them from,
        /// and what every [`Job`](crate::Job) policy method reads by default.
        ///
        /// ```
        /// use std::time::Duration;
        /// use cacheback::policy::Options;
        /// let options = Options::default().with_lifetime(Duration::from_secs(30)).with_fetch_on_miss(false);
        /// assert_eq!(options.lifetime, Duration::from_secs(30));
        /// assert_eq!(options.cache_alias, None);
        /// ```
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        #[non_exhaustive]
        pub struct Options {
            $(
                $(#[doc = $doc])*
                pub $name: $ty,
            )*
            /// Options for a custom [`Policy`] (the original's `job_class_kwargs`).
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl Default for Options {
            fn default() -> Self {
                Self { $($name: $default,)* extra: serde_json::Map::new() }
            }
        }

        impl Options {
            /// The names of the policies, as fields, setters (`with_<name>`) and
            /// `#[cacheback]` options.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];
        }
    };
}

/// `with_<policy>` setters, for a type with `fn options_mut(&mut self) -> &mut Options`.
macro_rules! setters {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = $default:expr;
        $setter:ident($value:ident: $arg:ty) $into:expr; $getter:ident($o:ident) -> $ret:ty $get:block)*) => {
        $(
            #[doc = concat!("Sets [`", stringify!($name), "`](crate::policy::Options::", stringify!($name), ").")]
            #[must_use]
            pub fn $setter(mut self, $value: $arg) -> Self {
                self.options_mut().$name = $into;
                self
            }
        )*
    };
}

/// The policy methods of [`Job`](crate::Job) and [`Policy`], reading `self.options()`.
macro_rules! policy_methods {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = $default:expr;
        $setter:ident($value:ident: $arg:ty) $into:expr; $getter:ident($o:ident) -> $ret:ty $get:block)*) => {
        $(
            $(#[doc = $doc])*
            fn $getter(&self) -> $ret {
                let $o = self.options();
                $get
            }
        )*
    };
}

/// `Job` policy methods that ask `self.policy()`.
macro_rules! delegate_to_policy {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = $default:expr;
        $setter:ident($value:ident: $arg:ty) $into:expr; $getter:ident($o:ident) -> $ret:ty $get:block)*) => {
        $(
            fn $getter(&self) -> $ret {
                self.policy().$getter()
            }
        )*
    };
}

pub(crate) use {delegate_to_policy, policies, policy_methods, setters};

policies!(options_type);

impl Options {
    /// The defaults, shared: what [`Job::options`](crate::Job::options) returns
    /// unless a job carries its own.
    ///
    /// ```
    /// assert_eq!(cacheback::policy::Options::defaults(), &cacheback::policy::Options::default());
    /// ```
    pub fn defaults() -> &'static Options {
        static DEFAULTS: LazyLock<Options> = LazyLock::new(Options::default);
        &DEFAULTS
    }

    fn options_mut(&mut self) -> &mut Options {
        self
    }

    policies!(setters);

    /// Adds an [`extra`](Self::extra) option.
    ///
    /// ```
    /// let options = cacheback::policy::Options::default().with_extra("tier", "gold");
    /// assert_eq!(options.extra["tier"], "gold");
    /// ```
    #[must_use]
    pub fn with_extra(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }
}

/// Whether an item stale by `delta` (time past its expiry) is past
/// `fetch_on_stale_threshold`, which counts from the item's last store: an
/// item is re-stored with its data when a refresh is queued, so, as in the
/// original, the threshold is measured from `expiry - lifetime`.
pub(crate) fn past_stale_threshold(threshold: Option<Duration>, lifetime: Duration, delta: Duration) -> bool {
    threshold.is_some_and(|threshold| delta > threshold.saturating_sub(lifetime))
}

/// The policies of a cached function: [`Options`] by default, or a custom
/// type named by the attribute's `job = ...` (the original's `job_class`),
/// which can override any policy.
///
/// ```
/// use std::time::Duration;
/// use cacheback::policy::{Options, Policy};
///
/// /// Refreshes in the background on a miss, whatever the options say,
/// /// and keeps items an extra `grace` seconds.
/// struct Lazy(Options);
///
/// impl Policy for Lazy {
///     fn from_options(options: Options) -> Self { Lazy(options) }
///     fn options(&self) -> &Options { &self.0 }
///     fn fetch_on_miss(&self) -> bool { false }
///     fn cache_ttl(&self) -> Duration {
///         let grace = self.0.extra.get("grace").and_then(|v| v.as_u64()).unwrap_or(0);
///         self.0.cache_ttl + Duration::from_secs(grace)
///     }
/// }
/// let lazy = Lazy::from_options(Options::default().with_extra("grace", 60));
/// assert!(!lazy.fetch_on_miss());
/// assert_eq!(lazy.cache_ttl(), Duration::from_secs(2_592_060));
/// ```
pub trait Policy: Send + Sync + 'static {
    /// Builds the policy from the function's options.
    fn from_options(options: Options) -> Self
    where
        Self: Sized;

    /// The options it was built from.
    fn options(&self) -> &Options;

    policies!(policy_methods);

    /// See [`Job::should_stale_item_be_fetched_synchronously`](crate::Job::should_stale_item_be_fetched_synchronously).
    fn should_stale_item_be_fetched_synchronously(&self, delta: Duration) -> bool {
        past_stale_threshold(self.fetch_on_stale_threshold(), self.lifetime(), delta)
    }
}

impl Policy for Options {
    fn from_options(options: Options) -> Self {
        options
    }
    fn options(&self) -> &Options {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskOptions;

    #[test]
    fn every_setter_sets_its_field_and_names_follow_the_fields() {
        let set = Options::default()
            .with_lifetime(Duration::from_secs(1))
            .with_refresh_timeout(Duration::from_secs(2))
            .with_cache_ttl(Duration::from_secs(3))
            .with_fill_wait(Duration::from_secs(7))
            .with_fetch_on_miss(false)
            .with_fetch_on_stale_threshold(Duration::from_secs(4))
            .with_stale_if_error(Duration::from_secs(5))
            .with_max_stale_age(Duration::from_secs(6))
            .with_fetch_soft_timeout(Duration::from_secs(8))
            .with_fetch_hard_timeout(Duration::from_secs(9))
            .with_early_refresh(1.5)
            .with_cache_alias("a")
            .with_task_options(TaskOptions::default().queue("q"))
            .with_set_data_kwarg("d")
            .with_tags(["t"]);
        let (set, default) =
            (serde_json::to_value(set).unwrap(), serde_json::to_value(Options::default()).unwrap());
        let fields: Vec<_> = set.as_object().unwrap().keys().filter(|k| *k != "extra").cloned().collect();
        let mut names: Vec<_> = Options::NAMES.iter().map(|n| (*n).to_owned()).collect();
        names.sort();
        assert_eq!(fields, names, "NAMES lists every policy field");
        for name in Options::NAMES {
            assert_ne!(set[name], default[name], "the chain above sets `{name}`");
        }
    }
}
