//! The `#[transactional]` attribute. Use it through the `transactional` crate, which
//! re-exports it as `transactional::transactional`; this crate holds no logic of its own:
//! everything it emits calls into `::transactional::__private`.
//!
//! The attribute's documentation (options, errors, what it expands to) is on
//! [`macro@transactional`], so that it shows through the re-export.
//!
//! One module per step: `args` parses the attribute into typed options (their values are
//! checked in `value`), `validate` checks the fn and how the options combine, `expand` writes
//! the tokens, `spawn` rewrites tokio's spawns in the body (also in macro arguments and
//! `use`s) to the ones that carry the transaction,
//! and `async_trait` finds the body of a method that `#[async_trait]` has already rewritten.

mod args;
mod async_trait;
mod errors;
mod expand;
mod from_row;
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
/// that returns `Result<T, E>` where `E: From<transactional::Error>`. The return type is
/// checked by type, not by name: any alias of a `Result` works (`transactional::Result<T>`,
/// `anyhow::Result<T>`, `type Fallible<T> = Result<T, MyError>`), and a struct named
/// `SearchResult` is refused. `const fn` and `extern` fns are rejected; `unsafe` is kept.
/// It composes with `#[tracing::instrument]` (above or below it) and with `#[async_trait]`
/// (which expands first; the boxed future's body then runs in the transaction). Test and
/// runtime attributes go below it: `#[transactional]` above `#[tokio::test]` or
/// `#[tokio::main]`, since those turn the `async fn` into a plain fn.
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
/// | `offload` | a flag: the frame's SQLite statements run off the executor thread (`Atomic::offload`), for heavy reads |
/// | `retries = N` | re-run the outermost transaction up to `N` (≥ 1) more times on a transient failure |
/// | `timeout = ".."` | a whole number and a unit: `ns`, `us`, `ms`, `s`, `m`, `h`, like `"250ms"` |
/// | `name = ".."` | a name for spans and errors; must be an identifier such as `"load_user"`; defaults to the fn's name |
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
/// The signature is kept as written; the body moves into an `async` block that the
/// runtime's `Atomic` builder runs in the transaction:
///
/// ```text
/// // Input
/// #[transactional(db = db, propagation = "join", name = "load")]
/// async fn f(db: &Database, x: u32) -> Result<u32, MyError> { use ..; body }
///
/// // Output (`__tx` stands for `__transactional_private`)
/// async fn f(db: &Database, x: u32) -> Result<u32, MyError> {
///     use ::transactional::__private as __tx;
///     use ..;
///     let mut db = db;
///     let mut x = x;
///     return __tx::TxResult::finish(
///         __tx::TxResult::run(
///             __tx::Atomic::new()
///                 .db(__tx::database(&(db)))
///                 .propagation(__tx::Propagation::Join)
///                 .name("load"),
///             async {
///                 let _ = &mut x; // each argument `body` mentions
///                 if false {
///                     let __transactional_ret: Result<u32, MyError> = loop {};
///                     return __transactional_ret;
///                 }
///                 body
///             },
///         )
///         .await,
///     );
/// }
/// ```
///
/// - `use ::transactional::__private` is the one place the crate's path is written (the
///   `crate = ".."` path instead, when given). If it does not resolve, that import is the
///   one error. Without `crate = ".."`, the crate's `Cargo.toml` is read first: when it has
///   no `transactional` dependency (the runtime comes through a crate that re-exports it) or
///   has it under another name, the error says which `crate = ".."` to write.
/// - The body's leading items (`use`, `const`, helper fns) come first, before anything the
///   attribute adds, so `clippy::items_after_statements` does not fire; the final `return`
///   keeps `clippy::implicit_return` quiet.
/// - The arguments stay in the fn's own future, as in a plain `async fn`, and are dropped
///   as it drops them: after the whole call (the commit and its hooks included), in reverse
///   order. The body borrows each one it mentions uniquely (`let _ = &mut x;`; an argument
///   it does not mention still gets rustc's "unused variable" warning), so the future is `Send`
///   whenever the arguments are, `Send + !Sync` ones such as a `Cell` or an mpsc
///   `Receiver` included. A body that moves an argument still takes it. (A method whose
///   receiver is `self` by value, not `mut`, keeps the older form: its body moves the
///   arguments it mentions, which are then dropped when the body ends.)
/// - `TxResult` is implemented for `Result<T, E>` only: a return type that is not a
///   `Result` is one error saying so. `finish` turns a failure of the transaction itself
///   (begin, commit) into `E`, and is where `E: From<transactional::Error>` is required, so a
///   missing impl is one error, on `E` (on the return type for an alias such as
///   `io::Result<T>`).
/// - The `if false { return .. }` is never taken: it gives the async block the fn's own
///   output type (with `impl Trait` replaced by `_`), so a type error in the body is reported
///   in the body, against the signature, as it would be without the attribute. The binding
///   is hygienic: the body cannot name it.
/// - In the body, `tokio::spawn` and `tokio::task::spawn` (with or without a leading `::`,
///   with or without turbofish arguments, called or passed as a value) become
///   `__private::spawn`, and `tokio::task::spawn_local` becomes `__private::spawn_local`; both carry the current transaction into the
///   new task. The same paths are rewritten inside macro invocations (`tokio::join!`,
///   `select!`, `vec!`, any macro: the token sequence is replaced, its span kept), except in
///   `stringify!` and `concat!`, where they are text. A `use tokio::spawn;` (or
///   `use tokio::spawn as go;`, `use tokio::task::spawn_local;`, also inside a `use` group)
///   written in the body imports the carrying fn under the same name. A call of
///   `tokio::task::JoinSet::spawn`, `tokio::task::LocalSet::spawn_local`,
///   `tokio::runtime::Handle::spawn` or `tokio::runtime::Runtime::spawn` written with that
///   full path gets its future wrapped in `__private::carry(..)`.
/// - Not rewritten: method calls (`set.spawn(fut)`, `handle.spawn(fut)` — a method named
///   `spawn` may be any type's and take anything, so its argument is never touched), those
///   types named without `tokio::`, a `spawn` imported outside the fn or through a glob,
///   spawns a macro expands to (only its arguments are seen), spawns in other fns the body
///   calls, and items nested in the body (they run wherever they are called from). There,
///   wrap the future in `transactional::carry(..)` or call `transactional::spawn`. A task spawned without the transaction begins transactions of
///   its own; one that waits for the writer its parent holds fails after `writer_wait`
///   (see `transactional::carry`).
///
/// With `retries = N` the body is built afresh for each attempt, in a loop in the fn's own
/// body, and whether an attempt's error is transient is read off the error itself (a
/// `transactional::Error`, or any `std::error::Error` whose `source()` chain holds one):
///
/// ```text
/// return __tx::TxResult::finish({
///     let mut retry = __tx::Retry::new(__tx::Atomic::new().retries(3));
///     loop {
///         if let ControlFlow::Break(raw) = __tx::TxResult::attempt(
///             &mut retry,
///             async { let _ = &mut x; body },
///             |err: &MyError| { /* is it transient? */ },
///         )
///         .await
///         {
///             break raw;
///         }
///     }
/// });
/// ```
///
/// Each attempt borrows the arguments, uniquely, as above; an attempt ends (and its
/// borrows with it) before the next begins. So with `retries`:
///
/// - the body may read the arguments, `&mut self` and `&mut T` ones included, but cannot
///   move one out (the next attempt would find it gone): clone it instead;
/// - a change the body made to an argument in a failed attempt would carry over into the
///   next, so the changes the tokens show are refused, spanned on the argument: a `mut`
///   binding the body mentions (`mut x`, also inside a pattern such as `(mut a, b)`), and
///   a write through a `&mut` argument (`self.n += 1`, `*x = ..`, `&mut x.f`). A change
///   through a method call (`x.push(1)`) cannot be told from a read by the attribute; it
///   compiles, and is made again by each attempt.
///
/// # Errors
///
/// A misuse is a compile error spanned on the token to change, saying how to change it.
/// The fn is still emitted unchanged next to the error, so one mistake gives one error and
/// the rest of the crate still type-checks. Each case in the `ui-tests` crate has its
/// error count checked in cargo's JSON output (what IDEs read), not only the rendered text.
///
/// Some messages come from rustc and name the async block the body runs in: `?` on an
/// `Option` in a fn returning `Result` says "in an async block"; its help (`.ok_or(..)?`)
/// is right. When `E` lacks `From<transactional::Error>` and the body also uses `?` on a
/// `transactional::Error`, that `?` is reported too, as it would be without the attribute.
#[proc_macro_attribute]
pub fn transactional(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::transactional(args.into(), item.into()).into()
}

/// Decodes a row into a struct: see the `FromRow` trait in `transactional`, which documents
/// it with an example. Each named field comes from the column of its name
/// (`#[from_row(rename = "column")]` for another), a tuple struct's fields by position;
/// `#[from_row(crate = "path")]` on the struct names a re-exported `transactional`.
#[proc_macro_derive(FromRow, attributes(from_row))]
pub fn derive_from_row(input: TokenStream) -> TokenStream {
    from_row::derive(input.into()).into()
}
