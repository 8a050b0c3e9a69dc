//! Written to be clean under `clippy::pedantic` and `clippy::implicit_return`: any warning
//! here comes from the expansion. A body that starts with items, and one with `retries`.
#![allow(clippy::needless_return)] // implicit_return asks for the opposite

use transactional::{transactional, Database, Error};

#[transactional(db = db)]
async fn with_items(db: &Database, x: u32) -> Result<u32, Error> {
    use std::ops::Add;
    const ONE: u32 = 1;
    fn double(y: u32) -> u32 {
        return y * 2;
    }
    return Ok(double(x).add(ONE));
}

#[transactional(db = db, retries = 2, name = "retried")]
async fn retried(db: &Database, x: u32) -> Result<u32, Error> {
    return Ok(x);
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = Database::open_in_memory().await.unwrap();
        assert_eq!(with_items(&db, 2).await.unwrap(), 5);
        assert_eq!(retried(&db, 2).await.unwrap(), 2);
    });
}
