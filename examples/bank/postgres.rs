//! The bank on PostgreSQL (feature `postgres`): a pool whose connections work in a schema of
//! the bank's own, so that runs sharing a server — CI jobs, tests, people — never see each
//! other's tables.

use transactional::Database;

/// How long a statement waits for a row lock before it fails with `55P03`
/// (`lock_not_available`), which `retries` re-runs like a lost serialization conflict.
///
/// The bank's write transactions are `SERIALIZABLE`, where waiting for a row another
/// transaction has updated is nearly always futile: when that one commits, the waiter fails
/// with `40001` anyway, and only its rollback would let the waiter go on. Waits, meanwhile,
/// chain: a batch holds the rows of its earlier items while it waits for the next, and with
/// the pool's connections all waiting in cycles, each cycle is broken only by the server's
/// deadlock check (`deadlock_timeout`, 1 s by default), one victim at a time. Under the load
/// test without a `lock_timeout` that stalled every connection for seconds and requests ran
/// out of attempts; with 100 ms they still did; with 20 ms the test took 7–8 s and the
/// unluckiest batch 20-odd attempts, with 2 ms under 6 s and about 15. Failing fast and
/// retrying after a jittered backoff keeps them moving.
pub const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2);

/// Why [`PostgresBank::connect`] failed. `Debug` is the message, as `main` prints it.
#[derive(thiserror::Error)]
pub enum PostgresSetupError {
    /// The schema name is not one the bank takes.
    #[error(
        "schema name `{0}`: use 1 to 63 lowercase ASCII letters, digits and `_`, not starting \
         with a digit or `pg_`"
    )]
    SchemaName(String),
    /// Connecting, or creating the schema, failed.
    #[error(transparent)]
    Db(#[from] transactional::Error),
}

impl std::fmt::Debug for PostgresSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostgresSetupError::Db(err) => std::fmt::Debug::fmt(err, f),
            other => write!(f, "{other}"),
        }
    }
}

/// A PostgreSQL database for the bank: every pooled connection's `search_path` is one schema,
/// created by [`connect`](Self::connect) when it does not exist yet.
pub struct PostgresBank {
    db: Database,
    schema: String,
    created: bool,
}

impl PostgresBank {
    /// Connects to `url` with a pool of `pool_size` connections, each of which works in
    /// `schema` (`SET search_path` when it opens, through the builder's `on_connect`), and
    /// creates the schema if it does not exist. The tables are [`migrate`](super::migrate)'s.
    pub async fn connect(
        url: &str,
        schema: &str,
        pool_size: usize,
    ) -> Result<PostgresBank, PostgresSetupError> {
        check_schema_name(schema)?;
        // The schema is checked above to need no escaping; quoted so that it is taken
        // exactly as written. On `lock_timeout`, see `LOCK_TIMEOUT`.
        let set_path = format!(
            "SET search_path TO \"{schema}\"; SET lock_timeout = '{}ms'",
            LOCK_TIMEOUT.as_millis()
        );
        let db = Database::postgres(url)
            .pool_size(pool_size)
            .on_connect(move |client| {
                let sql = set_path.clone();
                Box::pin(async move { client.batch_execute(&sql).await })
            })
            .connect()
            .await?;
        let created = match db
            .execute_batch(&format!("CREATE SCHEMA \"{schema}\""))
            .await
        {
            Ok(()) => true,
            // 42P06 duplicate_schema: an earlier run's (`--schema` named it, or the run was
            // killed before it could drop it). Used as it is, and kept.
            Err(err) if err.sqlstate() == Some("42P06") => false,
            Err(err) => return Err(err.into()),
        };
        Ok(PostgresBank {
            db,
            schema: schema.to_owned(),
            created,
        })
    }

    /// The database, to [`serve`](super::serve).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The schema the bank's tables are in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Whether [`connect`](Self::connect) created the schema (rather than finding it).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Drops the schema with everything in it — unless `keep`, or the schema was there before
    /// [`connect`](Self::connect) — and closes the pool. Call it after [`serve`](super::serve)
    /// has returned: closing waits for the transactions still open.
    pub async fn close(self, keep: bool) -> transactional::Result<()> {
        let schema = &self.schema;
        let dropped = if keep || !self.created {
            tracing::info!(
                schema,
                created = self.created,
                "keeping the schema (--keep-schema, or it existed before this run)"
            );
            Ok(())
        } else {
            // With time to wait for a lock held by someone looking at the tables.
            let dropped = self
                .db
                .execute_batch(&format!(
                    "SET LOCAL lock_timeout = '10s'; DROP SCHEMA \"{schema}\" CASCADE"
                ))
                .await;
            if dropped.is_ok() {
                tracing::info!(schema, "schema dropped");
            }
            dropped
        };
        let closed = self.db.close().await;
        dropped.and(closed)
    }
}

/// A name PostgreSQL takes unquoted as the same name, so that quoting it changes nothing and
/// it needs no escaping; `pg_` names are reserved for the system.
fn check_schema_name(name: &str) -> Result<(), PostgresSetupError> {
    let valid = (1..=63).contains(&name.len())
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.starts_with("pg_")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    match valid {
        true => Ok(()),
        false => Err(PostgresSetupError::SchemaName(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_names_need_no_quoting() {
        for good in ["bank", "bank_4242", "_x", "a1"] {
            assert!(super::check_schema_name(good).is_ok(), "{good}");
        }
        let long = "x".repeat(64);
        for bad in [
            "",
            "Bank",
            "1bank",
            "pg_bank",
            "bank-1",
            "bank\"; DROP",
            &long,
        ] {
            assert!(super::check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
