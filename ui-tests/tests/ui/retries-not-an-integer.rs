use transactional::{transactional, Error};

#[transactional(retries = "3")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
