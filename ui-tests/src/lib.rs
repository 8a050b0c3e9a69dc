//! trybuild cases for `#[transactional]` live under `tests/`: `ui/` must fail to compile with the `.stderr` next to each case, `pass/` must compile.
