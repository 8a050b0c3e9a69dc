//! Neutral values: what statements take as parameters and what rows hold, the same on every
//! backend. No backend crate appears here; each backend binds a [`ValueRef`] and decodes its
//! columns into [`Value`]s (`backend/*/bind.rs`).
//!
//! A parameter is any [`ToParam`]: integers, floats, text, bytes, `bool`, `Option` of any of
//! them, and [`Value`] itself. Statements take them as tuples, `()`, slices, or
//! [`params!`](crate::params) for a list of mixed types. A column is read with
//! [`Row::get`](crate::Row::get) into any [`FromValue`].
//!
//! With the crate's features `chrono`, `time`, `uuid` and `serde_json`, those crates' dates,
//! times, UUIDs and JSON values are parameters and column values too, stored as text in one
//! form per type that both backends take and give back (`types.rs` says which and why).

mod from_row;
mod from_value;
mod params;
mod row;
pub(crate) mod types;

pub use from_row::FromRow;
pub use from_value::FromValue;
pub use params::{ParamValue, ParamVisitor, Params, ToParam};
pub use row::{ColumnIndex, Row};

use std::fmt;

/// One SQL value, owned.
///
/// The storage classes both backends share. On PostgreSQL, integer columns of every width
/// read as `Integer`, `real`/`double precision` as `Real`, `boolean` as `Integer` (0 or 1),
/// text-like columns (`text`, `varchar`, `char`, `name`, `json`, `jsonb`) as `Text`, `bytea`
/// as `Blob`; `uuid`, `date`, `time`, `timestamp` and `timestamptz` as `Text` in the forms
/// the `chrono`, `time` and `uuid` features write and read (`2024-01-02 03:04:05.123456`, a
/// `timestamptz` at UTC as `2024-01-02T03:04:05.123456+00:00`, `infinity`); other types
/// (`interval`, arrays…) are read through a cast in SQL (`x::text`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A borrowed [`Value`]: what a parameter is bound as.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ValueRef<'a> {
    /// SQL `NULL`.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl Value {
    /// This value, borrowed.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }

    /// The SQL name of the value's storage class: `NULL`, `INTEGER`, `REAL`, `TEXT`, `BLOB`.
    pub fn type_name(&self) -> &'static str {
        self.as_ref().type_name()
    }
}

impl ValueRef<'_> {
    /// The SQL name of the value's storage class: `NULL`, `INTEGER`, `REAL`, `TEXT`, `BLOB`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ValueRef::Null => "NULL",
            ValueRef::Integer(_) => "INTEGER",
            ValueRef::Real(_) => "REAL",
            ValueRef::Text(_) => "TEXT",
            ValueRef::Blob(_) => "BLOB",
        }
    }

    /// This value, owned.
    pub fn to_owned(&self) -> Value {
        match *self {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Real(x) => write!(f, "{x}"),
            Value::Text(s) => write!(f, "{s:?}"),
            Value::Blob(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}
