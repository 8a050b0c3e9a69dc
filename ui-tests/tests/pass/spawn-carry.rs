//! `JoinSet` and `Handle` spawns: by their full path the attribute wraps the future in
//! `transactional::carry`; method calls carry the transaction with an explicit `carry`, and
//! a method named `spawn` on another type is left as it is.

use tokio::task::JoinSet;
use transactional::{transactional, Error};

/// The id of the frame the calling task runs in.
async fn frame() -> Result<u64, Error> {
    Ok(transactional::current()?.id())
}

/// Not tokio's: its `spawn` takes a closure, which `carry` would not accept.
struct Pool;

impl Pool {
    fn spawn(&self, job: impl FnOnce() -> u32) -> u32 {
        job()
    }
}

#[transactional]
async fn spawns_in_sets() -> Result<(), Error> {
    let outer = transactional::current()?.id();
    let mut set = JoinSet::new();
    set.spawn(transactional::carry(frame()));
    tokio::task::JoinSet::spawn(&mut set, frame());
    ::tokio::task::JoinSet::<Result<u64, Error>>::spawn(&mut set, async { frame().await });
    let handle = tokio::runtime::Handle::current();
    let by_method = handle.spawn(transactional::carry(frame()));
    let by_path = tokio::runtime::Handle::spawn(&handle, frame());
    assert_eq!(set.len(), 3);
    while let Some(joined) = set.join_next().await {
        assert_eq!(joined.expect("join")?, outer);
    }
    assert_eq!(by_method.await.expect("join")?, outer);
    assert_eq!(by_path.await.expect("join")?, outer);

    // Without `carry` a method call carries nothing: the attribute leaves methods alone.
    let plain = handle.spawn(frame()).await.expect("join");
    assert!(matches!(plain, Err(Error::NoTransaction)));
    assert_eq!(Pool.spawn(|| 7), 7);
    Ok(())
}

#[tokio::main]
async fn main() {
    let db = transactional::Database::open_in_memory().await.unwrap();
    db.set_default();
    spawns_in_sets().await.unwrap();
}
