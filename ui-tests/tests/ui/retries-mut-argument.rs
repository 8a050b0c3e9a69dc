use transactional::{transactional, Error};

#[transactional(retries = 3)]
async fn count(mut attempts: u32) -> Result<u32, Error> {
    attempts += 1;
    Ok(attempts)
}

fn main() {}
