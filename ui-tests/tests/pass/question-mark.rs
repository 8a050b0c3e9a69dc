//! A user error type with `From<transactional::Error>`, and `?` converting other errors.

use transactional::{transactional, Error};

#[derive(Debug)]
enum AppError {
    Db(Error),
    Parse(std::num::ParseIntError),
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        AppError::Db(error)
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(error: std::num::ParseIntError) -> Self {
        AppError::Parse(error)
    }
}

#[transactional]
async fn parse_and_store(text: &str) -> Result<i64, AppError> {
    let n: i64 = text.parse()?;
    let tx = transactional::current()?;
    tx.execute("INSERT INTO t(x) VALUES (?1)", (n,)).await?;
    if n < 0 {
        return Err(AppError::Parse("x".parse::<i64>().unwrap_err()));
    }
    Ok(n)
}

type AppResult<T> = std::result::Result<T, AppError>;

#[transactional]
async fn through_alias() -> AppResult<()> {
    parse_and_store("1").await?;
    Ok(())
}

fn main() {
    let _ = through_alias();
    let _ = AppError::Db;
}
