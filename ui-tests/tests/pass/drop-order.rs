//! Arguments are dropped as a plain `async fn` drops them: after the whole call, commit
//! included, in reverse order, whether the body mentions them or not. (They used to be
//! dropped inside the transaction when the body mentioned them, and after it otherwise.)
use std::sync::Mutex;

use transactional::{transactional, Database, Error};

static LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn log(event: &'static str) {
    LOG.lock().unwrap().push(event);
}

struct Guard(&'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        log(self.0);
    }
}

#[transactional(db = db)]
async fn work(db: &Database, _a: Guard, b: Guard, _c: Guard) -> Result<(), Error> {
    let _ = &b.0;
    transactional::on_commit(|| log("commit"))?;
    log("body");
    Ok(())
}

#[transactional(db = db, retries = 2)]
async fn retried(db: &Database, a: Guard, _b: Guard) -> Result<(), Error> {
    let _ = &a.0;
    transactional::on_commit(|| log("commit"))?;
    log("body");
    Ok(())
}

async fn plain(_a: Guard, b: Guard, _c: Guard) {
    let _ = &b.0;
    log("body");
}

fn take() -> Vec<&'static str> {
    std::mem::take(&mut *LOG.lock().unwrap())
}

fn main() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        plain(Guard("a"), Guard("b"), Guard("c")).await;
        let order = take();
        let db = Database::open_in_memory().await.unwrap();
        work(&db, Guard("a"), Guard("b"), Guard("c")).await.unwrap();
        assert_eq!(take(), ["body", "commit", "c", "b", "a"]);
        // The same order as without the attribute, the commit aside.
        assert_eq!(order, ["body", "c", "b", "a"]);
        retried(&db, Guard("a"), Guard("b")).await.unwrap();
        assert_eq!(take(), ["body", "commit", "b", "a"]);
    });
}
