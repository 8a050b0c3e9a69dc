//! The example services of `transactional`, as a library so their tests can start them.
//!
//! The runnable entry points are the examples beside this crate: `seed_demo.rs` and
//! `bank/main.rs` (`cargo run --example bank`).

#[path = "../bank/app.rs"]
pub mod bank;
