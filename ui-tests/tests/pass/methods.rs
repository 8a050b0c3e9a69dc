//! Every kind of receiver, in inherent impls and in a trait with `async fn`.

use std::sync::Arc;
use transactional::{transactional, Database, Error};

struct Repo {
    db: Database,
    hits: u32,
}

impl Repo {
    #[transactional(db = self.db)]
    async fn by_ref(&self, key: &str) -> Result<usize, Error> {
        Ok(key.len())
    }

    #[transactional(db = &self.db, name = "by_mut")]
    async fn by_mut(&mut self) -> Result<u32, Error> {
        self.hits += 1;
        Ok(self.hits)
    }

    #[transactional(db = self.db)]
    async fn by_arc(self: Arc<Self>) -> Result<u32, Error> {
        Ok(self.hits)
    }

    #[transactional(db = self.db.clone())]
    async fn by_value(self) -> Result<Database, Error> {
        Ok(self.db)
    }

    #[transactional(db = self.db, retries = 2)]
    async fn retried(&self, key: String) -> Result<usize, Error> {
        Ok(key.len() + self.by_ref(&key).await?)
    }

    #[transactional]
    async fn returns_self_type(&self) -> Result<&Self, Error> {
        Ok(self)
    }
}

trait Store {
    async fn put(&self, key: String) -> Result<(), Error>;
}

impl Store for Repo {
    #[transactional(db = self.db)]
    async fn put(&self, key: String) -> Result<(), Error> {
        let _ = key;
        Ok(())
    }
}

fn main() {
    let _ = |mut repo: Repo| async move {
        repo.by_ref("k").await?;
        repo.by_mut().await?;
        repo.retried("k".to_owned()).await?;
        repo.returns_self_type().await?;
        repo.put("k".to_owned()).await?;
        let hits = Arc::new(Repo {
            db: repo.db.clone(),
            hits: 0,
        })
        .by_arc()
        .await?;
        Repo { db: repo.db, hits }.by_value().await.map(drop)
    };
}
