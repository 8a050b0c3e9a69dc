//! User statements on a transaction's PostgreSQL connection: `?N` rewritten to `$N`,
//! transaction control refused before anything is sent, parameters bound by the statement's
//! declared types, rows decoded into neutral values.

use std::sync::Arc;

use super::bind::{column_names, decode_row, params_of, PgParam};
use super::placeholders::{parts, rewrite, Part};
use super::session::{error, PgSession};
use crate::error::{Error, Result};
use crate::value::{ParamValue, Params, Row, Value, ValueRef};

/// `sql` and its parameters, owned: a statement runs in a task of its own.
pub(crate) fn owned<P: Params + ?Sized>(sql: &str, params: &P) -> Result<(String, Vec<Value>)> {
    let values = (0..params.param_count())
        .map(|i| {
            params
                .param(i)
                .to_param()
                .map(ParamValue::into_owned)
                .map_err(|source| Error::Parameter {
                    sql: sql.to_owned(),
                    index: i + 1,
                    source,
                })
        })
        .collect::<Result<_>>()?;
    Ok((sql.to_owned(), values))
}

impl PgSession {
    /// Runs one statement; the number of rows it changed.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        values: Vec<ValueRef<'_>>,
        restrict: bool,
    ) -> Result<u64> {
        let client = self.client()?;
        let text = checked(sql)?;
        self.pipelined(&client, async {
            let statement = self.prepare(&client, sql, &text).await?;
            let params = bound(sql, &statement, &values)?;
            self.restricted(restrict, async {
                crate::backend::sent(self.id, sql, false);
                client
                    .execute(&statement, &params_of(&params))
                    .await
                    .map_err(|e| error(e, Some(sql)))
            })
            .await
        })
        .await
    }

    /// Runs a query; its first `limit` rows.
    pub(crate) async fn query(
        &self,
        sql: &str,
        values: Vec<ValueRef<'_>>,
        restrict: bool,
        limit: usize,
    ) -> Result<Vec<Row>> {
        let client = self.client()?;
        let text = checked(sql)?;
        let (statement, rows) = self
            .pipelined(&client, async {
                let statement = self.prepare(&client, sql, &text).await?;
                let params = bound(sql, &statement, &values)?;
                let rows = self
                    .restricted(restrict, async {
                        crate::backend::sent(self.id, sql, false);
                        client
                            .query(&statement, &params_of(&params))
                            .await
                            .map_err(|e| error(e, Some(sql)))
                    })
                    .await?;
                Ok((statement, rows))
            })
            .await?;
        let columns: Arc<[String]> = column_names(statement.columns()).into();
        rows.iter()
            .take(limit)
            .map(|row| {
                let values = decode_row(row).map_err(|e| Error::Conversion {
                    column: e.column.clone(),
                    target: "Value",
                    found: "an unsupported PostgreSQL type",
                    source: Box::new(e),
                })?;
                Ok(Row::new(columns.clone(), values))
            })
            .collect()
    }

    /// Runs several `;`-separated statements without parameters.
    pub(crate) async fn execute_batch(&self, sql: &str, restrict: bool) -> Result<()> {
        let client = self.client()?;
        checked(sql)?;
        self.pipelined(
            &client,
            self.restricted(restrict, async {
                crate::backend::sent(self.id, sql, false);
                client
                    .batch_execute(sql)
                    .await
                    .map_err(|e| error(e, Some(sql)))
            }),
        )
        .await
    }

    /// The prepared statement of `text` (the rewritten `sql`), from the connection's cache
    /// or, at its first use on the connection, prepared by the server (a round trip).
    async fn prepare(
        &self,
        client: &deadpool_postgres::Object,
        sql: &str,
        text: &str,
    ) -> Result<tokio_postgres::Statement> {
        let cached = client.statement_cache.size();
        let statement = client
            .prepare_cached(text)
            .await
            .map_err(|e| error(e, Some(sql)));
        if client.statement_cache.size() != cached || statement.is_err() {
            self.round_trips.add(1);
        }
        statement
    }

    /// Runs a user closure on the client inside a guard savepoint, and checks afterwards
    /// that the closure left the transaction as it found it (see `Tx::postgres`).
    pub(crate) async fn call<R, F>(&self, f: F, restrict: bool) -> Result<R>
    where
        F: for<'c> FnOnce(
            &'c tokio_postgres::Client,
        )
            -> futures_util::future::BoxFuture<'c, Result<R, tokio_postgres::Error>>,
    {
        const OPEN: &str = "SAVEPOINT _transactional_call";
        const OPEN_READ_ONLY: &str =
            "SAVEPOINT _transactional_call; SET LOCAL transaction_read_only = on";
        const RELEASE: &str = "RELEASE _transactional_call";
        let client = self.client()?;
        self.exec(if restrict { OPEN_READ_ONLY } else { OPEN })
            .await?;
        let result = f(&client).await.map_err(|e| error(e, None));
        let value = result?;
        match self.exec(RELEASE).await {
            Ok(()) => Ok(value),
            // The transaction is failed: a statement of the closure was rejected and its
            // error swallowed. The frame fails with this error.
            Err(Error::Postgres(e)) if e.code() == Some("25P02") => Err(Error::Postgres(e)),
            Err(Error::Postgres(e))
                if matches!(e.code(), Some("3B001") | Some("25P01") | Some("25000")) =>
            {
                Err(Error::Forbidden {
                    sql: None,
                    reason: format!(
                        "the closure given to `Tx::postgres` ended the transaction or one of \
                         the library's savepoints ({}): the transaction has been aborted",
                        e.message()
                    ),
                })
            }
            Err(other) => Err(other),
        }
    }

    /// Runs `work` read-only when `restrict` (a task that joined a frame that may write as
    /// read-only): inside a savepoint of its own made read-only by the server.
    async fn restricted<R>(
        &self,
        restrict: bool,
        work: impl std::future::Future<Output = Result<R>>,
    ) -> Result<R> {
        if !restrict {
            return work.await;
        }
        self.exec("SAVEPOINT _transactional_ro; SET LOCAL transaction_read_only = on")
            .await?;
        let result = work.await;
        let end = match &result {
            Ok(_) => "RELEASE SAVEPOINT _transactional_ro",
            Err(_) => {
                "ROLLBACK TO SAVEPOINT _transactional_ro; RELEASE SAVEPOINT _transactional_ro"
            }
        };
        self.exec(end).await?;
        result
    }
}

/// `sql` with `?N` rewritten, after refusing transaction control.
fn checked(sql: &str) -> Result<std::borrow::Cow<'_, str>> {
    if let Some(keyword) = transaction_control(sql) {
        return Err(Error::Forbidden {
            sql: Some(sql.to_owned()),
            reason: format!(
                "`{keyword}`: transaction control belongs to the library: a \
                 `#[transactional]` body commits by returning `Ok` and rolls back by returning \
                 `Err`; for a savepoint, call a nested `#[transactional]` fn"
            ),
        });
    }
    rewrite(sql).map_err(|e| Error::Parameter {
        sql: sql.to_owned(),
        index: 0,
        source: Box::new(e),
    })
}

fn bound<'a>(
    sql: &str,
    statement: &tokio_postgres::Statement,
    values: &'a [ValueRef<'a>],
) -> Result<Vec<PgParam<'a>>> {
    let expected = statement.params().len();
    if values.len() != expected {
        return Err(Error::ParameterCount {
            sql: sql.to_owned(),
            expected,
            given: values.len(),
        });
    }
    Ok(values.iter().map(|v| PgParam(*v)).collect())
}

/// The first words of any statement in `sql` that would take transaction control from the
/// library: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE and their synonyms, and SET/RESET of
/// the transaction's own settings (`SET TRANSACTION ..`, `transaction_read_only`, ..), which
/// the library sets for `read_only` and `isolation`. Literals, quoted identifiers and
/// comments are skipped.
pub(crate) fn transaction_control(sql: &str) -> Option<String> {
    let mut statements = vec![String::new()];
    for (kind, range) in parts(sql) {
        let current = statements.last_mut().expect("never empty");
        match kind {
            Part::Quoted => current.push(' '),
            Part::Code => {
                for c in sql[range].chars() {
                    if c == ';' {
                        statements.push(String::new());
                    } else {
                        statements.last_mut().expect("never empty").push(c);
                    }
                }
            }
        }
    }
    statements.iter().find_map(|statement| {
        let words: Vec<String> = statement
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_uppercase)
            .collect();
        let first = words.first()?.as_str();
        let refused = match first {
            "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT"
            | "RELEASE" => true,
            "PREPARE" => words.get(1).is_some_and(|w| w == "TRANSACTION"),
            "SET" | "RESET" => words
                .iter()
                .skip(1)
                .any(|w| w.starts_with("TRANSACTION") || w == "CHARACTERISTICS" || w == "ALL"),
            _ => false,
        };
        refused.then(|| words.iter().take(2).cloned().collect::<Vec<_>>().join(" "))
    })
}

#[cfg(test)]
mod tests {
    use super::transaction_control;

    #[test]
    fn transaction_control_is_found_in_any_statement_and_case() {
        for sql in [
            "BEGIN",
            "begin isolation level serializable",
            "COMMIT",
            "  commit;",
            "SELECT 1; ROLLBACK",
            "savepoint x",
            "RELEASE x",
            "END",
            "abort",
            "start transaction",
            "PREPARE TRANSACTION 'x'",
            "SET TRANSACTION READ WRITE",
            "set transaction_read_only = off",
            "SET LOCAL transaction_read_only = off",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "/* c */ COMMIT",
            "-- c\nCOMMIT",
        ] {
            assert!(transaction_control(sql).is_some(), "{sql}");
        }
    }

    #[test]
    fn ordinary_statements_pass_even_when_they_mention_the_words() {
        for sql in [
            "SELECT 'COMMIT'",
            "INSERT INTO t(x) VALUES ('BEGIN; ROLLBACK')",
            "SELECT \"commit\" FROM t",
            "UPDATE t SET x = 1 WHERE y = 'END'",
            "SET search_path TO app",
            "SET LOCAL statement_timeout = 100",
            "PREPARE q AS SELECT 1",
            "CREATE TABLE rollback_log(x int)",
            "SELECT $$ COMMIT $$",
        ] {
            assert_eq!(transaction_control(sql), None, "{sql}");
        }
    }
}
