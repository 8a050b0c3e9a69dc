//! `offload` as a flag and with a value: the frame's statements say they are offloaded.
use transactional::{transactional, Database, Error};

#[transactional(db = db, read_only, offload)]
async fn report(db: &Database) -> Result<bool, Error> {
    Ok(transactional::current()?.is_offloaded())
}

#[transactional(db = db, offload = false)]
async fn plain(db: &Database) -> Result<bool, Error> {
    Ok(transactional::current()?.is_offloaded())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let db = Database::open_in_memory().await?;
    assert!(report(&db).await?);
    assert!(!plain(&db).await?);
    Ok(())
}
