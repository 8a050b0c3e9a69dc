use transactional::{transactional, Error};

#[transactional]
async fn load() -> Result<u32, Error> {
    let n: u32 = __transactional_ret;
    Ok(n)
}

fn main() {}
