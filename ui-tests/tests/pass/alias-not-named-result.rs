//! The return type is decided by type, not by name: an alias named anything works.
use transactional::{transactional, Database, Error};

type Fallible<T> = Result<T, Error>;

#[transactional(db = db)]
async fn answer(db: &Database) -> Fallible<u32> {
    Ok(42)
}

#[transactional(db = db, retries = 2)]
async fn answer_retried(db: &Database) -> Fallible<u32> {
    Ok(43)
}

fn main() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = Database::open_in_memory().await.unwrap();
        assert_eq!(answer(&db).await.unwrap(), 42);
        assert_eq!(answer_retried(&db).await.unwrap(), 43);
    });
}
