//! User statements on a SQLite connection: preparing through the statement cache, binding
//! neutral parameters, and reading rows into neutral values.

use std::sync::Arc;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef as SqliteValueRef};
use rusqlite::{CachedStatement, Connection, Statement};

use super::conn::{is_library_statement, ConnGuard};
use crate::error::{Error, Result};
use crate::value::{ParamVisitor, Params, Row, ToParam, Value, ValueRef};

impl ConnGuard<'_> {
    /// Runs one statement; the number of rows it changed.
    pub(crate) fn run_execute<P: Params + ?Sized>(
        &self,
        sql: &str,
        params: &P,
        read_only: bool,
    ) -> Result<u64> {
        let mut stmt = prepare(self, sql, read_only)?;
        bind(&mut stmt, params, sql)?;
        crate::backend::sent(self.id(), sql, false);
        stmt.raw_execute()
            .map(|changed| changed as u64)
            .map_err(|e| Error::sqlite(e, Some(sql)))
    }

    /// Runs a query; its first `limit` rows.
    pub(crate) fn run_query<P: Params + ?Sized>(
        &self,
        sql: &str,
        params: &P,
        read_only: bool,
        limit: usize,
    ) -> Result<Vec<Row>> {
        let mut stmt = prepare(self, sql, read_only)?;
        bind(&mut stmt, params, sql)?;
        crate::backend::sent(self.id(), sql, false);
        collect_rows(&mut stmt, limit).map_err(|e| Error::sqlite(e, Some(sql)))
    }
}

fn prepare<'c>(conn: &'c Connection, sql: &str, read_only: bool) -> Result<CachedStatement<'c>> {
    if is_library_statement(sql) {
        // The cache would serve the library's own prepared statement, which the authorizer
        // saw as the library's: refuse it here.
        return Err(Error::Forbidden {
            sql: Some(sql.to_owned()),
            reason: "transaction control belongs to the library: a `#[transactional]` body \
                     commits by returning `Ok` and rolls back by returning `Err`; for a \
                     savepoint, call a nested `#[transactional]` fn"
                .to_owned(),
        });
    }
    let stmt = conn
        .prepare_cached(sql)
        .map_err(|e| Error::sqlite(e, Some(sql)))?;
    // Checked at every execution, not only when the statement was prepared: a cached
    // statement may have been prepared in a frame that could write.
    if read_only && !stmt.readonly() {
        return Err(Error::ReadOnly);
    }
    Ok(stmt)
}

/// Binds every parameter, after checking that there are as many as placeholders.
#[inline]
fn bind<P: Params + ?Sized>(stmt: &mut Statement<'_>, params: &P, sql: &str) -> Result<()> {
    let expected = stmt.parameter_count();
    let given = params.param_count();
    if given != expected {
        return Err(Error::ParameterCount {
            sql: sql.to_owned(),
            expected,
            given,
        });
    }
    params.visit_params(&mut Binder { stmt, sql })
}

/// Binds each parameter as it is visited, with its own type (no dynamic call per value).
struct Binder<'s, 'c> {
    stmt: &'s mut Statement<'c>,
    sql: &'s str,
}

impl ParamVisitor for Binder<'_, '_> {
    #[inline]
    fn visit<T: ToParam + ?Sized>(&mut self, index: usize, param: &T) -> Result<()> {
        let value = param.to_param().map_err(|source| Error::Parameter {
            sql: self.sql.to_owned(),
            index: index + 1,
            source,
        })?;
        self.stmt
            .raw_bind_parameter(index + 1, Bound(value.as_value_ref()))
            .map_err(|e| Error::sqlite(e, Some(self.sql)))
    }
}

/// A neutral value as rusqlite binds it.
struct Bound<'a>(ValueRef<'a>);

impl ToSql for Bound<'_> {
    #[inline]
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            ValueRef::Null => SqliteValueRef::Null,
            ValueRef::Integer(i) => SqliteValueRef::Integer(i),
            ValueRef::Real(f) => SqliteValueRef::Real(f),
            ValueRef::Text(s) => SqliteValueRef::Text(s.as_bytes()),
            ValueRef::Blob(b) => SqliteValueRef::Blob(b),
        }))
    }
}

fn collect_rows(stmt: &mut Statement<'_>, limit: usize) -> rusqlite::Result<Vec<Row>> {
    let columns: Arc<[String]> = stmt.column_names().map(str::to_owned).collect();
    let width = columns.len();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next()? else { break };
        let values = (0..width)
            .map(|i| row.get_ref(i).map(value_of))
            .collect::<rusqlite::Result<_>>()?;
        out.push(Row::new(columns.clone(), values));
    }
    Ok(out)
}

fn value_of(value: SqliteValueRef<'_>) -> Value {
    match value {
        SqliteValueRef::Null => Value::Null,
        SqliteValueRef::Integer(i) => Value::Integer(i),
        SqliteValueRef::Real(f) => Value::Real(f),
        // SQLite does not check that text is UTF-8; invalid bytes are replaced, not lost
        // silently as an error far from the cause.
        SqliteValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        SqliteValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
