//! Generics, `where` clauses, lifetimes, `impl Trait` arguments and return types.

use std::fmt::{Debug, Display};
use transactional::{transactional, Database, Error};

#[transactional(db = db)]
async fn generic<'a, T, D>(db: &D, items: &'a [T]) -> Result<Option<&'a T>, Error>
where
    T: Debug + Sync,
    D: transactional::AsDatabase + Sync + ?Sized,
{
    Ok(items.first())
}

#[transactional]
async fn impl_arg(label: impl Display + Send, n: u32) -> Result<String, Error> {
    Ok(format!("{label}{n}"))
}

#[transactional]
async fn impl_return(n: u32) -> Result<impl Display, Error> {
    Ok(n * 2)
}

#[transactional(name = "nested_impl")]
async fn impl_in_error(
    n: u32,
) -> Result<Vec<impl Debug>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(vec![n])
}

#[transactional]
async fn const_generic<const N: usize>(values: [u8; N]) -> Result<usize, Error> {
    Ok(values.len())
}

fn main() {
    let _ = |db: Database| async move {
        generic(&db, &[1, 2]).await?;
        impl_arg("x", 1).await?;
        impl_return(1).await?;
        const_generic([1, 2, 3]).await?;
        Ok::<_, Error>(())
    };
    let _ = impl_in_error(1);
}
