use transactional::{transactional, Error};

#[transactional(isolation = "repeatable-read")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
