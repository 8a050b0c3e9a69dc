//! What `#[transactional]` expands to. Not public API: paths here may change in any release.

pub use crate::atomic::{Atomic, Isolation, Propagation};
pub use crate::backend::sqlite::conn::Begin;
pub use crate::task::{carry, spawn, spawn_local};
pub use ::core::time::Duration;

use crate::database::Database;

/// Turns the expression of `db = <expr>` into an owned handle: a `Database`, a reference to
/// one (at any depth), an `Arc<Database>` or a `Box<Database>`.
pub fn database<D: crate::AsDatabase + ?Sized>(db: &D) -> Database {
    db.as_database().clone()
}

/// The return type of a `#[transactional]` fn: a `Result`, however it is spelled (an alias
/// named anything, `io::Result<T>`, `anyhow::Result<T>`). Decided by type, not by name, so
/// a struct named `SearchResult` is refused here, in one error that says why.
///
/// The attribute calls `TxResult::finish(TxResult::run(atomic, body).await)`, with `Self`
/// inferred from the body. `run` asks nothing of the error type: the transaction's own
/// failures travel beside the body's as [`Outcome::Tx`]. Only `finish`, a plain fn, needs
/// `E: From<transactional::Error>`, so a missing impl is reported once. (Required by `run`,
/// it was reported again for `run`'s `impl Future` return type.)
#[diagnostic::on_unimplemented(
    message = "a `#[transactional]` fn must return a `Result`, and `{Self}` is not one",
    label = "not a `Result`",
    note = "the transaction can fail: return `Result<{Self}, transactional::Error>`, or a \
            `Result<T, E>` whose `E` implements `From<transactional::Error>`"
)]
pub trait TxResult: Sized {
    /// `E` of `Result<T, E>`.
    type Err;
    /// What `run` gives: the body's errors and the transaction's apart.
    type Raw;

    /// [`Atomic::run`], for a body of this type.
    fn run<F>(atomic: Atomic, body: F) -> impl ::core::future::Future<Output = Self::Raw>
    where
        F: ::core::future::Future<Output = Self>;

    /// `#[transactional(retries = N)]`: one attempt with `body` ([`Retry::attempt`]), and
    /// `classify` (built by the attribute from [`Probe`], or `|_| None` where the error
    /// type cannot be named) judging whether the body's error is transient.
    fn attempt<F>(
        retry: &mut Retry,
        body: F,
        classify: impl Fn(&Self::Err) -> Option<bool>,
    ) -> impl ::core::future::Future<Output = ::core::ops::ControlFlow<Self::Raw>>
    where
        F: ::core::future::Future<Output = Self>;

    /// The fn's result: a transaction failure becomes `E` through its `From` impl.
    fn finish(raw: Self::Raw) -> Self
    where
        Self::Err: TxError;
}

/// An error type that can hold a `transactional::Error`: any `E: From<transactional::Error>`.
/// A trait of its own only for the message when the impl is missing; `do_not_recommend`
/// makes rustc report this bound rather than the `From` behind it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot hold a `transactional::Error`, which a `#[transactional]` fn \
               returns when the transaction itself fails (begin, commit)",
    label = "needs `From<transactional::Error>`",
    note = "implement `From<transactional::Error>` for `{Self}` (with thiserror, a variant \
            `#[error(transparent)] Tx(#[from] transactional::Error)`), or return \
            `transactional::Error`"
)]
pub trait TxError: From<crate::Error> {}

#[diagnostic::do_not_recommend]
impl<E: From<crate::Error>> TxError for E {}

/// An error of a transactional body: the body's own, or the transaction's (begin, commit).
#[doc(hidden)]
#[derive(Debug)]
pub enum Outcome<E> {
    Body(E),
    Tx(crate::Error),
}

impl<E> From<crate::Error> for Outcome<E> {
    #[inline]
    fn from(error: crate::Error) -> Self {
        Outcome::Tx(error)
    }
}

impl<T, E> TxResult for Result<T, E> {
    type Err = E;
    type Raw = Result<T, Outcome<E>>;

    #[inline]
    fn run<F>(atomic: Atomic, body: F) -> impl ::core::future::Future<Output = Self::Raw>
    where
        F: ::core::future::Future<Output = Self>,
    {
        atomic.run(BodyErr { body })
    }

    #[inline]
    fn attempt<F>(
        retry: &mut Retry,
        body: F,
        classify: impl Fn(&E) -> Option<bool>,
    ) -> impl ::core::future::Future<Output = ::core::ops::ControlFlow<Self::Raw>>
    where
        F: ::core::future::Future<Output = Self>,
    {
        retry.attempt(BodyErr { body }, move |error: &Outcome<E>| match error {
            Outcome::Body(error) => classify(error),
            Outcome::Tx(error) => Some(error.is_transient()),
        })
    }

    #[inline]
    fn finish(raw: Self::Raw) -> Self
    where
        E: TxError,
    {
        match raw {
            Ok(value) => Ok(value),
            Err(Outcome::Body(error)) => Err(error),
            Err(Outcome::Tx(error)) => Err(E::from(error)),
        }
    }
}

pin_project_lite::pin_project! {
    /// The body's error as `Outcome::Body`. A future of its own rather than
    /// `TryFutureExt::map_err`, whose completed state moves the inner future out: measured
    /// at ~80 instructions a nested call on W1, this one at a few.
    struct BodyErr<F> {
        #[pin]
        body: F,
    }
}

impl<F, T, E> ::core::future::Future for BodyErr<F>
where
    F: ::core::future::Future<Output = Result<T, E>>,
{
    type Output = Result<T, Outcome<E>>;

    #[inline]
    fn poll(
        self: ::core::pin::Pin<&mut Self>,
        cx: &mut ::core::task::Context<'_>,
    ) -> ::core::task::Poll<Self::Output> {
        self.project()
            .body
            .poll(cx)
            .map(|r| r.map_err(Outcome::Body))
    }
}

/// `params![..]`: an array of parameters of mixed types.
pub fn params<const N: usize>(params: [&dyn crate::ToParam; N]) -> [&dyn crate::ToParam; N] {
    params
}

pub use crate::atomic::retry::{Probe, Retry, Unknown, ViaSource};
