//! A `crate = ".."` path that does not resolve is one error, on the path.
use transactional::{transactional, Error};

#[transactional(crate = "::transactionl", timeout = "1s")]
async fn load() -> Result<(), Error> {
    let handle = tokio::spawn(async { 1 });
    let _ = handle.await;
    Ok(())
}

fn main() {
    let _ = load();
}
