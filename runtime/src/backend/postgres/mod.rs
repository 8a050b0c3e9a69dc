//! PostgreSQL through tokio-postgres and a deadpool-postgres pool (feature `postgres`).
//!
//! Outermost transactions lease a pooled connection each and run in parallel; savepoints
//! inside one are ordered by the frame machinery exactly as on SQLite.
//!
//! - `open`: `Database::connect` and its builder.
//! - `session`: one transaction's connection: BEGIN, savepoints, the end of a frame, and the
//!   connection's way back to the pool.
//! - `statements`: user statements: `?N` → `$N`, transaction control refused, binding and
//!   decoding.
//! - `bind`: neutral values encoded by the statement's declared types, and decoded.
//! - `placeholders`: the `?N` → `$N` rewrite (skipping literals, comments, dollar quotes).
//! - `errors`: a server error kept whole and classified.
//! - `pool`: deadpool with bounded waits that never hands out a connection inside a
//!   transaction, a failed one, or a broken one.

pub(crate) mod bind;
pub(crate) mod errors;
pub(crate) mod open;
pub(crate) mod placeholders;
pub(crate) mod pool;
pub(crate) mod queue;
pub(crate) mod session;
pub(crate) mod statements;
#[cfg(test)]
pub(crate) mod test_db;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pool::{PgPool, PoolError};
use session::{PgHold, PgSession};

use crate::atomic::Isolation;
use crate::backend::BeginSpec;
use crate::database::Database;
use crate::error::{Error, Result};

/// What a PostgreSQL database holds: its pool, and who holds its connections.
pub(crate) struct PgDb {
    pub(crate) pool: PgPool,
    /// The outermost transactions holding a connection, for the error of a wait for one.
    holders: Arc<Mutex<BTreeMap<u64, Holder>>>,
}

#[derive(Clone, Copy, Debug)]
struct Holder {
    name: Option<&'static str>,
    opened_at: &'static std::panic::Location<'static>,
}

/// A transaction's entry in its database's list of holders, removed when dropped.
pub(crate) struct Holding {
    holders: Arc<Mutex<BTreeMap<u64, Holder>>>,
    id: u64,
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.holders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl PgDb {
    pub(crate) fn new(pool: PgPool) -> Self {
        PgDb {
            pool,
            holders: Arc::default(),
        }
    }

    /// `Database::close`: waits (at most the pool's wait) until no transaction holds a
    /// connection, then closes the pool, which drops its connections (and any that come back
    /// later, from a transaction that outlived the wait).
    pub(crate) async fn close(&self, db: &Database) -> Result<()> {
        let bound = self.pool.wait();
        let started = std::time::Instant::now();
        let drained = loop {
            if self
                .holders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
            {
                break true;
            }
            if started.elapsed() >= bound {
                break false;
            }
            // Transactions end at their own pace; a millisecond's poll is plenty for a
            // shutdown and needs no notification on the transaction path.
            crate::wait::sleep(std::time::Duration::from_millis(1)).await;
        };
        if !drained {
            return Err(Error::Busy {
                detail: format!(
                    "`Database::close` waited {bound:?} for the open transactions of {} to end \
                     (the database stays closed to new ones; their connections close when \
                     they end):\n{}",
                    db.label(),
                    db.activity()
                ),
                source: None,
            });
        }
        self.pool.close();
        Ok(())
    }

    /// Leases a connection and queues BEGIN with the transaction's mode.
    pub(crate) async fn begin_root(
        &self,
        db: &Database,
        spec: BeginSpec,
    ) -> Result<(Arc<PgSession>, PgHold)> {
        let waiting = self
            .pool
            .is_full()
            .then(|| db.inner.stats.waiting(crate::stats::WaitKind::Begin));
        let object = self.pool.get().await.map_err(|e| self.pool_error(db, e))?;
        drop(waiting);
        self.holders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                spec.id,
                Holder {
                    name: spec.name,
                    opened_at: spec.opened_at,
                },
            );
        let session = Arc::new(PgSession::new(
            object,
            spec.inside_same_db.clone(),
            self.pool.round_trips().clone(),
        ));
        // From here the hold owns the connection: dropped (BEGIN failed, this future was
        // cancelled), it gives it back through the pool's reclaim.
        let hold = PgHold {
            session: session.clone(),
            rollback_timeout: self.pool.rollback_timeout(),
            clean_returns: self.pool.clean_returns().clone(),
            _holding: Holding {
                holders: self.holders.clone(),
                id: spec.id,
            },
        };
        let mut begin = begin_sql(spec.isolation, spec.read_only);
        if spec.inside_same_db.is_some() {
            // Inside another transaction of this task on the same database, a lock that one
            // holds is never released while this one waits: bound the wait by `turn_wait`
            // (the error then names the enclosing transaction, see `PgSession::explain`).
            begin += &format!(
                "; SET LOCAL lock_timeout = '{}ms'",
                db.inner.turn_wait.as_millis().max(1)
            );
        }
        // Sent with the transaction's first statement (`queue.rs`).
        session.begin(begin);
        Ok((session, hold))
    }

    fn pool_error(&self, db: &Database, err: PoolError) -> Error {
        match err {
            PoolError::Exhausted { size, wait } => {
                db.inner.stats.timed_out();
                let holders = self.holders.lock().unwrap_or_else(|p| p.into_inner());
                let mut held_by: Vec<String> = holders
                    .iter()
                    .take(8)
                    .map(|(id, h)| {
                        let name = h.name.map(|n| format!(" `{n}`")).unwrap_or_default();
                        format!(
                            "transaction #{id}{name} opened at {}:{}",
                            h.opened_at.file(),
                            h.opened_at.line()
                        )
                    })
                    .collect();
                if holders.len() > held_by.len() {
                    held_by.push(format!("{} more", holders.len() - held_by.len()));
                }
                Error::Busy {
                    detail: format!(
                        "waited {wait:?} (`pool_wait`) for a connection of {}: all {size} are \
                         held by transactions that have not ended ({}). Raise `pool_size` or \
                         the wait, or end transactions sooner; a `requires_new` inside a \
                         transaction needs a second connection",
                        db.label(),
                        held_by.join("; ")
                    ),
                    source: None,
                }
            }
            PoolError::Connect(e) => Error::Postgres(e),
            other => Error::Background {
                what: format!("a connection to {}", db.label()),
                source: Some(Box::new(other)),
            },
        }
    }
}

/// `BEGIN` with the transaction's isolation level and access mode.
fn begin_sql(isolation: Option<Isolation>, read_only: bool) -> String {
    let mut sql = String::from("BEGIN");
    if let Some(level) = isolation {
        sql += match level {
            Isolation::ReadCommitted => " ISOLATION LEVEL READ COMMITTED",
            Isolation::RepeatableRead => " ISOLATION LEVEL REPEATABLE READ",
            Isolation::Serializable => " ISOLATION LEVEL SERIALIZABLE",
        };
    }
    // Always spelled out: a session default a user statement set on the pooled connection
    // (`SET default_transaction_read_only = on`) must not decide the mode.
    sql += if read_only {
        " READ ONLY"
    } else {
        " READ WRITE"
    };
    sql
}
