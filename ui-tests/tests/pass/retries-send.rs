//! With or without `retries`, the future of a `#[transactional]` fn is `Send` when its
//! arguments are, `Send + !Sync` ones (`Cell`, an mpsc `Receiver`) included.
use std::cell::Cell;
use std::sync::mpsc;

use transactional::{transactional, Database, Error};

#[transactional(db = db, retries = 3)]
async fn retried(db: &Database, count: Cell<u32>, rx: mpsc::Receiver<u32>) -> Result<u32, Error> {
    Ok(count.get() + rx.try_recv().unwrap_or(0))
}

#[transactional(db = db)]
async fn once(db: &Database, count: Cell<u32>) -> Result<u32, Error> {
    Ok(count.get())
}

struct Counter {
    db: Database,
    hits: Cell<u32>,
}

impl Counter {
    #[transactional(db = self.db, retries = 3)]
    async fn hits(&mut self) -> Result<u32, Error> {
        Ok(self.hits.get())
    }
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = Database::open_in_memory().await.unwrap();
        let (tx, rx) = mpsc::channel();
        tx.send(2).unwrap();
        assert_send(retried(&db, Cell::new(1), mpsc::channel().1));
        assert_send(once(&db, Cell::new(1)));
        let handle = tokio::spawn({
            let db = db.clone();
            async move { retried(&db, Cell::new(1), rx).await }
        });
        assert_eq!(handle.await.unwrap().unwrap(), 3);
        let mut counter = Counter { db, hits: Cell::new(4) };
        assert_send(counter.hits());
        assert_eq!(counter.hits().await.unwrap(), 4);
    });
}
