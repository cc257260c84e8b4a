//! The Rust blocks of the repository's README and docs, compiled (and, unless
//! marked `no_run`, run) as doctests: `cargo test -p cacheback --all-features --doc`.
//! `cacheback/README.md` is the crate's front page and is doctested from `lib.rs`.
//!
//! The pages whose snippets use the loco glue or the ORM jobs are compiled
//! with those features only, so `cargo test -p cacheback` (no features, what
//! a contributor types first) passes too; `scripts/test` runs both.

#[cfg(all(feature = "loco", feature = "sea-orm"))]
#[doc = include_str!("../../README.md")]
pub struct Readme;

#[cfg(all(feature = "loco", feature = "sea-orm"))]
#[doc = include_str!("../../docs/usage.md")]
pub struct Usage;

#[cfg(all(feature = "loco", feature = "sea-orm"))]
#[doc = include_str!("../../docs/api.md")]
pub struct Api;

#[cfg(all(feature = "loco", feature = "sea-orm"))]
#[doc = include_str!("../../docs/advanced.md")]
pub struct Advanced;

#[cfg(all(feature = "loco", feature = "sea-orm"))]
#[doc = include_str!("../../docs/settings.md")]
pub struct Settings;

#[cfg(all(feature = "loco", feature = "sea-orm"))]
#[doc = include_str!("../../docs/installation.md")]
pub struct Installation;

#[doc = include_str!("../../docs/observability.md")]
pub struct Observability;
