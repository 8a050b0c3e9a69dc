//! Free fns with every option, and a plain `?` on `transactional::Error`.

use std::sync::Arc;
use transactional::{transactional, Database, Error};

#[transactional]
async fn default_options() -> Result<(), Error> {
    transactional::current()?;
    Ok(())
}

#[transactional(db = db, propagation = "join", name = "load")]
async fn load(db: &Database, x: u32) -> Result<u32, Error> {
    Ok(x + 1)
}

#[transactional(
    db = db,
    propagation = "requires_new",
    begin = "immediate",
    isolation = "serializable",
    retries = 3,
    timeout = "1500us",
    name = "everything",
    crate = "::transactional",
)]
async fn everything(db: Arc<Database>, key: String) -> Result<usize, Error> {
    Ok(key.len())
}

#[transactional(db = db, read_only, begin = "deferred", timeout = "1m")]
async fn read_only(db: Database) -> transactional::Result<()> {
    // `db` was only borrowed for the option; the body still owns it.
    drop(db);
    Ok(())
}

#[transactional(read_only = false, propagation = "mandatory", timeout = "250ms")]
async fn mandatory() -> Result<(), Error> {
    Ok(())
}

/// Doc comments and other attributes are kept.
#[transactional(propagation = "nested")]
#[must_use = "a result"]
#[inline]
pub(crate) async fn documented(x: u8) -> Result<u8, Error> {
    #![allow(clippy::identity_op)]
    Ok(x + 0)
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    // The futures can be spawned on a multi-threaded runtime.
    let _ = assert_send(default_options());
    let _ = assert_send(mandatory());
    let _ = documented(1);
    let _ = |db: Database| async move {
        assert_send(load(&db, 1)).await?;
        assert_send(everything(Arc::new(db.clone()), String::new())).await?;
        read_only(db).await
    };
}
