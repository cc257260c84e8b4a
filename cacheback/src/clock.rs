//! Time as the engine sees it: seconds since the Unix epoch, as `f64`.
//!
//! Expiry timestamps are stored next to the data (the original's `(expiry, data)`
//! pair), so they use wall-clock time shared by every process. Tests inject a
//! [`ManualClock`] instead of sleeping.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub type Timestamp = f64;

/// A source of the current time.
///
/// ```
/// use cacheback::{Clock, SystemClock};
/// assert!(SystemClock.now() > 1_700_000_000.0);
/// ```
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
///
/// ```
/// use cacheback::{Clock, SystemClock};
/// let a = SystemClock.now();
/// assert!(SystemClock.now() >= a);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use cacheback::{Clock, ManualClock};
/// let clock = ManualClock::at(1_458_482_700.0);
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now(), 1_458_482_760.0);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    bits: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock frozen at `now`.
    pub fn at(now: Timestamp) -> Self {
        Self { bits: Arc::new(AtomicU64::new(now.to_bits())) }
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: Timestamp) {
        self.bits.store(now.to_bits(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by.as_secs_f64());
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        f64::from_bits(self.bits.load(Ordering::SeqCst))
    }
}
