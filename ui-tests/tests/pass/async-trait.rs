//! Composes with `#[async_trait]`, which expands first and hands us a fn returning
//! `Box::pin(async move { .. })`: the body of that future runs in the transaction.

use async_trait::async_trait;
use transactional::{transactional, Database, Error};

#[async_trait]
trait Store {
    async fn put(&self, key: String, value: i64) -> Result<u64, Error>;
    async fn count(&self, prefix: &str) -> Result<i64, Error>;
    async fn retried(&self, key: String) -> Result<usize, Error>;
    async fn into_db(self) -> Result<Database, Error>;
}

struct Repo {
    db: Database,
}

#[async_trait]
impl Store for Repo {
    #[transactional(db = self.db, name = "put")]
    async fn put(&self, key: String, value: i64) -> Result<u64, Error> {
        let tx = transactional::current()?;
        tx.execute("INSERT INTO kv(key, val) VALUES (?1, ?2)", (key, value))
            .await
    }

    #[transactional(db = &self.db, read_only)]
    async fn count(&self, prefix: &str) -> Result<i64, Error> {
        let tx = transactional::current()?;
        let pattern = format!("{prefix}%");
        tx.query_row("SELECT count(*) FROM kv WHERE key LIKE ?1", (pattern,))
            .await?
            .get(0)
    }

    // Retried: the arguments are bound before the transaction, and borrowed by each attempt.
    #[transactional(db = self.db, retries = 2)]
    async fn retried(&self, key: String) -> Result<usize, Error> {
        Ok(key.len())
    }

    // `#[async_trait]` moved `self` into `__self` before this runs; `db = self.db` still works.
    #[transactional(db = self.db)]
    async fn into_db(self) -> Result<Database, Error> {
        Ok(self.db)
    }
}

#[tokio::main]
async fn main() {
    let db = Database::open_in_memory().await.unwrap();
    transactional::Atomic::new()
        .db(db.clone())
        .run(async {
            let tx = transactional::current()?;
            tx.execute_batch("CREATE TABLE kv(key TEXT PRIMARY KEY, val INTEGER)")
                .await
        })
        .await
        .unwrap();
    let repo: Box<dyn Store + Send + Sync> = Box::new(Repo { db });
    assert_eq!(repo.put("a1".into(), 1).await.unwrap(), 1);
    assert_eq!(repo.put("a2".into(), 2).await.unwrap(), 1);
    assert_eq!(repo.count("a").await.unwrap(), 2);
    assert_eq!(repo.retried("abc".into()).await.unwrap(), 3);
    let db = Database::open_in_memory().await.unwrap();
    Repo { db }.into_db().await.unwrap();
}
