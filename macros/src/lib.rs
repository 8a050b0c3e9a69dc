//! The `#[transactional]` attribute. Use it through the `transactional` crate, which
//! re-exports it as `transactional::transactional`; this crate holds no logic of its own:
//! everything it emits calls into `::transactional::__private`.
//!
//! The attribute's documentation (options, errors, what it expands to) is on
//! [`macro@transactional`], so that it shows through the re-export.
//!
//! One module per step: `args` parses the attribute into typed options (their values are
//! checked in `value`), `validate` checks the fn and how the options combine, `expand` writes
//! the tokens, `spawn` rewrites `tokio::spawn` and `tokio::task::spawn_local` in the body,
//! and `async_trait` finds the body of a method that `#[async_trait]` has already rewritten.

mod args;
mod async_trait;
mod errors;
mod expand;
mod manifest;
mod spawn;
#[cfg(test)]
mod tests;
mod validate;
mod value;

use proc_macro::TokenStream;

/// Runs the body of an `async fn` in a database transaction.
///
/// ```
/// use transactional::{transactional, Database};
///
/// #[transactional(db = db, timeout = "2s", name = "transfer")]
/// async fn transfer(db: &Database, from: i64, to: i64, amount: i64) -> Result<(), transactional::Error> {
///     let tx = transactional::current()?;
///     tx.execute("UPDATE account SET balance = balance - ?1 WHERE id = ?2", (amount, from)).await?;
///     tx.execute("UPDATE account SET balance = balance + ?1 WHERE id = ?2", (amount, to)).await?;
///     Ok(())
/// }
///
/// #[transactional(db = db)]
/// async fn setup(db: &Database) -> Result<(), transactional::Error> {
///     transactional::current()?
///         .execute_batch("CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER);
///                         INSERT INTO account VALUES (1, 100), (2, 0)")
///         .await
/// }
///
/// #[transactional(db = db, read_only)]
/// async fn balance(db: &Database, id: i64) -> Result<i64, transactional::Error> {
///     transactional::current()?
///         .query_row("SELECT balance FROM account WHERE id = ?1", (id,))
///         .await?
///         .get(0)
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = Database::open_in_memory().await?;
/// setup(&db).await?;
/// transfer(&db, 1, 2, 30).await?;
/// assert_eq!((balance(&db, 1).await?, balance(&db, 2).await?), (70, 30));
/// # Ok::<_, transactional::Error>(()) }).unwrap();
/// ```
///
/// # Where it applies
///
/// An `async fn` (free fn, method with any receiver, generic, with `impl Trait` arguments)
/// that returns `Result<T, E>` where `E: From<transactional::Error>`. Any path ending in
/// `Result` is accepted, so aliases such as `transactional::Result<T>` or
/// `anyhow::Result<T>` work. `const fn` and `extern` fns are rejected; `unsafe` is kept.
/// It composes with `#[tracing::instrument]` (above or below it) and with `#[async_trait]`
/// (which expands first; the boxed future's body then runs in the transaction).
///
/// # Options
///
/// Comma separated, in any order, each at most once:
///
/// | option | value |
/// |---|---|
/// | `db = <expr>` | the database of an outermost transaction: any expression, usually an argument; `&Database`, `Database`, `Arc<Database>`, … |
/// | `propagation = ".."` | `"nested"` (default), `"join"`, `"mandatory"`, `"requires_new"` |
/// | `begin = ".."` | `"deferred"`, `"immediate"`, `"exclusive"` (SQLite) |
/// | `isolation = ".."` | `"read_committed"`, `"repeatable_read"`, `"serializable"` |
/// | `read_only` | a flag; `read_only = true` / `false` also work |
/// | `retries = N` | re-run the outermost transaction up to `N` (≥ 1) more times on a transient failure |
/// | `timeout = ".."` | a whole number and a unit: `ns`, `us`, `ms`, `s`, `m`, `h`, like `"250ms"` |
/// | `name = ".."` | a name for spans and errors; must be an identifier such as `"load_user"` |
/// | `crate = ".."` | the path of the `transactional` crate when it is re-exported under another name |
///
/// Every value is checked at compile time. Combinations where an option could never take
/// effect are errors too:
///
/// - `propagation = "mandatory"` with `begin`, `isolation` or `retries`: a mandatory frame
///   always runs inside an existing transaction, so it never begins or retries one.
/// - `read_only` with `begin = "immediate"` or `"exclusive"`: a read-only transaction never
///   takes the write lock.
///
/// With `propagation = "join"` every option is accepted, since outside a transaction a
/// joining fn begins one.
///
/// # What it expands to
///
/// The signature is kept as written; the body moves into an `async move` block that the
/// runtime's `Atomic` builder runs in the transaction:
///
/// ```text
/// // Input
/// #[transactional(db = db, propagation = "join", name = "load")]
/// async fn f(db: &Database, x: u32) -> Result<u32, MyError> { body }
///
/// // Output
/// async fn f(db: &Database, x: u32) -> Result<u32, MyError> {
///     ::transactional::__private::assert_error_type::<MyError>();
///     ::transactional::__private::Atomic::new()
///         .db(::transactional::__private::database(&(db)))
///         .propagation(::transactional::__private::Propagation::Join)
///         .name("load")
///         .run(async move {
///             #[allow(unreachable_code)]
///             if false {
///                 let __transactional_ret: Result<u32, MyError> = loop {};
///                 return __transactional_ret;
///             }
///             body
///         })
///         .await
/// }
/// ```
///
/// - `assert_error_type::<MyError>()` reports a missing `From<transactional::Error>` impl on
///   the error type itself. It is left out when `E` is not written (`io::Result<T>`).
/// - The `if false { return .. }` is never taken: it gives the async block the fn's own
///   output type (with `impl Trait` replaced by `_`), so a type error in the body is reported
///   in the body, against the signature, as it would be without the attribute. The binding
///   is hygienic: the body cannot name it.
/// - Every path starts with `::transactional::__private` (or the `crate = ".."` path), so
///   local items named `core`, `transactional`, `Atomic`, … cannot interfere.
/// - In the body, `tokio::spawn(..)` and `tokio::task::spawn(..)` (with or without a
///   leading `::`) become `::transactional::__private::spawn(..)`, and
///   `tokio::task::spawn_local(..)` becomes `::transactional::__private::spawn_local(..)`;
///   both carry the current transaction into the new task. Items nested in the body are left
///   alone, and so are paths inside macro invocations.
///
/// With `retries = N` the body has to be built afresh for every attempt, and whether an
/// attempt's error is transient is read off the error itself (a `transactional::Error`, or
/// any `std::error::Error` whose `source()` chain holds one):
///
/// ```text
/// ::transactional::__private::run_retrying(
///     ::transactional::__private::Atomic::new().retries(3),
///     || async { body },
///     |__transactional_err: &MyError| { /* is it transient? */ },
/// )
/// .await
/// ```
///
/// Each attempt's body borrows the arguments instead of owning them (an `async move` body
/// would take them on the first attempt and leave nothing for the next). So with `retries`:
///
/// - the body may read the arguments, but cannot move one out: clone it instead. The
///   compiler's error names the argument and points at `retries`;
/// - the body cannot change an argument: a `&mut self` receiver, a `&mut T` argument or a
///   `mut` binding that the body mentions is rejected, spanned on that argument.
///
/// # Errors
///
/// A misuse is a compile error spanned on the token to change, saying how to change it.
/// The fn is still emitted unchanged next to the error, so one mistake gives one error and
/// the rest of the crate still type-checks.
#[proc_macro_attribute]
pub fn transactional(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::transactional(args.into(), item.into()).into()
}
