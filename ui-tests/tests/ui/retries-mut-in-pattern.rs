//! `mut` inside a destructuring pattern gets the same message as a `mut` argument.
use transactional::{transactional, Error};

#[transactional(retries = 3)]
async fn total((mut sum, step): (u32, u32)) -> Result<u32, Error> {
    sum += step;
    Ok(sum)
}

fn main() {
    let _ = total((1, 2));
}
