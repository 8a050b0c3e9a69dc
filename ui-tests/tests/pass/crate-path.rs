//! `crate = ".."` points every generated path at a re-export of the runtime.

mod facade {
    pub use ::transactional as tx;
}

use facade::tx::{transactional, Error};

#[transactional(crate = "crate::facade::tx", timeout = "1s", propagation = "join")]
async fn through_facade() -> Result<u32, Error> {
    let handle = tokio::spawn(async { 1 });
    Ok(handle.await.unwrap_or(0))
}

fn main() {
    let _ = through_facade();
}
