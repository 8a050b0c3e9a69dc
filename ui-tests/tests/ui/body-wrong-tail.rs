//! A body whose value is not the return type: the error is on the body, against the
//! signature ("expected due to this"), not on the attribute.
use transactional::{transactional, Error};

#[transactional]
async fn load() -> Result<u32, Error> {
    let n = 1u32;
    n
}

fn main() {
    let _ = load();
}
