//! `Uuid` is stored as TEXT, hyphenated and lowercase (`67e55044-10b1-426f-9247-bb680e5fe0c8`).
//! rusqlite's own `uuid` support stores a 16-byte BLOB instead; TEXT is chosen here because
//! it is the one form both backends share: PostgreSQL parses it into a `uuid` parameter and
//! this crate reads a `uuid` column back as it, SQLite compares and shows it as written, and
//! a `TEXT` column of either backend holds it. A 16-byte BLOB (rusqlite's form, or a
//! `bytea`) still reads as a `Uuid`.

use uuid::Uuid;

use super::{mismatch, BoxError};
use crate::value::{FromValue, ParamValue, ToParam, Value, ValueRef};

/// As text, hyphenated and lowercase.
impl ToParam for Uuid {
    fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
        Ok(Value::Text(self.hyphenated().to_string()).into())
    }
}

/// From text in any form `Uuid::parse_str` takes, or from a BLOB of 16 bytes.
impl FromValue for Uuid {
    fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
        match value {
            ValueRef::Text(s) => {
                Uuid::parse_str(s).map_err(|e| format!("{s:?} is not a UUID: {e}").into())
            }
            ValueRef::Blob(b) => Uuid::from_slice(b)
                .map_err(|_| format!("a BLOB of {} bytes is not a UUID", b.len()).into()),
            _ => Err(mismatch(value, "UUID")),
        }
    }
}
