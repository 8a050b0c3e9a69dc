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
    /// The credited account would hold more than [`MAX_BALANCE`].
    #[error("account {account} holds {balance}; crediting {amount} would take it past the most an account may hold ({max})", max = MAX_BALANCE)]
    BalanceLimit {
        /// The account to credit.
        account: i64,
        /// Its balance when the transfer ran.
        balance: i64,
        /// What the transfer would have added.
        amount: i64,
    },
    /// Opening this balance would take the bank's total money past [`MAX_TOTAL_MONEY`].
    #[error("the bank holds {total} in all; an opening balance of {amount} would take it past the most it may hold ({max})", max = MAX_TOTAL_MONEY)]
    MoneyLimit {
        /// The sum of the opening balances so far (all the money there is).
        total: i64,
        /// The opening balance refused.
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

/// Why [`migrate`] refused the database.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] transactional::Error),
    /// Balances that are not integers: an overflow past `i64::MAX` made money.
    #[error(
        "the database holds accounts whose balance is not an integer (ids {ids}): an older \
         version of the bank let a balance overflow past i64::MAX, which creates money; \
         restore a backup or correct those rows before serving this file"
    )]
    Overflowed {
        /// The first (up to 20) such accounts.
        ids: String,
    },
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

/// The most an account may hold. SQLite computes `balance + amount` past `i64::MAX` as a
/// REAL instead of failing, and a REAL balance passes `balance >= 0`, is unreadable as an
/// `i64`, and rounds: money appears from nothing. So a credit checks this bound in its own
/// `UPDATE` (and the schema refuses any balance that is not an integer).
pub const MAX_BALANCE: i64 = i64::MAX;

/// The most money the whole bank may hold: the sum of the opening balances, which transfers
/// never change. Bounding it keeps every sum the audit takes of balances or opening
/// balances within `i64` (SQLite's `sum()` fails on overflow, which would turn the audit
/// into a 500). An account opening past it is refused.
pub const MAX_TOTAL_MONEY: i64 = i64::MAX;

/// The engine a [`Database`] runs on. It picks the few statements that differ — the schema,
/// and the check [`migrate`] makes of an older SQLite file; every other statement of the bank
/// is the same text on both — and the options of the write requests' transactions (`api.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (or `:memory:`).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The engine of `db`. The library does not name it, but labels a PostgreSQL database
    /// with its URL (the password left out) and a SQLite one with its path or `:memory:`.
    pub fn of(db: &Database) -> Backend {
        match is_postgres_url(db.label()) {
            true => Backend::Postgres,
            false => Backend::Sqlite,
        }
    }
}

/// Whether `db` names a PostgreSQL server (`postgres://..` or `postgresql://..`) rather than
/// a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS account (
    id              INTEGER PRIMARY KEY,
    owner           TEXT    NOT NULL,
    opening_balance INTEGER NOT NULL CHECK (opening_balance >= 0),
    balance         INTEGER NOT NULL CHECK (typeof(balance) = 'integer' AND balance >= 0)
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

/// [`SCHEMA`] on PostgreSQL: `BIGINT` columns, which hold nothing but integers (the
/// arithmetic past `i64::MAX` that SQLite turns into a REAL is an error there), and ids from
/// an identity column, as `INTEGER PRIMARY KEY` gives them on SQLite.
const POSTGRES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS account (
    id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    owner           TEXT   NOT NULL,
    opening_balance BIGINT NOT NULL CHECK (opening_balance >= 0),
    balance         BIGINT NOT NULL CHECK (balance >= 0)
);
CREATE TABLE IF NOT EXISTS transfer (
    id      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    from_id BIGINT NOT NULL REFERENCES account(id),
    to_id   BIGINT NOT NULL REFERENCES account(id),
    amount  BIGINT NOT NULL CHECK (amount > 0),
    CHECK (from_id <> to_id)
);
CREATE INDEX IF NOT EXISTS transfer_from ON transfer(from_id);
CREATE INDEX IF NOT EXISTS transfer_to ON transfer(to_id);
";

/// Creates the tables if they do not exist yet, and refuses a database whose money has
/// already overflowed.
///
/// A file created before the `typeof(balance) = 'integer'` check keeps its old table
/// (`CREATE TABLE IF NOT EXISTS` leaves it, and SQLite cannot add a `CHECK` to a table in
/// place): the bound in [`transfer`]'s credit and in [`open_account`] still protect it, since
/// they are in the statements, not the schema. But if such a file already holds a balance
/// that is not an integer — money made by an overflow — serving it would answer 500s and
/// audit lies, so this fails with an error naming the accounts, and the server does not start.
/// (A PostgreSQL `BIGINT` holds nothing else: there is nothing to check.)
#[transactional(db = db, name = "migrate")]
pub async fn migrate(db: &Database) -> Result<(), MigrateError> {
    let tx = transactional::current()?;
    if Backend::of(db) == Backend::Postgres {
        tx.execute_batch(POSTGRES_SCHEMA).await?;
        return Ok(());
    }
    tx.execute_batch(SCHEMA).await?;
    let broken = tx
        .query_row(
            "SELECT count(*), coalesce(group_concat(id, ', '), '') FROM
                (SELECT id FROM account
                 WHERE typeof(balance) <> 'integer' OR typeof(opening_balance) <> 'integer'
                 ORDER BY id LIMIT 20)",
            (),
        )
        .await?;
    let (count, ids): (i64, String) = (broken.get(0)?, broken.get(1)?);
    if count > 0 {
        return Err(MigrateError::Overflowed { ids });
    }
    Ok(())
}

/// Opens an account holding `opening_balance`.
#[transactional(name = "open_account")]
pub async fn open_account(owner: String, opening_balance: i64) -> Result<Account, BankError> {
    let tx = transactional::current()?;
    // Inserted only while the bank's total stays within MAX_TOTAL_MONEY; checked as
    // `total <= max - amount` so that the check itself cannot overflow, with `max - amount`
    // computed here (PostgreSQL cannot infer the type of `?3 - ?2` from two parameters). The
    // sum reads every account, which is fine at this example's scale; a real bank would keep
    // the total in a row of its own.
    let room = MAX_TOTAL_MONEY.saturating_sub(opening_balance);
    let row = tx
        .query_opt(
            "INSERT INTO account(owner, opening_balance, balance)
             SELECT ?1, ?2, ?2
             WHERE (SELECT coalesce(sum(opening_balance), 0) FROM account) <= ?3
             RETURNING id",
            (&owner, opening_balance, room),
        )
        .await?;
    let Some(row) = row else {
        let total = tx
            .query_row("SELECT coalesce(sum(opening_balance), 0) FROM account", ())
            .await?
            .get(0)?;
        return Err(BankError::MoneyLimit {
            total,
            amount: opening_balance,
        });
    };
    let id = row.get(0)?;
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
    // Bounded, written so the bound cannot overflow (`balance <= max - amount`, the
    // subtraction done here, as in `open_account`): without it SQLite would store the sum
    // past i64::MAX as a REAL (see MAX_BALANCE), and PostgreSQL would fail the statement.
    let credited = tx
        .execute(
            "UPDATE account SET balance = balance + ?2 WHERE id = ?1 AND balance <= ?3",
            (to, amount, MAX_BALANCE.saturating_sub(amount)),
        )
        .await?;
    if credited == 0 {
        let row = tx
            .query_opt("SELECT balance FROM account WHERE id = ?1", (to,))
            .await?;
        return Err(match row {
            None => BankError::UnknownAccount(to),
            Some(row) => BankError::BalanceLimit {
                account: to,
                balance: row.get(0)?,
                amount,
            },
        });
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
    // The sums of balances and of opening balances stay within i64 (MAX_TOTAL_MONEY). The
    // money that has flowed through an account does not: money going back and forth adds
    // up without end, and SQLite's `sum()` fails on overflow. So each account's net flow
    // is summed in two parts, the amounts' high bits (`amount >> 20`) and low 20 bits,
    // whose sums cannot overflow for any number of transfers the table can hold with
    // amounts the API takes; only the net, which is the balance's change, is put together.
    let row = transactional::current()?
        .query_row(
            "WITH flow(id, hi, lo) AS (
                SELECT to_id, amount >> 20, amount & 1048575 FROM transfer
                UNION ALL
                SELECT from_id, -(amount >> 20), -(amount & 1048575) FROM transfer
             ),
             net(id, hi, lo) AS (SELECT id, sum(hi), sum(lo) FROM flow GROUP BY id)
             SELECT
                (SELECT count(*) FROM account),
                (SELECT count(*) FROM transfer),
                (SELECT coalesce(sum(opening_balance), 0) FROM account),
                (SELECT coalesce(sum(balance), 0) FROM account),
                (SELECT count(*) FROM account AS a LEFT JOIN net AS n ON n.id = a.id
                 WHERE a.balance - a.opening_balance
                    <> coalesce(n.hi, 0) * 1048576 + coalesce(n.lo, 0))",
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
