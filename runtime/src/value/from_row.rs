//! `FromRow`: a whole row decoded into a tuple (by position) or a struct (by column name,
//! with `#[derive(FromRow)]`).

use super::{FromValue, Row};
use crate::error::{Error, Result};

/// A type a whole row decodes into: what [`Tx::query_as`](crate::Tx::query_as) and
/// [`Row::decode`] return.
///
/// - A tuple `(A, B, ..)` of up to 16 [`FromValue`] types takes the columns by position; the
///   query must return exactly as many columns as the tuple has elements.
/// - `#[derive(FromRow)]` on a struct with named fields takes each field from the column of
///   the same name (`#[from_row(rename = "col")]` for another name); on a tuple struct, by
///   position, like a tuple. Columns the struct does not name are ignored.
/// - [`Row`] itself, unchanged.
///
/// ```
/// # async fn demo() -> transactional::Result<()> {
/// use transactional::{Atomic, Database, FromRow};
///
/// #[derive(FromRow, Debug, PartialEq)]
/// struct Account {
///     id: i64,
///     #[from_row(rename = "owner_name")]
///     owner: String,
///     balance: i64,
/// }
///
/// let db = Database::open_in_memory().await?;
/// let (accounts, pairs) = Atomic::new().db(db).run(async {
///     let tx = transactional::current()?;
///     tx.execute_batch("CREATE TABLE account(id INTEGER PRIMARY KEY, owner_name TEXT, balance INTEGER);
///                       INSERT INTO account VALUES (1, 'ada', 100), (2, 'bob', 0)").await?;
///     let accounts: Vec<Account> = tx.query_as("SELECT * FROM account ORDER BY id", ()).await?;
///     let pairs: Vec<(String, i64)> =
///         tx.query_as("SELECT owner_name, balance FROM account ORDER BY id", ()).await?;
///     Ok::<_, transactional::Error>((accounts, pairs))
/// }).await?;
/// assert_eq!(accounts[0], Account { id: 1, owner: "ada".into(), balance: 100 });
/// assert_eq!(pairs[1], ("bob".to_owned(), 0));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be decoded from a row",
    label = "not a row type",
    note = "a row decodes into a tuple of `FromValue` types (`(String, i64)`), a struct with \
            `#[derive(transactional::FromRow)]`, or `transactional::Row`"
)]
pub trait FromRow: Sized {
    /// Decodes `row`.
    fn from_row(row: &Row) -> Result<Self>;
}

impl FromRow for Row {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(row.clone())
    }
}

impl Row {
    /// Decodes the whole row into `T`: a tuple, a `#[derive(FromRow)]` struct (see
    /// [`FromRow`]).
    pub fn decode<T: FromRow>(&self) -> Result<T> {
        T::from_row(self)
    }

    /// For a row decoded by position into `expected` values: the row must have exactly as
    /// many columns, so that a column added to the query, or one missing, is an error rather
    /// than values silently shifted or dropped.
    pub fn expect_columns(&self, expected: usize) -> Result<()> {
        if self.len() == expected {
            return Ok(());
        }
        Err(Error::ColumnCount {
            expected,
            found: self.len(),
            columns: self.columns().join(", "),
        })
    }
}

macro_rules! tuple_from_row {
    ($n:literal: $($t:ident $i:tt),+) => {
        impl<$($t: FromValue),+> FromRow for ($($t,)+) {
            fn from_row(row: &Row) -> Result<Self> {
                row.expect_columns($n)?;
                Ok(($(row.get::<$t>($i)?,)+))
            }
        }
    };
}

tuple_from_row!(1: A 0);
tuple_from_row!(2: A 0, B 1);
tuple_from_row!(3: A 0, B 1, C 2);
tuple_from_row!(4: A 0, B 1, C 2, D 3);
tuple_from_row!(5: A 0, B 1, C 2, D 3, E 4);
tuple_from_row!(6: A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_row!(7: A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_row!(8: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_from_row!(9: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_from_row!(10: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_from_row!(11: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_from_row!(12: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
tuple_from_row!(13: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
tuple_from_row!(14: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);
tuple_from_row!(15: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14);
tuple_from_row!(16: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15);
