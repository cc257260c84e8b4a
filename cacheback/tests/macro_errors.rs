//! `#[cacheback]` refuses what it cannot cache, at compile time, with a
//! message saying why.

#[test]
fn unsupported_signatures_fail_to_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
