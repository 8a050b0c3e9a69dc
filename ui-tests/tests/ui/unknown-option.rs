use transactional::{transactional, Error};

#[transactional(readonly)]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
