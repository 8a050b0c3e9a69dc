//! Neutral values on the PostgreSQL wire: binding a [`ValueRef`] as a statement parameter and
//! reading a row's columns as [`Value`]s.
//!
//! The library's values have five storage classes; PostgreSQL has a type per parameter. As in
//! sqlx's `Any` driver, the statement decides: the server infers each parameter's type when
//! the statement is prepared, and [`PgParam`] encodes the value in that type's binary format.
//! So `Integer(5)` binds to an `int2`, `int8`, `numeric`, `float8` or `boolean` parameter
//! alike, and the caller never names a PostgreSQL type. A number the type cannot hold
//! exactly (70000 for an `int2`, 2 for a `boolean`, 1.5 for an `int8`) is an error naming
//! both sides, never a wrapped or truncated number.
//!
//! Text bound to a type whose binary format is not the text itself (`uuid`, `date`,
//! `timestamptz`, `interval`, `inet`, `int4`, arrays…) is sent in text format, and the server
//! parses it as it would a literal: that is how a date, a UUID or a timestamp written as text
//! (`value/types.rs`) reaches a column of its own type, and it is what SQLite does with text
//! in a column of numeric affinity. Text the type does not take is the server's own error
//! (`22P02`, invalid text representation).
//!
//! Reading goes the other way: [`decode_row`] maps each column's type to the storage class
//! that holds it without loss. `uuid`, `date`, `time`, `timestamp` and `timestamptz` read as
//! text in the forms `value/types.rs` writes and parses (a `timestamptz` at UTC), so that
//! they read into the same Rust types as the text the same code writes on SQLite. Any other
//! type (`interval`, arrays…) is an error naming the column and a cast, rather than a
//! guessed text form.

use std::error::Error;
use std::fmt;

use tokio_postgres::types::private::BytesMut;
use tokio_postgres::types::{to_sql_checked, Format, FromSql, IsNull, Kind, ToSql, Type};
use tokio_postgres::{Column, Row};

use crate::value::types::text::{self, Civil, Clock};
use crate::value::{Value, ValueRef};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One parameter of a PostgreSQL statement, encoded in the format of the type the server
/// inferred for it.
///
/// `accepts` takes every type, so that tokio-postgres hands the type to `to_sql` and the
/// mismatch is reported there with the value's kind and the parameter's type, instead of as
/// tokio-postgres's generic "cannot convert between the Rust type `PgParam` and …".
#[derive(Clone, Copy, Debug)]
pub(crate) struct PgParam<'a>(pub(crate) ValueRef<'a>);

/// `params` as the argument list `Client::query` and friends take.
pub(crate) fn params_of<'a>(params: &'a [PgParam<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let base = base_type(ty);
        match self.0 {
            ValueRef::Null => return Ok(IsNull::Yes),
            ValueRef::Integer(i) => encode_integer(i, ty, base, out)?,
            ValueRef::Real(f) => encode_real(f, ty, base, out)?,
            // An enum's binary format is its label; the server rejects an unknown one.
            ValueRef::Text(s) if is_text_like(base) || matches!(base.kind(), Kind::Enum(_)) => {
                out.extend_from_slice(s.as_bytes())
            }
            ValueRef::Text(s) if *base == Type::JSON => out.extend_from_slice(s.as_bytes()),
            ValueRef::Text(s) if *base == Type::JSONB => {
                // jsonb's binary format: a version byte (1), then the JSON text.
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
            }
            // bytea's binary format is the bytes: the text's own, as SQLite keeps text in a
            // BLOB column. (Its text format would read backslashes as escapes.)
            ValueRef::Text(s) if *base == Type::BYTEA => out.extend_from_slice(s.as_bytes()),
            // Any other type: text format (`encode_format`), parsed by the server.
            ValueRef::Text(s) => out.extend_from_slice(s.as_bytes()),
            ValueRef::Blob(b) if *base == Type::BYTEA => out.extend_from_slice(b),
            value => return Err(mismatch(value, ty)),
        }
        Ok(IsNull::No)
    }

    /// Text for a type whose binary format is not the text itself goes in text format: the
    /// server parses it (`'2024-01-02'` into a `date`, `'5'` into an `int4`) or rejects it
    /// with its own error. Everything else is binary, as `to_sql` writes it.
    fn encode_format(&self, ty: &Type) -> Format {
        match self.0 {
            ValueRef::Text(_) if !text_is_binary(base_type(ty)) => Format::Text,
            _ => Format::Binary,
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn encode_integer(i: i64, ty: &Type, base: &Type, out: &mut BytesMut) -> Result<(), BoxError> {
    let out_of_range = || -> BoxError {
        format!("integer {i} is out of range for a parameter of type {ty}").into()
    };
    match *base {
        Type::INT2 => {
            let v = i16::try_from(i).map_err(|_| out_of_range())?;
            out.extend_from_slice(&v.to_be_bytes());
        }
        Type::INT4 => {
            let v = i32::try_from(i).map_err(|_| out_of_range())?;
            out.extend_from_slice(&v.to_be_bytes());
        }
        Type::INT8 => out.extend_from_slice(&i.to_be_bytes()),
        Type::OID => {
            let v = u32::try_from(i).map_err(|_| out_of_range())?;
            out.extend_from_slice(&v.to_be_bytes());
        }
        // The nearest float, as SQLite's REAL affinity stores an integer.
        Type::FLOAT4 => out.extend_from_slice(&(i as f32).to_be_bytes()),
        Type::FLOAT8 => out.extend_from_slice(&(i as f64).to_be_bytes()),
        Type::NUMERIC => out.extend_from_slice(&encode_numeric(&i.to_string())),
        // `bool` parameters arrive as 0/1 (`ToParam for bool`); anything else is not a bool.
        Type::BOOL => match i {
            0 | 1 => out.extend_from_slice(&[i as u8]),
            _ => {
                return Err(format!(
                    "integer {i} is not a boolean (0 or 1) for a parameter of type {ty}"
                )
                .into())
            }
        },
        _ if is_text_like(base) => out.extend_from_slice(i.to_string().as_bytes()),
        _ => return Err(mismatch(ValueRef::Integer(i), ty)),
    }
    Ok(())
}

fn encode_real(f: f64, ty: &Type, base: &Type, out: &mut BytesMut) -> Result<(), BoxError> {
    match *base {
        Type::FLOAT4 => {
            // Rounding to the nearest f32 is what a float4 column means; overflowing to
            // infinity is not.
            if f.is_finite() && f.abs() > f64::from(f32::MAX) {
                return Err(format!("{f} is out of range for a parameter of type {ty}").into());
            }
            out.extend_from_slice(&(f as f32).to_be_bytes());
        }
        Type::FLOAT8 => out.extend_from_slice(&f.to_be_bytes()),
        Type::NUMERIC if f.is_nan() => out.extend_from_slice(&NUMERIC_NAN_BYTES),
        Type::NUMERIC if f.is_infinite() => {
            return Err(format!("{f} cannot be bound to a parameter of type {ty}").into())
        }
        // `{f}` is the shortest decimal that reads back as `f`, never in exponent form: the
        // numeric holds the number the user sees, not the binary fraction's long expansion.
        Type::NUMERIC => out.extend_from_slice(&encode_numeric(&format!("{f}"))),
        _ if is_text_like(base) => out.extend_from_slice(format!("{f}").as_bytes()),
        _ => return Err(mismatch(ValueRef::Real(f), ty)),
    }
    Ok(())
}

fn mismatch(value: ValueRef<'_>, ty: &Type) -> BoxError {
    let kind = value.type_name();
    let article = if kind.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("cannot bind {article} {kind} value to a parameter of type {ty}").into()
}

/// A domain is sent and received in its base type's format.
fn base_type(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(inner) => base_type(inner),
        _ => ty,
    }
}

/// Types `to_sql` writes text into in their binary format: the text itself (text-like types,
/// enums, `json`, `bytea`) or with `jsonb`'s version byte.
fn text_is_binary(base: &Type) -> bool {
    is_text_like(base)
        || matches!(base.kind(), Kind::Enum(_))
        || matches!(*base, Type::JSON | Type::JSONB | Type::BYTEA)
}

/// Types whose binary format is the UTF-8 text itself. `unknown` is what the server infers
/// for a parameter nothing constrains; `citext` is an extension's type, known only by name.
fn is_text_like(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || (matches!(ty.kind(), Kind::Simple) && ty.name() == "citext")
}

/// Why a column could not be read as a [`Value`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DecodeError {
    /// The column's index and name, as in "2 `waited`".
    pub(crate) column: String,
    /// The column's PostgreSQL type, as in "interval".
    pub(crate) pg_type: String,
    /// `None`: the type has no [`Value`] form. `Some`: the server's bytes were not valid for
    /// the type (a protocol fault, not a user error).
    pub(crate) reason: Option<String>,
    /// What to do instead: cast the column in SQL or use the native client.
    pub(crate) hint: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let DecodeError {
            column,
            pg_type,
            hint,
            ..
        } = self;
        match &self.reason {
            None => write!(
                f,
                "column {column} has type {pg_type}, which has no Value form: {hint}"
            ),
            Some(reason) => write!(
                f,
                "column {column} of type {pg_type} could not be decoded ({reason}): {hint}"
            ),
        }
    }
}

impl Error for DecodeError {}

/// The names of a statement's result columns, in order.
pub(crate) fn column_names(stmt_columns: &[Column]) -> Vec<String> {
    stmt_columns.iter().map(|c| c.name().to_owned()).collect()
}

/// Every column of `row` as a [`Value`]; the first column that has no `Value` form is an
/// error naming it and the cast that would read it.
pub(crate) fn decode_row(row: &Row) -> Result<Vec<Value>, DecodeError> {
    (0..row.len())
        .map(|i| {
            row.try_get::<_, PgValue>(i)
                .map(|v| v.0)
                .map_err(|e| decode_error(&row.columns()[i], i, &e))
        })
        .collect()
}

fn decode_error(column: &Column, index: usize, error: &tokio_postgres::Error) -> DecodeError {
    let name = column.name();
    let reason = match error.source() {
        Some(source) if source.is::<Unsupported>() => None,
        Some(source) => Some(source.to_string()),
        None => Some(error.to_string()),
    };
    DecodeError {
        column: format!("{index} `{name}`"),
        pg_type: column.type_().name().to_owned(),
        reason,
        hint: format!("cast it in SQL, e.g. `{}::text`", sql_identifier(name)),
    }
}

/// `name` as it would be written in SQL: bare when PostgreSQL would read it back unchanged,
/// double-quoted otherwise (`"Created At"`).
fn sql_identifier(name: &str) -> String {
    let bare = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A column read as a [`Value`]; accepts every type so that the unsupported ones reach
/// `from_sql` and become an [`Unsupported`] error that [`decode_row`] turns into its hint.
struct PgValue(Value);

/// The marker error for a type with no [`Value`] form.
#[derive(Debug)]
struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the type has no Value form")
    }
}

impl Error for Unsupported {}

impl<'a> FromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode(base_type(ty), raw).map(PgValue)
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn decode(ty: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    Ok(match *ty {
        Type::INT2 => Value::Integer(i16::from_be_bytes(fixed(raw)?).into()),
        Type::INT4 => Value::Integer(i32::from_be_bytes(fixed(raw)?).into()),
        Type::INT8 => Value::Integer(i64::from_be_bytes(fixed(raw)?)),
        Type::OID => Value::Integer(u32::from_be_bytes(fixed(raw)?).into()),
        Type::FLOAT4 => Value::Real(f32::from_be_bytes(fixed(raw)?).into()),
        Type::FLOAT8 => Value::Real(f64::from_be_bytes(fixed(raw)?)),
        Type::BOOL => Value::Integer(i64::from(u8::from_be_bytes(fixed(raw)?) != 0)),
        Type::JSON => Value::Text(utf8(raw)?),
        Type::JSONB => match raw.split_first() {
            Some((1, json)) => Value::Text(utf8(json)?),
            _ => return Err("jsonb without version byte 1".into()),
        },
        Type::BYTEA => Value::Blob(raw.to_vec()),
        Type::NUMERIC => decode_numeric(raw)?,
        Type::UUID => Value::Text(uuid_text(fixed(raw)?)),
        Type::DATE => Value::Text(date_text(i32::from_be_bytes(fixed(raw)?))),
        Type::TIME => Value::Text(time_text(i64::from_be_bytes(fixed(raw)?))?),
        Type::TIMESTAMP => Value::Text(timestamp_text(i64::from_be_bytes(fixed(raw)?), false)),
        Type::TIMESTAMPTZ => Value::Text(timestamp_text(i64::from_be_bytes(fixed(raw)?), true)),
        _ if is_text_like(ty) || matches!(ty.kind(), Kind::Enum(_)) => Value::Text(utf8(raw)?),
        _ => return Err(Box::new(Unsupported)),
    })
}

/// `8-4-4-4-12` lowercase hex digits, as `Uuid`'s `ToParam` writes it.
fn uuid_text(bytes: [u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

// PostgreSQL's binary dates and times (date_send, time_send, timestamp_send): a `date` is an
// i32 of days since 2000-01-01, a `time` an i64 of microseconds since midnight, a
// `timestamp` an i64 of microseconds since 2000-01-01 00:00:00 (UTC for `timestamptz`). The
// greatest and least values of the integer are `infinity` and `-infinity`.

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn date_text(days: i32) -> String {
    match days {
        i32::MAX => "infinity".to_owned(),
        i32::MIN => "-infinity".to_owned(),
        days => text::date(civil_from_days(i64::from(days) + PG_EPOCH_DAYS)),
    }
}

fn time_text(micros: i64) -> Result<String, BoxError> {
    // 24:00:00 is a valid `time`.
    if !(0..=MICROS_PER_DAY).contains(&micros) {
        return Err(format!("time of {micros} µs is not within a day").into());
    }
    Ok(text::time(clock(micros)))
}

/// A `timestamp`'s text, or with `utc` a `timestamptz`'s, at offset +00:00.
fn timestamp_text(micros: i64, utc: bool) -> String {
    match micros {
        i64::MAX => "infinity".to_owned(),
        i64::MIN => "-infinity".to_owned(),
        micros => {
            let date = civil_from_days(micros.div_euclid(MICROS_PER_DAY) + PG_EPOCH_DAYS);
            let time = clock(micros.rem_euclid(MICROS_PER_DAY));
            if utc {
                text::with_offset(date, time, 0)
            } else {
                text::naive(date, time)
            }
        }
    }
}

/// The time of day `micros` (in `0..=MICROS_PER_DAY`) after midnight.
fn clock(micros: i64) -> Clock {
    let secs = micros / 1_000_000;
    Clock {
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
        nanosecond: (micros % 1_000_000 * 1000) as u32,
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// <http://howardhinnant.github.io/date_algorithms.html>): the calendar counted in 400-year
/// eras of 146097 days, each year starting on March 1 so that the leap day comes last.
/// PostgreSQL's range (years 4713 BC to 5874897 AD) fits an `i32` year.
fn civil_from_days(days: i64) -> Civil {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1
    let mp = (5 * doy + 2) / 153; // [0, 11], March is 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year: year as i32,
        month: month as u8,
        day: day as u8,
    }
}

/// The inverse of [`civil_from_days`]: days from 1970-01-01 to `d`.
#[cfg(test)]
fn days_from_civil(d: Civil) -> i64 {
    let (month, day) = (i64::from(d.month), i64::from(d.day));
    let year = i64::from(d.year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400); // [0, 399]
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], BoxError> {
    raw.try_into()
        .map_err(|_| format!("{} bytes where {N} were expected", raw.len()).into())
}

fn utf8(raw: &[u8]) -> Result<String, BoxError> {
    Ok(std::str::from_utf8(raw)?.to_owned())
}

// PostgreSQL's binary `numeric` (numeric_send/numeric_recv): four big-endian 16-bit header
// words — ndigits, weight, sign, dscale — then ndigits base-10000 digits, most significant
// first. The value is Σ digit[k] × 10000^(weight − k); dscale is the number of decimal
// digits shown after the point.

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
/// PostgreSQL 14 and later.
const NUMERIC_PINF: u16 = 0xD000;
/// PostgreSQL 14 and later.
const NUMERIC_NINF: u16 = 0xF000;

const NUMERIC_NAN_BYTES: [u8; 8] = [0, 0, 0, 0, 0xC0, 0, 0, 0];

/// A plain decimal (`-?digits(.digits)?`, no exponent: what `i64`'s and `f64`'s `Display`
/// write) in binary `numeric` form, with leading and trailing zero digits stripped as
/// PostgreSQL stores them and dscale the number of digits written after the point.
fn encode_numeric(decimal: &str) -> Vec<u8> {
    let (negative, unsigned) = match decimal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, decimal),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    debug_assert!(
        (int.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()),
        "not a plain decimal: {decimal}"
    );
    let int = int.trim_start_matches('0');
    // Align to base-10000 groups around the decimal point.
    let pad_left = (4 - int.len() % 4) % 4;
    let pad_right = (4 - frac.len() % 4) % 4;
    let padded: Vec<u8> = std::iter::repeat_n(b'0', pad_left)
        .chain(int.bytes())
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', pad_right))
        .collect();
    let mut digits: Vec<i16> = padded
        .chunks(4)
        .map(|g| g.iter().fold(0i16, |acc, b| acc * 10 + i16::from(b - b'0')))
        .collect();
    let mut weight = ((pad_left + int.len()) / 4) as i32 - 1;
    let leading = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..leading);
    weight -= leading as i32;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    // Zero has no sign in numeric ("-0" is 0).
    let sign = if negative && !digits.is_empty() {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    if digits.is_empty() {
        weight = 0;
    }
    let mut out = Vec::with_capacity(8 + 2 * digits.len());
    out.extend_from_slice(&(digits.len() as u16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(frac.len() as u16).to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

/// A binary `numeric` as the storage class that holds it: `Integer` when its scale is 0 and
/// it fits an i64 (so `numeric` keys and `sum(int8)` stay exact), `Real` otherwise — the
/// nearest f64 to its exact decimal value. The scale, not the value, decides, so that every
/// row of a `numeric(10,2)` column reads as `Real`, `5.00` included.
fn decode_numeric(raw: &[u8]) -> Result<Value, BoxError> {
    let word = |k: usize| u16::from_be_bytes([raw[2 * k], raw[2 * k + 1]]);
    if raw.len() < 8 {
        return Err(format!("numeric of {} bytes, shorter than its header", raw.len()).into());
    }
    let ndigits = usize::from(word(0));
    let weight = i64::from(word(1) as i16);
    let (sign, dscale) = (word(2), word(3));
    if raw.len() != 8 + 2 * ndigits {
        return Err(format!("numeric of {} bytes with {ndigits} digits", raw.len()).into());
    }
    let negative = match sign {
        NUMERIC_POS => false,
        NUMERIC_NEG => true,
        NUMERIC_NAN => return Ok(Value::Real(f64::NAN)),
        NUMERIC_PINF => return Ok(Value::Real(f64::INFINITY)),
        NUMERIC_NINF => return Ok(Value::Real(f64::NEG_INFINITY)),
        _ => return Err(format!("numeric with sign word {sign:#06x}").into()),
    };
    let digits: Vec<u16> = (4..4 + ndigits).map(word).collect();
    if let Some(d) = digits.iter().find(|&&d| d > 9999) {
        return Err(format!("numeric digit {d} is not base 10000").into());
    }
    // The value is the digits read as one integer, times 10^exponent.
    let exponent = 4 * (weight + 1 - ndigits as i64);
    if dscale == 0 {
        if let Some(i) = exact_integer(&digits, exponent, negative) {
            return Ok(Value::Integer(i));
        }
    }
    let mut text = String::with_capacity(1 + 4 * ndigits + 8);
    if negative {
        text.push('-');
    }
    for d in &digits {
        text.push_str(&format!("{d:04}"));
    }
    if digits.is_empty() {
        text.push('0');
    }
    text.push_str(&format!("e{exponent}"));
    Ok(Value::Real(text.parse::<f64>()?))
}

/// `digits` (base 10000) × 10^exponent as an i64, when it is a whole number that fits.
fn exact_integer(digits: &[u16], exponent: i64, negative: bool) -> Option<i64> {
    let mut magnitude: i128 = 0;
    for &d in digits {
        magnitude = magnitude.checked_mul(10_000)?.checked_add(i128::from(d))?;
    }
    if exponent >= 0 {
        magnitude = magnitude.checked_mul(10i128.checked_pow(u32::try_from(exponent).ok()?)?)?;
    } else {
        let divisor = 10i128.checked_pow(u32::try_from(-exponent).ok()?)?;
        if magnitude % divisor != 0 {
            return None;
        }
        magnitude /= divisor;
    }
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
#[path = "bind_tests.rs"]
mod tests;
