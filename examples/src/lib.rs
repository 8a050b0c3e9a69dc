//! The examples live beside this crate as examples/*.rs.
