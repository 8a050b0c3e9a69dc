//! `serde_json::Value` is stored as its serialized text: a PostgreSQL `json`/`jsonb`
//! parameter takes it as JSON, a text column or SQLite as text. JSON `null` is the text
//! `null`, not SQL `NULL` (bind an `Option` for that).

use super::{mismatch, BoxError};
use crate::value::{FromValue, ParamValue, ToParam, Value, ValueRef};

/// As text, serialized compactly.
impl ToParam for serde_json::Value {
    fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
        Ok(Value::Text(self.to_string()).into())
    }
}

/// From text (parsed), or from a number: SQLite stores a bare JSON number such as `5`
/// as a number in a column whose declared type has numeric affinity (`JSON`, `JSONB`).
impl FromValue for serde_json::Value {
    fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
        match value {
            ValueRef::Text(s) => Ok(serde_json::from_str(s)?),
            ValueRef::Integer(i) => Ok(i.into()),
            ValueRef::Real(f) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .ok_or_else(|| format!("{f} is not a JSON number").into()),
            _ => Err(mismatch(value, "JSON value")),
        }
    }
}
