//! `#[cfg]` and other attributes on parameters are kept.

use transactional::{transactional, Error};

#[transactional]
async fn cfg_params(
    #[cfg(any())] missing: u32,
    #[cfg(all())] present: u32,
    #[allow(unused_variables)] unused: u32,
) -> Result<u32, Error> {
    #[cfg(any())]
    let present = missing;
    Ok(present)
}

fn main() {
    let _ = cfg_params(1, 2);
}
