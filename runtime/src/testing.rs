//! Test transactions: a body runs in a transaction that always rolls back, for users' own
//! tests (diesel's `test_transaction`, Spring's `@Rollback`), with the `on_commit` hooks it
//! registered captured for assertions (Django's `captureOnCommitCallbacks`).

use std::fmt;
use std::future::Future;

use crate::atomic::Atomic;
use crate::database::Database;
use crate::error::Error;

/// What a [`test_transaction`] body returned, and the `on_commit` hooks it registered —
/// which did not run, since the transaction rolled back.
pub struct TestOutcome<T> {
    /// What the body returned.
    pub value: T,
    /// The `on_commit` hooks the body and its committed savepoints registered, in
    /// registration order.
    pub on_commit: Vec<Box<dyn FnOnce() + Send + 'static>>,
}

impl<T> TestOutcome<T> {
    /// Runs the captured `on_commit` hooks now, in order (Django's `execute=True`).
    pub fn run_on_commit(&mut self) {
        for hook in self.on_commit.drain(..) {
            hook();
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for TestOutcome<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestOutcome")
            .field("value", &self.value)
            .field("on_commit", &format_args!("{} hooks", self.on_commit.len()))
            .finish()
    }
}

/// Runs `body` in a transaction on `db` that always rolls back, so a test leaves no trace in
/// the database, and returns what the body returned with the `on_commit` hooks it
/// registered (captured, not run: see [`TestOutcome::run_on_commit`]).
///
/// Inside, everything behaves as in production: nested `#[transactional]` fns are
/// savepoints (a failing one rolls back alone), task groups and spawned tasks join the
/// transaction, `transactional::current()` works. A body that fails returns its error
/// (the transaction rolls back as always).
///
/// ```
/// use transactional::{transactional, Database, Error};
///
/// #[transactional]
/// async fn place_order(item: &str) -> Result<(), Error> {
///     let tx = transactional::current()?;
///     tx.execute("INSERT INTO orders(item) VALUES (?1)", (item,)).await?;
///     let item = item.to_owned();
///     transactional::on_commit(move || println!("mail: {item} ordered"))?;
///     Ok(())
/// }
///
/// # async fn test() -> Result<(), Error> {
/// let db = Database::open_in_memory().await?;
/// # transactional::Atomic::new().db(db.clone()).run(async {
/// #     transactional::current()?.execute_batch("CREATE TABLE orders(item TEXT)").await
/// # }).await?;
/// let outcome = transactional::test_transaction(&db, async {
///     place_order("tea").await?;
///     let tx = transactional::current()?;
///     tx.query_row("SELECT count(*) FROM orders", ()).await?.get::<i64>(0)
/// })
/// .await?;
/// assert_eq!(outcome.value, 1);           // the order was there inside the transaction
/// assert_eq!(outcome.on_commit.len(), 1); // and would have sent its mail on commit
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(test()).unwrap();
/// ```
pub async fn test_transaction<F, T, E>(db: &Database, body: F) -> Result<TestOutcome<T>, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error>,
{
    let result = Atomic::new()
        .db(db.clone())
        .name("test_transaction")
        .run(async {
            let value = body.await.map_err(Ending::Body)?;
            // The body's savepoints have all ended (released into this frame, or rolled
            // back): its hooks are this frame's now. Taking them keeps them from running.
            let on_commit = crate::context::current_scope()
                .map(|current| current.frame.hooks.take_commit())
                .unwrap_or_default();
            // Ending the body with an "error" rolls the transaction back.
            Err::<(), _>(Ending::Done(TestOutcome { value, on_commit }))
        })
        .await;
    match result {
        Err(Ending::Done(outcome)) => Ok(outcome),
        Err(Ending::Body(err)) => Err(err),
        Ok(()) => unreachable!("the test transaction's body never ends with Ok"),
    }
}

/// How the body of a test transaction ended: the body's own error, or done (and rolled
/// back on purpose).
enum Ending<T, E> {
    Body(E),
    Done(TestOutcome<T>),
}

impl<T, E: From<Error>> From<Error> for Ending<T, E> {
    fn from(err: Error) -> Self {
        Ending::Body(E::from(err))
    }
}
