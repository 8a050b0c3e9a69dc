use transactional::{transactional, Error};

#[transactional(propagation = "mandatory", begin = "immediate", retries = 3)]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
