use transactional::{transactional, Error};

#[transactional(read_only timeout = "1s")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
