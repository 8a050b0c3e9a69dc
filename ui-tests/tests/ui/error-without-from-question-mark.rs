//! A missing `From<transactional::Error>` is reported once by the attribute, on `MyError`.
//! The body's own `?` on a `transactional::Error` needs the same impl and is reported too:
//! it is the user's code, and fails the same way without the attribute.
use transactional::transactional;

#[derive(Debug)]
struct MyError;

#[transactional]
async fn load() -> Result<(), MyError> {
    transactional::current()?;
    Ok(())
}

fn main() {}
