//! Without `db = ..`, an enclosing transaction or a default database, an outermost
//! transaction cannot start. (Its own test binary: nothing here sets a default database.)
//!
//! Conformance: backend-neutral by construction: no database of any kind is involved.

use transactional::{transactional, Error};

#[transactional]
async fn needs_a_database() -> Result<(), Error> {
    Ok(())
}

#[tokio::test]
async fn an_outermost_transaction_without_a_database_is_a_clear_error() {
    let err = needs_a_database().await.unwrap_err();
    assert!(matches!(err, Error::NoDatabase), "{err}");
    assert!(
        err.to_string().contains("set_default"),
        "the message says how to fix it: {err}"
    );
}
