use transactional::{transactional, Error};

#[transactional(name = "load user")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
