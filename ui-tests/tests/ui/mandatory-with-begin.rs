use transactional::{transactional, Error};

#[transactional(propagation = "mandatory", begin = "immediate")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
