//! The expansion uses absolute paths and hygienic bindings: local items named like the
//! runtime or `core`, and a `transactional` alias for std, cannot break it.
#![deny(unused_qualifications)]
#![allow(dead_code)]

mod core {}
mod std {}

struct Atomic;
struct Duration;
enum Propagation {}

fn database() {}

mod inner {
    use std as transactional;

    struct Result;

    #[::transactional::transactional(propagation = "join", timeout = "2s", name = "shadowed")]
    async fn shadowed(
        _db: &::transactional::Database,
    ) -> ::core::result::Result<(), ::transactional::Error> {
        let _ = transactional::cell::Cell::new(1);
        let __transactional_ret = 1;
        let _ = __transactional_ret;
        Ok(())
    }

    #[::transactional::transactional(db = db)]
    async fn with_db(
        db: &::transactional::Database,
    ) -> ::core::result::Result<(), ::transactional::Error> {
        Ok(())
    }
}

fn main() {}
