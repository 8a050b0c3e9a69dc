//! An empty body is reported on the body, as without the attribute.
use transactional::{transactional, Error};

#[transactional]
async fn load() -> Result<u32, Error> {}

fn main() {
    let _ = load();
}
