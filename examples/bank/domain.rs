//! The bank's data and its transactional operations, free of HTTP.
//!
//! Each operation is a nested `#[transactional]` fn: called from a handler, it runs in a
//! savepoint of the request's transaction, so its failure undoes exactly its own writes.

use serde::{Deserialize, Serialize};
use transactional::{transactional, Database};

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// No account has this id.
    #[error("account {0} does not exist")]
    UnknownAccount(i64),
    /// The debited account holds less than the amount.
    #[error("account {account} holds {balance}, which does not cover {amount}")]
    InsufficientFunds {
        /// The account to debit.
        account: i64,
        /// Its balance when the transfer ran.
        balance: i64,
        /// What the transfer needed.
        amount: i64,
    },
    /// The request breaks a rule that does not depend on the data (checked before any write).
    #[error("{0}")]
    Invalid(String),
    /// A batch with more items than the service takes.
    #[error("a batch takes at most {max} transfers; this one has {len}")]
    BatchTooLarge {
        /// Items in the request.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The database failed; not the client's fault.
    #[error(transparent)]
    Db(#[from] transactional::Error),
}

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: i64,
    pub owner: String,
    pub opening_balance: i64,
    pub balance: i64,
}

/// A committed transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: i64,
    pub from: i64,
    pub to: i64,
    pub amount: i64,
}

/// What the audit found; `conserved` is the service's invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    pub accounts: i64,
    pub transfers: i64,
    pub total_opening: i64,
    pub total_balance: i64,
    /// Accounts whose balance differs from opening + transfers in − transfers out.
    pub mismatched_accounts: i64,
    pub conserved: bool,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS account (
    id              INTEGER PRIMARY KEY,
    owner           TEXT    NOT NULL,
    opening_balance INTEGER NOT NULL CHECK (opening_balance >= 0),
    balance         INTEGER NOT NULL CHECK (balance >= 0)
);
CREATE TABLE IF NOT EXISTS transfer (
    id      INTEGER PRIMARY KEY,
    from_id INTEGER NOT NULL REFERENCES account(id),
    to_id   INTEGER NOT NULL REFERENCES account(id),
    amount  INTEGER NOT NULL CHECK (amount > 0),
    CHECK (from_id <> to_id)
);
CREATE INDEX IF NOT EXISTS transfer_from ON transfer(from_id);
CREATE INDEX IF NOT EXISTS transfer_to ON transfer(to_id);
";

/// Creates the tables if they do not exist yet.
#[transactional(db = db, name = "migrate")]
pub async fn migrate(db: &Database) -> Result<(), transactional::Error> {
    transactional::current()?.execute_batch(SCHEMA).await
}

/// Opens an account holding `opening_balance`.
#[transactional(name = "open_account")]
pub async fn open_account(owner: String, opening_balance: i64) -> Result<Account, BankError> {
    let tx = transactional::current()?;
    let id = tx
        .query_row(
            "INSERT INTO account(owner, opening_balance, balance) VALUES (?1, ?2, ?2) RETURNING id",
            (&owner, opening_balance),
        )
        .await?
        .get(0)?;
    Ok(Account {
        id,
        owner,
        opening_balance,
        balance: opening_balance,
    })
}

/// Moves `amount` from one account to another, or fails and leaves no trace.
///
/// It credits first and debits second on purpose: when the debit fails, the credit is
/// already written, and only the savepoint's rollback takes it back. Done with savepoints
/// that are not ordered, a sibling's rollback could take it back too early or not at all,
/// and money would appear or vanish; `GET /audit` would show it.
#[transactional(name = "transfer")]
pub async fn transfer(from: i64, to: i64, amount: i64) -> Result<Transfer, BankError> {
    let tx = transactional::current()?;
    let credited = tx
        .execute(
            "UPDATE account SET balance = balance + ?2 WHERE id = ?1",
            (to, amount),
        )
        .await?;
    if credited == 0 {
        return Err(BankError::UnknownAccount(to));
    }
    // A real service would await something here (a fraud check, another service); other
    // items of the batch run meanwhile.
    tokio::task::yield_now().await;
    let debited = tx
        .execute(
            "UPDATE account SET balance = balance - ?2 WHERE id = ?1 AND balance >= ?2",
            (from, amount),
        )
        .await?;
    if debited == 0 {
        let row = tx
            .query_opt("SELECT balance FROM account WHERE id = ?1", (from,))
            .await?;
        return Err(match row {
            None => BankError::UnknownAccount(from),
            Some(row) => BankError::InsufficientFunds {
                account: from,
                balance: row.get(0)?,
                amount,
            },
        });
    }
    let id = tx
        .query_row(
            "INSERT INTO transfer(from_id, to_id, amount) VALUES (?1, ?2, ?3) RETURNING id",
            (from, to, amount),
        )
        .await?
        .get(0)?;
    Ok(Transfer {
        id,
        from,
        to,
        amount,
    })
}

/// One account, or `UnknownAccount`.
#[transactional(name = "get_account", read_only)]
pub async fn get_account(id: i64) -> Result<Account, BankError> {
    let row = transactional::current()?
        .query_opt(
            "SELECT id, owner, opening_balance, balance FROM account WHERE id = ?1",
            (id,),
        )
        .await?
        .ok_or(BankError::UnknownAccount(id))?;
    Ok(Account {
        id: row.get(0)?,
        owner: row.get(1)?,
        opening_balance: row.get(2)?,
        balance: row.get(3)?,
    })
}

/// Checks the invariant on one snapshot of the database.
#[transactional(name = "audit", read_only)]
pub async fn audit() -> Result<Audit, BankError> {
    let row = transactional::current()?
        .query_row(
            "SELECT
                (SELECT count(*) FROM account),
                (SELECT count(*) FROM transfer),
                (SELECT coalesce(sum(opening_balance), 0) FROM account),
                (SELECT coalesce(sum(balance), 0) FROM account),
                (SELECT count(*) FROM account AS a WHERE a.balance <> a.opening_balance
                    + (SELECT coalesce(sum(amount), 0) FROM transfer WHERE to_id = a.id)
                    - (SELECT coalesce(sum(amount), 0) FROM transfer WHERE from_id = a.id))",
            (),
        )
        .await?;
    let (total_opening, total_balance, mismatched_accounts) =
        (row.get(2)?, row.get(3)?, row.get(4)?);
    Ok(Audit {
        accounts: row.get(0)?,
        transfers: row.get(1)?,
        total_opening,
        total_balance,
        mismatched_accounts,
        conserved: total_opening == total_balance && mismatched_accounts == 0,
    })
}
