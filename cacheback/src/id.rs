//! Unique ids: Sidekiq job ids and the tokens that tell claims apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `bytes` (at most 32) of lowercase hex, unique across processes and calls:
/// a hash of the pid, the time and a counter, which is all an id needs (no
/// secret depends on it, so no random source is needed).
pub(crate) fn unique_hex(bytes: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hasher.finalize().as_bytes()[..bytes.min(32)].iter().map(|b| format!("{b:02x}")).collect()
}
