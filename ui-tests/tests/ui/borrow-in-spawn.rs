//! A spawned future that borrows a local: the borrow error names the local and points at
//! the borrow, as it does without the attribute.
use transactional::{transactional, Error};

async fn process(items: &[u32]) -> usize {
    items.len()
}

#[transactional]
async fn run() -> Result<usize, Error> {
    let items = vec![1, 2, 3];
    let handle = tokio::spawn(process(&items));
    Ok(handle.await.unwrap_or(0))
}

fn main() {
    let _ = run();
}
