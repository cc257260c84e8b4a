//! The Rust blocks of the repository's README and docs, compiled (and, unless
//! marked `no_run`, run) as doctests: `cargo test -p cacheback --all-features --doc`.
//! `cacheback/README.md` is the crate's front page and is doctested from `lib.rs`.

#[doc = include_str!("../../README.md")]
pub struct Readme;

#[doc = include_str!("../../docs/usage.md")]
pub struct Usage;

#[doc = include_str!("../../docs/api.md")]
pub struct Api;

#[doc = include_str!("../../docs/advanced.md")]
pub struct Advanced;

#[doc = include_str!("../../docs/settings.md")]
pub struct Settings;

#[doc = include_str!("../../docs/installation.md")]
pub struct Installation;

#[doc = include_str!("../../docs/observability.md")]
pub struct Observability;
