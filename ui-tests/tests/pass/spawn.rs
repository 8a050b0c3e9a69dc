//! `tokio::spawn` in the body carries the current transaction; nested items are left alone.

use transactional::{transactional, Error};

async fn work(n: u32) -> Result<u32, Error> {
    Ok(n)
}

#[transactional]
async fn spawns() -> Result<u32, Error> {
    let a = tokio::spawn(work(1));
    let b = ::tokio::spawn(work(2));
    let c = tokio::task::spawn(work(3));
    let d = ::tokio::task::spawn(async move { work(4).await });
    let more: Vec<_> = vec![work(5), work(6)]
        .into_iter()
        .map(tokio::spawn)
        .collect();

    // Not part of the body: a plain tokio spawn, still compiles.
    fn detached() -> tokio::task::JoinHandle<()> {
        tokio::spawn(async {})
    }
    let _ = detached;

    let mut sum = 0;
    for handle in [a, b, c, d].into_iter().chain(more) {
        sum += handle.await.expect("task panicked")?;
    }
    Ok(sum)
}

#[tokio::main]
async fn main() {
    let db = transactional::Database::open_in_memory().await.unwrap();
    db.set_default();
    assert_eq!(spawns().await.unwrap(), 21);
}
