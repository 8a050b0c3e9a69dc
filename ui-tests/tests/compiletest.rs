//! Runs the trybuild cases. Regenerate the `.stderr` snapshots with
//! `TRYBUILD=overwrite cargo test -p transactional-ui-tests`, then read every one of them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/pass/*.rs");
}
