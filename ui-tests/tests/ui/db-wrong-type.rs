use transactional::{transactional, Error};

#[transactional(db = path)]
async fn load(path: &str) -> Result<(), Error> {
    let _ = path;
    Ok(())
}

fn main() {}
