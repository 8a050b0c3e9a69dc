//! Unit tests of each step on token streams; `ui-tests/` checks what the user sees.

use proc_macro2::TokenStream;

use crate::args::Args;

mod expand;
mod parse;
mod spawn;

fn args(tokens: TokenStream) -> Args {
    syn::parse2(tokens).unwrap_or_else(|error| panic!("{error}"))
}

/// Every error of parsing `tokens`, one per line.
fn error(tokens: TokenStream) -> String {
    match syn::parse2::<Args>(tokens) {
        Ok(_) => panic!("parsed"),
        Err(error) => error
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The attribute's output as a string.
fn expand(args: TokenStream, item: TokenStream) -> String {
    crate::expand::transactional(args, item).to_string()
}
mod manifest;
