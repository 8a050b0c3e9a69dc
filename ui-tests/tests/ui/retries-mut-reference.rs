use transactional::{transactional, Error};

#[transactional(retries = 3)]
async fn bump(count: &mut u32) -> Result<(), Error> {
    *count += 1;
    Ok(())
}

fn main() {}
