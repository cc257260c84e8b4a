//! `#[cacheback]` refuses what it cannot cache, at compile time, with a
//! message saying why.
//!
//! rustc's notes list the types that implement a missing trait, and that list
//! depends on the crates in the build: the snapshots are for the feature set
//! the test command uses (`--all-features`). Re-bless them with
//! `TRYBUILD=overwrite cargo test -p cacheback --all-features --test macro_errors`.
#![cfg(all(feature = "loco", feature = "sea-orm"))]

#[test]
fn unsupported_signatures_fail_to_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
