//! Composes with `#[tracing::instrument]`, above or below.

use transactional::{transactional, Database, Error};

#[tracing::instrument(skip(db), err)]
#[transactional(db = db, name = "instrumented_outside")]
async fn outside(db: &Database, key: u32) -> Result<u32, Error> {
    tracing::info!(key, "in the transaction");
    Ok(key)
}

#[transactional(db = db, name = "instrumented_inside")]
#[tracing::instrument(skip(db), ret)]
async fn inside(db: &Database, key: u32) -> Result<u32, Error> {
    Ok(key)
}

#[tokio::main]
async fn main() {
    let db = Database::open_in_memory().await.unwrap();
    assert_eq!(outside(&db, 1).await.unwrap(), 1);
    assert_eq!(inside(&db, 2).await.unwrap(), 2);
}
