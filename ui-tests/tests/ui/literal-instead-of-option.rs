use transactional::{transactional, Error};

#[transactional("join")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
