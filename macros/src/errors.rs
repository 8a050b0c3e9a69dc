//! Collecting several independent errors so the user sees all of them at once (serde's `Ctxt`).

use syn::Error;

/// Errors found so far; [`Errors::finish`] combines them into one [`syn::Error`].
#[derive(Default)]
pub struct Errors {
    first: Option<Error>,
}

impl Errors {
    pub fn push(&mut self, error: Error) {
        match &mut self.first {
            Some(first) => first.combine(error),
            None => self.first = Some(error),
        }
    }

    /// Keeps the value of `result`, or records its error and returns `None`.
    pub fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// `Ok(value)` when nothing was recorded, else every recorded error combined.
    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.first {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }

    /// `last`, with every recorded error combined in front of its own.
    pub fn finish_with<T>(self, last: syn::Result<T>) -> syn::Result<T> {
        match (self.first, last) {
            (None, last) => last,
            (Some(first), Ok(_)) => Err(first),
            (Some(mut first), Err(error)) => {
                first.combine(error);
                Err(first)
            }
        }
    }

    /// The recorded errors as `compile_error!` invocations (nothing if there are none).
    pub fn into_compile_error(self) -> proc_macro2::TokenStream {
        self.first
            .map(|error| error.to_compile_error())
            .unwrap_or_default()
    }
}
