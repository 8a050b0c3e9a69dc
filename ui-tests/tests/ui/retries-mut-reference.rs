use transactional::{transactional, Error};

#[transactional(retries = 3)]
async fn fill(buffer: &mut Vec<u8>) -> Result<(), Error> {
    buffer.push(1);
    Ok(())
}

fn main() {}
