//! With `retries`, a `&mut self` or `&mut T` argument the body only reads is accepted (a
//! trait may require `&mut self`), and so is a destructured argument under `#[async_trait]`.
use async_trait::async_trait;
use transactional::{transactional, Database, Error};

struct Store {
    db: Database,
    hits: u32,
}

impl Store {
    #[transactional(db = self.db, retries = 3)]
    async fn hits(&mut self, extra: &mut u32) -> Result<u32, Error> {
        Ok(self.hits + *extra)
    }
}

#[async_trait]
trait Sum {
    async fn sum(&mut self, pair: (u32, u32)) -> Result<u32, Error>;
}

#[async_trait]
impl Sum for Store {
    #[transactional(db = self.db, retries = 3)]
    async fn sum(&mut self, (a, b): (u32, u32)) -> Result<u32, Error> {
        Ok(self.hits + a + b)
    }
}

fn main() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = Database::open_in_memory().await.unwrap();
        let mut store = Store { db, hits: 1 };
        let mut extra = 2;
        assert_eq!(store.hits(&mut extra).await.unwrap(), 3);
        assert_eq!(store.sum((3, 4)).await.unwrap(), 8);
    });
}
