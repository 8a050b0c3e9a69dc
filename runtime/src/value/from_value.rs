//! Reading a column's value as a Rust type.

use super::{Value, ValueRef};

/// A Rust type a column can be read as, with [`Row::get`](crate::Row::get).
///
/// Implemented for the integer types (a value out of the type's range is an error, never a
/// wrapped number), `f64`/`f32` (from `REAL` or `INTEGER`), `bool` (from `INTEGER`: 0 is
/// false), `String`, `Vec<u8>` (from `BLOB` or `TEXT`), [`Value`] (any value) and `Option`
/// of any of them (`NULL` is `None`). `NULL` read as anything but an `Option` or `Value` is
/// an error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read from a column",
    label = "not a column type",
    note = "a column reads as an integer, float, `bool`, `String`, `Vec<u8>`, `Value`, an \
            `Option` of one (and, with the features of the same name, `chrono`, `time`, `uuid` \
            and `serde_json` types); for a type of your own, implement `FromValue` or read a \
            supported type and convert it"
)]
pub trait FromValue: Sized {
    /// Converts `value`, or says why it cannot be.
    fn from_value(value: ValueRef<'_>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>>;
}

fn mismatch<T>() -> Box<dyn std::error::Error + Send + Sync> {
    let _ = std::marker::PhantomData::<T>;
    "the types do not match".into()
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: ValueRef<'_>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                match value {
                    ValueRef::Integer(i) => <$t>::try_from(i).map_err(|_| {
                        format!("{i} is out of range for {}", stringify!($t)).into()
                    }),
                    _ => Err(mismatch::<$t>()),
                }
            }
        }
    )*};
}
integers!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl FromValue for f64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match value {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Integer(i) => Ok(i as f64),
            _ => Err(mismatch::<f64>()),
        }
    }
}

impl FromValue for f32 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        f64::from_value(value).map(|f| f as f32)
    }
}

impl FromValue for bool {
    fn from_value(value: ValueRef<'_>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match value {
            ValueRef::Integer(i) => Ok(i != 0),
            _ => Err(mismatch::<bool>()),
        }
    }
}

impl FromValue for String {
    fn from_value(value: ValueRef<'_>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match value {
            ValueRef::Text(s) => Ok(s.to_owned()),
            _ => Err(mismatch::<String>()),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match value {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            ValueRef::Text(s) => Ok(s.as_bytes().to_vec()),
            _ => Err(mismatch::<Vec<u8>>()),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: ValueRef<'_>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(value.to_owned())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        match value {
            ValueRef::Null => Ok(None),
            value => T::from_value(value).map(Some),
        }
    }
}
