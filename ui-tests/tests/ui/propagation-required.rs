//! Spring's default propagation, by its Spring name: a suggestion by meaning (`join`), not by
//! spelling (`requires_new`, its opposite).
use transactional::{transactional, Error};

#[transactional(propagation = "required")]
async fn load() -> Result<(), Error> {
    Ok(())
}

fn main() {}
