use transactional::{transactional, Error};

#[transactional(timeout = 250ms)]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
