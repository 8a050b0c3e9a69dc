use std::future::Future;

use transactional::{transactional, Error};

#[transactional]
fn load() -> impl Future<Output = Result<u32, Error>> {
    async { Ok(1) }
}

fn main() {
    let _ = load();
}
