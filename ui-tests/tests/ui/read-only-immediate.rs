use transactional::{transactional, Error};

#[transactional(read_only, begin = "immediate")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
