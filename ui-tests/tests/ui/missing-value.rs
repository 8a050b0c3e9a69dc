use transactional::{transactional, Error};

#[transactional(db)]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
