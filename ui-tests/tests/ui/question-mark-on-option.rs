//! `?` on an `Option` in a fn returning `Result`.
use transactional::{transactional, Error};

#[transactional]
async fn first(items: Vec<u32>) -> Result<u32, Error> {
    let first = items.first()?;
    Ok(*first)
}

fn main() {
    let _ = first(vec![1]);
}
