//! `Row`: one row of a query result, owned.

use std::sync::Arc;

use super::{FromValue, Value};
use crate::error::{Error, Result};

/// One row of a query result, owned: it no longer needs the connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// A row of `values`, one per column of `columns`.
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        debug_assert_eq!(columns.len(), values.len());
        Row { columns, values }
    }

    /// The value of a column, by position (`0`) or name (`"val"`), converted to `T`.
    ///
    /// A column the row does not have is [`Error::NoSuchColumn`]; a value that does not
    /// convert (a `NULL` read as `i64`, text read as a number) is [`Error::Conversion`], naming
    /// the column, the type asked for and the SQL type found.
    pub fn get<T: FromValue>(&self, column: impl ColumnIndex) -> Result<T> {
        let idx = column.index(self)?;
        let value = self.values[idx].as_ref();
        T::from_value(value).map_err(|source| Error::Conversion {
            column: format!("{idx} `{}`", self.columns[idx]),
            target: std::any::type_name::<T>(),
            found: value.type_name(),
            source,
        })
    }

    fn no_such_column(&self, column: String) -> Error {
        Error::NoSuchColumn {
            column,
            columns: self.columns.join(", "),
        }
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The values, in column order, owned.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a row of no columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A column position or name for [`Row::get`].
pub trait ColumnIndex: sealed::Sealed {
    /// The position of the column in `row`.
    fn index(&self, row: &Row) -> Result<usize>;
}

impl ColumnIndex for usize {
    fn index(&self, row: &Row) -> Result<usize> {
        if *self < row.len() {
            Ok(*self)
        } else {
            Err(row.no_such_column(self.to_string()))
        }
    }
}

impl ColumnIndex for &str {
    fn index(&self, row: &Row) -> Result<usize> {
        row.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(self))
            .ok_or_else(|| row.no_such_column(format!("`{self}`")))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for &str {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            columns: vec!["key".to_owned(), "val".to_owned()].into(),
            values: vec![Value::Text("k".into()), Value::Integer(7)],
        }
    }

    #[test]
    fn get_by_position_or_name_converts() {
        let row = row();
        assert_eq!(row.get::<String>(0).unwrap(), "k");
        assert_eq!(row.get::<i64>("val").unwrap(), 7);
        assert_eq!(row.get::<u8>("val").unwrap(), 7);
        assert_eq!(row.get::<Option<i64>>("val").unwrap(), Some(7));
        assert_eq!(row.get::<Value>(1).unwrap(), Value::Integer(7));
        assert_eq!(
            row.get::<i64>("VAL").unwrap(),
            7,
            "names match like SQLite's: any case"
        );
        assert_eq!(row.columns(), ["key", "val"]);
    }

    #[test]
    fn out_of_range_integers_are_errors_not_wrapped() {
        let row = Row::new(vec!["n".to_owned()].into(), vec![Value::Integer(300)]);
        let err = row.get::<u8>(0).unwrap_err();
        assert!(err.to_string().contains("out of range for u8"), "{err}");
        let row = Row::new(vec!["n".to_owned()].into(), vec![Value::Integer(-1)]);
        assert!(row.get::<u64>(0).is_err());
        assert_eq!(row.get::<i32>(0).unwrap(), -1);
    }

    #[test]
    fn bad_columns_and_types_are_errors_not_panics() {
        let row = row();
        let err = row.get::<i64>(2).unwrap_err();
        assert!(
            matches!(&err, Error::NoSuchColumn { column, columns } if column == "2" && columns == "key, val"),
            "{err:?}"
        );
        let err = row.get::<i64>("nope").unwrap_err();
        assert!(
            matches!(&err, Error::NoSuchColumn { column, .. } if column == "`nope`"),
            "{err:?}"
        );
        let err = row.get::<i64>(0).unwrap_err();
        let Error::Conversion {
            column,
            target,
            found,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            (column.as_str(), *target, *found),
            ("0 `key`", "i64", "TEXT")
        );
        assert_eq!(
            err.to_string(),
            "column 0 `key`: cannot read a TEXT value as i64: the types do not match"
        );
        let null = Row::new(vec!["x".to_owned()].into(), vec![Value::Null]);
        let err = null.get::<String>(0).unwrap_err();
        assert!(err.to_string().contains("NULL"), "{err}");
        assert_eq!(null.get::<Option<String>>(0).unwrap(), None);
    }
}
