use transactional::{transactional, Error};

#[transactional]
#[transactional(name = "load")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {
    let _ = load();
}
