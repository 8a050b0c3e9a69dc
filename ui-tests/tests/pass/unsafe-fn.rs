//! `unsafe` is kept: the body stays in the unsafe fn, so it may still call unsafe code.

use transactional::{transactional, Error};

unsafe fn raw(n: *const u32) -> u32 {
    unsafe { *n }
}

#[transactional]
async unsafe fn read(n: *const u32) -> Result<u32, Error> {
    let n = n as usize;
    Ok(unsafe { raw(n as *const u32) })
}

fn main() {
    let _ = unsafe { read(&1) };
}
