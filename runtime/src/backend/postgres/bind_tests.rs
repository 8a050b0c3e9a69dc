//! Tests of `bind.rs`: the numeric codec and the type checks run without a server; the round
//! trips run against `DATABASE_URL`'s server (and return early when it is unset).

use super::*;
use crate::backend::postgres::test_db::TestDb;
use tokio_postgres::Client;

use ValueRef::{Blob, Integer, Null, Real, Text};

/// What `PgParam(value)` writes for a parameter of type `ty`, or its error message.
fn bind(value: ValueRef<'_>, ty: &Type) -> Result<Option<Vec<u8>>, String> {
    if matches!(value, Text(_)) {
        assert!(
            matches!(PgParam(value).encode_format(ty), Format::Binary),
            "{value:?} for {ty} is sent in text format: use bind_text"
        );
    }
    bind_any(value, ty)
}

/// What `PgParam(value)` writes for a parameter of type `ty`, which must be in text format.
fn bind_text(value: ValueRef<'_>, ty: &Type) -> Result<Option<Vec<u8>>, String> {
    assert!(
        matches!(PgParam(value).encode_format(ty), Format::Text),
        "{value:?} for {ty} is sent in binary format"
    );
    bind_any(value, ty)
}

fn bind_any(value: ValueRef<'_>, ty: &Type) -> Result<Option<Vec<u8>>, String> {
    let mut out = BytesMut::new();
    match PgParam(value).to_sql_checked(ty, &mut out) {
        Ok(IsNull::Yes) => Ok(None),
        Ok(IsNull::No) => Ok(Some(out.to_vec())),
        Err(e) => Err(e.to_string()),
    }
}

fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [ndigits, weight as u16, sign, dscale] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

#[test]
fn numeric_encoding_matches_postgres_layout() {
    assert_eq!(encode_numeric("0"), numeric(0, 0, NUMERIC_POS, 0, &[]));
    assert_eq!(encode_numeric("-0"), numeric(0, 0, NUMERIC_POS, 0, &[]));
    assert_eq!(encode_numeric("-1"), numeric(1, 0, NUMERIC_NEG, 0, &[1]));
    assert_eq!(
        encode_numeric("12345678901234"),
        numeric(4, 3, NUMERIC_POS, 0, &[12, 3456, 7890, 1234])
    );
    assert_eq!(
        encode_numeric("1.5"),
        numeric(2, 0, NUMERIC_POS, 1, &[1, 5000])
    );
    assert_eq!(
        encode_numeric("-0.0001"),
        numeric(1, -1, NUMERIC_NEG, 4, &[1])
    );
    assert_eq!(
        encode_numeric("0.00001"),
        numeric(1, -2, NUMERIC_POS, 5, &[1000])
    );
    // 1e20 = 1 × 10000^5: one digit, trailing zero groups stripped.
    assert_eq!(
        encode_numeric(&format!("{}", 1e20)),
        numeric(1, 5, NUMERIC_POS, 0, &[1])
    );
    assert_eq!(encode_numeric("10000"), numeric(1, 1, NUMERIC_POS, 0, &[1]));
    assert_eq!(encode_numeric("0.0"), numeric(0, 0, NUMERIC_POS, 1, &[]));
}

#[test]
fn numeric_decodes_whole_scale_zero_values_as_integers_and_the_rest_as_reals() {
    for i in [0, -1, 1, 9999, 10000, -12345678901234, i64::MAX, i64::MIN] {
        assert_eq!(
            decode_numeric(&encode_numeric(&i.to_string())).unwrap(),
            Value::Integer(i)
        );
    }
    // Every finite f64 survives its shortest decimal (a whole one comes back as Integer).
    for f in [
        1.5,
        -0.0001,
        0.1,
        1.0 / 3.0,
        1e20,
        -2.5e-300,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
    ] {
        let decoded = decode_numeric(&encode_numeric(&format!("{f}"))).unwrap();
        assert_eq!(decoded, Value::Real(f), "{f}");
    }
    assert_eq!(
        decode_numeric(&encode_numeric("2")).unwrap(),
        Value::Integer(2)
    );
    // Scale, not value, decides: 5.00 is a Real.
    assert_eq!(
        decode_numeric(&numeric(1, 0, NUMERIC_POS, 2, &[5])).unwrap(),
        Value::Real(5.0)
    );
    // Past i64: Real.
    assert_eq!(
        decode_numeric(&encode_numeric("9223372036854775808")).unwrap(),
        Value::Real(2f64.powi(63))
    );
}

#[test]
fn numeric_special_values_and_malformed_input() {
    assert!(matches!(decode_numeric(&NUMERIC_NAN_BYTES), Ok(Value::Real(f)) if f.is_nan()));
    assert_eq!(
        decode_numeric(&numeric(0, 0, NUMERIC_PINF, 0, &[])).unwrap(),
        Value::Real(f64::INFINITY)
    );
    assert_eq!(
        decode_numeric(&numeric(0, 0, NUMERIC_NINF, 0, &[])).unwrap(),
        Value::Real(f64::NEG_INFINITY)
    );
    assert!(decode_numeric(&[0, 0, 0]).is_err());
    assert!(decode_numeric(&numeric(2, 0, NUMERIC_POS, 0, &[1])).is_err());
    assert!(decode_numeric(&numeric(1, 0, NUMERIC_POS, 0, &[10000])).is_err());
    assert!(decode_numeric(&numeric(0, 0, 0x1234, 0, &[])).is_err());
}

#[test]
fn binding_checks_type_and_range_without_a_server() {
    assert_eq!(bind(Null, &Type::INT4), Ok(None));
    assert_eq!(bind(Null, &Type::TIMESTAMPTZ), Ok(None));
    assert_eq!(bind(Integer(-2), &Type::INT2), Ok(Some(vec![0xff, 0xfe])));
    let err = bind(Integer(70000), &Type::INT2).unwrap_err();
    assert_eq!(
        err,
        "integer 70000 is out of range for a parameter of type int2"
    );
    assert!(bind(Integer(i64::from(i32::MAX) + 1), &Type::INT4).is_err());
    assert!(bind(Integer(-1), &Type::OID).is_err());
    assert_eq!(
        bind(Integer(4_294_967_295), &Type::OID),
        Ok(Some(vec![0xff; 4]))
    );
    assert_eq!(bind(Integer(1), &Type::BOOL), Ok(Some(vec![1])));
    assert!(bind(Integer(2), &Type::BOOL).unwrap_err().contains("bool"));
    assert_eq!(bind(Integer(-7), &Type::UNKNOWN), Ok(Some(b"-7".to_vec())));
    // Text the binary format cannot carry goes in text format, for the server to parse.
    assert_eq!(bind_text(Text("x"), &Type::INT4), Ok(Some(b"x".to_vec())));
    assert_eq!(
        bind(Real(1.5), &Type::INT8).unwrap_err(),
        "cannot bind a REAL value to a parameter of type int8"
    );
    assert_eq!(
        bind(Blob(b"x"), &Type::TEXT).unwrap_err(),
        "cannot bind a BLOB value to a parameter of type text"
    );
    assert_eq!(
        bind(Integer(1), &Type::BYTEA).unwrap_err(),
        "cannot bind an INTEGER value to a parameter of type bytea"
    );
    assert!(bind(Real(1e300), &Type::FLOAT4).is_err());
    assert!(bind(Real(f64::INFINITY), &Type::FLOAT4).is_ok());
    assert!(bind(Real(f64::INFINITY), &Type::NUMERIC).is_err());
    assert_eq!(
        bind(Real(f64::NAN), &Type::NUMERIC),
        Ok(Some(NUMERIC_NAN_BYTES.to_vec()))
    );
    assert_eq!(bind(Text("{}"), &Type::JSONB), Ok(Some(b"\x01{}".to_vec())));
}

#[test]
fn text_goes_in_text_format_unless_the_binary_format_is_the_text() {
    for ty in [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
        Type::JSON,
        Type::BYTEA,
    ] {
        assert_eq!(bind(Text("a\\b"), &ty), Ok(Some(b"a\\b".to_vec())), "{ty}");
    }
    for ty in [
        Type::UUID,
        Type::DATE,
        Type::TIME,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::INTERVAL,
        Type::INET,
        Type::NUMERIC,
        Type::INT4,
        Type::BOOL,
        Type::INT4_ARRAY,
    ] {
        let s = "2024-01-02";
        assert_eq!(
            bind_text(Text(s), &ty),
            Ok(Some(s.as_bytes().to_vec())),
            "{ty}"
        );
    }
    // Every other kind stays binary.
    for value in [Null, Integer(1), Real(1.0), Blob(b"x")] {
        assert!(matches!(
            PgParam(value).encode_format(&Type::DATE),
            Format::Binary
        ));
    }
    assert!(bind(Integer(1), &Type::DATE).is_err());
}

#[test]
fn calendar_conversion() {
    let civil = |year, month, day| Civil { year, month, day };
    for (days, date) in [
        (0, civil(1970, 1, 1)),
        (-1, civil(1969, 12, 31)),
        (PG_EPOCH_DAYS, civil(2000, 1, 1)),
        (11_016, civil(2000, 2, 29)),
        (11_017, civil(2000, 3, 1)),
        (47_540, civil(2100, 2, 28)),
        (47_541, civil(2100, 3, 1)),
        (-719_468, civil(0, 3, 1)),
        (-719_469, civil(0, 2, 29)),
        (-719_528, civil(0, 1, 1)),
        // PostgreSQL's least date, 4714-11-24 BC (Julian day 0).
        (-2_440_588, civil(-4713, 11, 24)),
        // And its greatest, 5874897-12-31 (Julian day 2147483493).
        (2_147_483_493 - 2_440_588, civil(5_874_897, 12, 31)),
    ] {
        assert_eq!(civil_from_days(days), date, "{days}");
        assert_eq!(days_from_civil(date), days, "{date:?}");
    }
    // Consecutive days are consecutive dates, across every kind of year boundary.
    let mut previous = civil_from_days(-800_000);
    for days in -799_999..800_000 {
        let date = civil_from_days(days);
        assert_eq!(days_from_civil(date), days);
        let next_day = date.day == previous.day + 1 && date.month == previous.month;
        let next_month = date.day == 1 && date.month == previous.month % 12 + 1;
        assert!(next_day || next_month, "{previous:?} then {date:?}");
        assert_eq!(
            date.year - previous.year,
            i32::from(date.month == 1 && date.day == 1)
        );
        previous = date;
    }
}

#[test]
fn dates_and_times_decode_to_the_value_text_forms() {
    let date = |days: i32| decode(&Type::DATE, &days.to_be_bytes()).unwrap();
    let time = |micros: i64| decode(&Type::TIME, &micros.to_be_bytes());
    let ts = |micros: i64| decode(&Type::TIMESTAMP, &micros.to_be_bytes()).unwrap();
    let tstz = |micros: i64| decode(&Type::TIMESTAMPTZ, &micros.to_be_bytes()).unwrap();
    let text = |s: &str| Value::Text(s.into());
    assert_eq!(date(0), text("2000-01-01"));
    assert_eq!(date(-1), text("1999-12-31"));
    assert_eq!(date(-730_119), text("0001-01-01"));
    assert_eq!(date(-730_120), text("0001-12-31 BC"));
    assert_eq!(date(i32::MAX), text("infinity"));
    assert_eq!(date(i32::MIN), text("-infinity"));
    assert_eq!(time(0).unwrap(), text("00:00:00.000000"));
    assert_eq!(time(3_723_000_004).unwrap(), text("01:02:03.000004"));
    assert_eq!(time(MICROS_PER_DAY).unwrap(), text("24:00:00.000000"));
    assert!(time(-1).is_err());
    assert!(time(MICROS_PER_DAY + 1).is_err());
    assert!(decode(&Type::TIME, &[0; 4]).is_err());
    let micros = 3_723_000_004 + MICROS_PER_DAY;
    assert_eq!(ts(micros), text("2000-01-02 01:02:03.000004"));
    assert_eq!(tstz(micros), text("2000-01-02T01:02:03.000004+00:00"));
    assert_eq!(ts(-1), text("1999-12-31 23:59:59.999999"));
    assert_eq!(tstz(-1), text("1999-12-31T23:59:59.999999+00:00"));
    assert_eq!(ts(i64::MAX), text("infinity"));
    assert_eq!(tstz(i64::MIN), text("-infinity"));
    assert_eq!(
        decode(
            &Type::UUID,
            &[
                0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f,
                0xe0, 0xc8
            ]
        )
        .unwrap(),
        text("67e55044-10b1-426f-9247-bb680e5fe0c8")
    );
    assert!(decode(&Type::UUID, &[0; 15]).is_err());
}

/// The decoder's text is what chrono's `FromValue` reads, for the same instant.
#[cfg(feature = "chrono")]
#[test]
fn decoded_timestamps_read_as_chrono_values() {
    use crate::value::FromValue;
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1)
        .unwrap()
        .and_time(Default::default());
    for micros in [
        0,
        -1,
        1,
        86_399_999_999,
        -63_082_281_600_000_001,
        9_000_000_000_000_000,
    ] {
        let naive = epoch + chrono::TimeDelta::microseconds(micros);
        let Value::Text(s) = decode(&Type::TIMESTAMP, &micros.to_be_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(
            NaiveDateTime::from_value(ValueRef::Text(&s)).unwrap(),
            naive,
            "{s}"
        );
        let Value::Text(s) = decode(&Type::TIMESTAMPTZ, &micros.to_be_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(
            DateTime::<Utc>::from_value(ValueRef::Text(&s)).unwrap(),
            naive.and_utc(),
            "{s}"
        );
        let days = micros.div_euclid(MICROS_PER_DAY) as i32;
        let Value::Text(s) = decode(&Type::DATE, &days.to_be_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(
            NaiveDate::from_value(ValueRef::Text(&s)).unwrap(),
            naive.date()
        );
    }
}

#[test]
fn identifiers_in_hints_are_quoted_only_when_needed() {
    assert_eq!(sql_identifier("created_at"), "created_at");
    assert_eq!(sql_identifier("_x1"), "_x1");
    assert_eq!(sql_identifier("Created At"), "\"Created At\"");
    assert_eq!(sql_identifier("?column?"), "\"?column?\"");
    assert_eq!(sql_identifier("1st"), "\"1st\"");
    assert_eq!(sql_identifier("a\"b"), "\"a\"\"b\"");
}

const TABLE: &str = "CREATE TABLE t (
    id serial PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, num numeric,
    b bool, txt text, vc varchar(20), c char(3), by bytea, j json, jb jsonb, o oid)";

/// All the columns of `TABLE` but `id`.
const COLUMNS: [&str; 14] = [
    "i2", "i4", "i8", "f4", "f8", "num", "b", "txt", "vc", "c", "by", "j", "jb", "o",
];

async fn table(test: &str) -> Option<(TestDb, Client)> {
    let db = TestDb::new(test).await?;
    let client = db.connect().await;
    client.batch_execute(TABLE).await.unwrap();
    Some((db, client))
}

/// Inserts `value` into `column` through a parameter and reads it back.
async fn round_trip(
    client: &Client,
    column: &str,
    value: ValueRef<'_>,
) -> Result<Value, tokio_postgres::Error> {
    let sql = format!("INSERT INTO t ({column}) VALUES ($1) RETURNING {column}");
    let params = [PgParam(value)];
    let rows = client.query(&sql, &params_of(&params)).await?;
    let mut values = decode_row(&rows[0]).unwrap();
    assert_eq!(values.len(), 1);
    Ok(values.remove(0))
}

/// The message tokio-postgres keeps in the error's source (its own Display says only "error
/// serializing parameter 0").
fn cause(e: &tokio_postgres::Error) -> String {
    e.source()
        .map_or_else(|| e.to_string(), ToString::to_string)
}

#[tokio::test]
async fn every_accepted_kind_and_type_pair_round_trips() {
    let Some((_db, client)) = table("bind_round_trip").await else {
        return;
    };
    use Value as V;
    let cases: Vec<(&str, ValueRef<'_>, Value)> = vec![
        ("i2", Integer(-32768), V::Integer(-32768)),
        ("i2", Integer(32767), V::Integer(32767)),
        ("i4", Integer(i32::MIN.into()), V::Integer(i32::MIN.into())),
        ("i8", Integer(i64::MIN), V::Integer(i64::MIN)),
        ("i8", Integer(i64::MAX), V::Integer(i64::MAX)),
        ("f4", Integer(3), V::Real(3.0)),
        ("f4", Real(1.5), V::Real(1.5)),
        ("f8", Integer(1 << 53), V::Real(9007199254740992.0)),
        ("f8", Real(0.1), V::Real(0.1)),
        ("f8", Real(f64::NEG_INFINITY), V::Real(f64::NEG_INFINITY)),
        ("num", Integer(0), V::Integer(0)),
        ("num", Integer(-1), V::Integer(-1)),
        ("num", Integer(12345678901234), V::Integer(12345678901234)),
        ("num", Integer(i64::MIN), V::Integer(i64::MIN)),
        ("num", Real(1.5), V::Real(1.5)),
        ("num", Real(-0.0001), V::Real(-0.0001)),
        ("num", Real(1e20), V::Real(1e20)),
        ("num", Real(0.1), V::Real(0.1)),
        // A whole Real is stored with scale 0, indistinguishable from an Integer.
        ("num", Real(2.0), V::Integer(2)),
        ("b", Integer(0), V::Integer(0)),
        ("b", Integer(1), V::Integer(1)),
        ("txt", Text("héllo"), V::Text("héllo".into())),
        ("txt", Integer(42), V::Text("42".into())),
        ("txt", Real(1.5), V::Text("1.5".into())),
        ("vc", Text("abc"), V::Text("abc".into())),
        ("vc", Integer(-7), V::Text("-7".into())),
        ("c", Text("ab"), V::Text("ab ".into())),
        ("by", Blob(&[0, 255, 1]), V::Blob(vec![0, 255, 1])),
        ("by", Blob(&[]), V::Blob(vec![])),
        ("j", Text(r#"{"a":  1}"#), V::Text(r#"{"a":  1}"#.into())),
        ("jb", Text(r#"{"a":  1}"#), V::Text(r#"{"a": 1}"#.into())),
        ("o", Integer(4_294_967_295), V::Integer(4_294_967_295)),
    ];
    for (column, value, expected) in cases {
        let got = round_trip(&client, column, value)
            .await
            .unwrap_or_else(|e| panic!("{value:?} into {column}: {}", cause(&e)));
        assert_eq!(got, expected, "{value:?} into {column}");
    }
    for column in ["f4", "f8", "num"] {
        let got = round_trip(&client, column, Real(f64::NAN)).await.unwrap();
        assert!(matches!(got, V::Real(f) if f.is_nan()), "NaN into {column}");
    }
}

#[tokio::test]
async fn null_binds_to_every_type() {
    let Some((_db, client)) = table("bind_null").await else {
        return;
    };
    let placeholders: Vec<String> = (1..=COLUMNS.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO t ({}) VALUES ({}) RETURNING *",
        COLUMNS.join(", "),
        placeholders.join(", ")
    );
    let params = [PgParam(Null); COLUMNS.len()];
    let rows = client.query(&sql, &params_of(&params)).await.unwrap();
    let values = decode_row(&rows[0]).unwrap();
    assert_eq!(values[0], Value::Integer(1));
    assert!(values[1..].iter().all(|v| *v == Value::Null), "{values:?}");
    assert_eq!(values.len(), 1 + COLUMNS.len());
    let stmt = client.prepare("SELECT * FROM t").await.unwrap();
    let mut names = vec!["id".to_owned()];
    names.extend(COLUMNS.iter().map(|c| c.to_string()));
    assert_eq!(column_names(stmt.columns()), names);
}

#[tokio::test]
async fn mismatches_and_out_of_range_values_are_errors_naming_the_type() {
    let Some((_db, client)) = table("bind_errors").await else {
        return;
    };
    let cases: [(&str, ValueRef<'_>, &str); 7] = [
        (
            "i2",
            Integer(70000),
            "70000 is out of range for a parameter of type int2",
        ),
        (
            "i4",
            Integer(1 << 40),
            "out of range for a parameter of type int4",
        ),
        ("o", Integer(-1), "out of range for a parameter of type oid"),
        ("b", Integer(2), "not a boolean"),
        (
            "i8",
            Real(1.0),
            "cannot bind a REAL value to a parameter of type int8",
        ),
        (
            "txt",
            Blob(b"x"),
            "cannot bind a BLOB value to a parameter of type text",
        ),
        (
            "num",
            Real(f64::INFINITY),
            "inf cannot be bound to a parameter of type numeric",
        ),
    ];
    for (column, value, message) in cases {
        let err = round_trip(&client, column, value).await.unwrap_err();
        assert!(
            cause(&err).contains(message),
            "{value:?} into {column}: {err:?}"
        );
    }
    // Nothing was sent: the session is still usable.
    assert_eq!(
        round_trip(&client, "i2", Integer(7)).await.unwrap(),
        Value::Integer(7)
    );
}

/// Text goes in text format to a type whose binary format is not text, so the server
/// parses it as SQLite's numeric affinity would: '5' into an int4 is 5, and text that is no
/// number is the server's own error, 22P02 (invalid text representation).
#[tokio::test]
async fn text_into_a_number_is_parsed_by_the_server() {
    let Some((_db, client)) = table("bind_text_number").await else {
        return;
    };
    assert_eq!(
        round_trip(&client, "i4", Text("5")).await.unwrap(),
        Value::Integer(5)
    );
    assert_eq!(
        round_trip(&client, "num", Text("1.50")).await.unwrap(),
        Value::Real(1.5)
    );
    assert_eq!(
        round_trip(&client, "b", Text("true")).await.unwrap(),
        Value::Integer(1)
    );
    let err = round_trip(&client, "i4", Text("abc")).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION),
        "{err:?}"
    );
    let err = round_trip(&client, "i2", Text("70000")).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
        "{err:?}"
    );
    // Text into bytea is its bytes, backslashes and all (no escape parsing).
    assert_eq!(
        round_trip(&client, "by", Text("a\\x41")).await.unwrap(),
        Value::Blob(b"a\\x41".to_vec())
    );
}

const TEMPORAL: &str = "CREATE TABLE tt (
    id serial PRIMARY KEY, u uuid, d date, t time, ts timestamp, tstz timestamptz)";

/// Binds `values` to `tt`'s columns `u, d, t, ts, tstz` in one row; the row read back.
async fn temporal_round_trip(
    client: &Client,
    values: [ValueRef<'_>; 5],
) -> Result<Vec<Value>, tokio_postgres::Error> {
    let sql = "INSERT INTO tt (u, d, t, ts, tstz) VALUES ($1, $2, $3, $4, $5) \
               RETURNING u, d, t, ts, tstz";
    let params = values.map(PgParam);
    let rows = client.query(sql, &params_of(&params)).await?;
    Ok(decode_row(&rows[0]).unwrap())
}

/// The text forms of `value/types.rs` go in, and come back in the same forms whatever the
/// session's time zone: a timestamptz at UTC.
#[tokio::test]
async fn uuids_dates_and_times_round_trip_as_text() {
    let Some(db) = TestDb::new("bind_temporal").await else {
        return;
    };
    let client = db.connect().await;
    client.batch_execute(TEMPORAL).await.unwrap();
    // Neither the session's time zone nor its DateStyle changes what is read.
    client
        .batch_execute("SET TIME ZONE 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY'")
        .await
        .unwrap();
    let text = |s: &str| Value::Text(s.into());
    let cases: [([&str; 5], [&str; 5]); 4] = [
        (
            [
                "67e55044-10b1-426f-9247-bb680e5fe0c8",
                "2024-01-02",
                "03:04:05.123456",
                "2024-01-02 03:04:05.123456",
                "2024-01-02T03:04:05.123456+00:00",
            ],
            [
                "67e55044-10b1-426f-9247-bb680e5fe0c8",
                "2024-01-02",
                "03:04:05.123456",
                "2024-01-02 03:04:05.123456",
                "2024-01-02T03:04:05.123456+00:00",
            ],
        ),
        // Other spellings the server takes; an offset is converted to UTC.
        (
            [
                "67E55044-10B1-426F-9247-BB680E5FE0C8",
                "2024-02-29",
                "23:59:59",
                "2024-01-02T03:04:05",
                "2024-01-02T05:04:05.5+02:00",
            ],
            [
                "67e55044-10b1-426f-9247-bb680e5fe0c8",
                "2024-02-29",
                "23:59:59.000000",
                "2024-01-02 03:04:05.000000",
                "2024-01-02T03:04:05.500000+00:00",
            ],
        ),
        // The ends of the ranges, and nanoseconds rounded to microseconds.
        (
            [
                "00000000-0000-0000-0000-000000000000",
                "4714-11-24 BC",
                "24:00:00",
                "0001-12-31 23:59:59.9999994 BC",
                "294276-12-31T23:59:59.999999+00:00",
            ],
            [
                "00000000-0000-0000-0000-000000000000",
                "4714-11-24 BC",
                "24:00:00.000000",
                "0001-12-31 23:59:59.999999 BC",
                "294276-12-31T23:59:59.999999+00:00",
            ],
        ),
        (
            [
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
                "5874897-12-31",
                "00:00:00.000001",
                "infinity",
                "-infinity",
            ],
            [
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
                "5874897-12-31",
                "00:00:00.000001",
                "infinity",
                "-infinity",
            ],
        ),
    ];
    for (given, expected) in cases {
        let got = temporal_round_trip(&client, given.map(Text))
            .await
            .unwrap_or_else(|e| panic!("{given:?}: {}", cause(&e)));
        assert_eq!(got, expected.map(text), "{given:?}");
    }
    let got = temporal_round_trip(&client, [Null; 5]).await.unwrap();
    assert_eq!(got, [const { Value::Null }; 5]);
    // Text the type does not take is the server's error.
    let err = temporal_round_trip(&client, [Null, Text("2024-02-30"), Null, Null, Null])
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::DATETIME_FIELD_OVERFLOW),
        "{err:?}"
    );
}

/// The decoder agrees with the server's own calendar, day by day across PostgreSQL's whole
/// range of dates.
#[tokio::test]
async fn decoded_dates_match_the_servers_calendar() {
    let Some(db) = TestDb::new("bind_calendar").await else {
        return;
    };
    let client = db.connect().await;
    // ISO dates are written as the decoder writes them: `YYYY-MM-DD`, ` BC` after.
    client.batch_execute("SET DateStyle = ISO").await.unwrap();
    let rows = client
        .query(
            "SELECT d, d::text, ts, ts AT TIME ZONE 'UTC' \
             FROM (SELECT d, CASE WHEN d < '294277-01-01' THEN d + time '13:14:15.5' END ts \
                   FROM (SELECT date '4714-11-24 BC' + i AS d \
                         FROM generate_series(0, 2147483493, 99991) i) v) w",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() > 20_000, "{}", rows.len());
    let mut timestamps = 0;
    for row in &rows {
        let values = decode_row(row).unwrap();
        let [Value::Text(date), Value::Text(expected), ts, tstz] = &values[..] else {
            panic!("{values:?}")
        };
        assert_eq!(date, expected);
        // Past timestamp's range (294276 AD).
        let (Value::Text(ts), Value::Text(tstz)) = (ts, tstz) else {
            assert_eq!((ts, tstz), (&Value::Null, &Value::Null));
            continue;
        };
        timestamps += 1;
        let (day, bc) = match expected.strip_suffix(" BC") {
            Some(day) => (day, " BC"),
            None => (expected.as_str(), ""),
        };
        assert_eq!(*ts, format!("{day} 13:14:15.500000{bc}"));
        assert_eq!(*tstz, format!("{day}T13:14:15.500000+00:00{bc}"));
    }
    assert!(timestamps > 1000, "{timestamps}");
}

#[tokio::test]
async fn server_computed_numerics_decode_by_scale() {
    let Some(db) = TestDb::new("bind_numeric").await else {
        return;
    };
    let client = db.connect().await;
    let row = client
        .query_one(
            "SELECT 0::numeric, 1.0::numeric, 5.00::numeric(10,2), 'NaN'::numeric, \
             'Infinity'::numeric, 12345678901234567890::numeric, -0.0001::numeric, \
             sum(x) FROM (VALUES (9223372036854775807::int8), (-1)) v(x)",
            &[],
        )
        .await
        .unwrap();
    let values = decode_row(&row).unwrap();
    assert_eq!(values[0], Value::Integer(0));
    assert_eq!(values[1], Value::Real(1.0));
    assert_eq!(values[2], Value::Real(5.0));
    assert!(matches!(values[3], Value::Real(f) if f.is_nan()));
    assert_eq!(values[4], Value::Real(f64::INFINITY));
    assert_eq!(values[5], Value::Real(12345678901234567890.0));
    assert_eq!(values[6], Value::Real(-0.0001));
    assert_eq!(values[7], Value::Integer(9223372036854775806));
}

#[tokio::test]
async fn an_unsupported_column_type_names_the_column_and_a_cast() {
    let Some(db) = TestDb::new("bind_unsupported").await else {
        return;
    };
    let client = db.connect().await;
    let sql = "SELECT 1 AS id, '1 day 2 hours'::interval AS waited";
    let row = client.query_one(sql, &[]).await.unwrap();
    let err = decode_row(&row).unwrap_err();
    assert_eq!(
        err,
        DecodeError {
            column: "1 `waited`".into(),
            pg_type: "interval".into(),
            reason: None,
            hint: "cast it in SQL, e.g. `waited::text`".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "column 1 `waited` has type interval, which has no Value form: \
         cast it in SQL, e.g. `waited::text`"
    );
    // The hint works.
    let row = client
        .query_one("SELECT '1 day 2 hours'::interval::text", &[])
        .await
        .unwrap();
    assert_eq!(
        decode_row(&row).unwrap(),
        [Value::Text("1 day 02:00:00".into())]
    );
}

#[tokio::test]
async fn enums_domains_citext_and_inferred_text_parameters() {
    let Some(db) = TestDb::new("bind_named_types").await else {
        return;
    };
    let client = db.connect().await;
    client
        .batch_execute(
            "CREATE TYPE mood AS ENUM ('ok', 'sad');
             CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
             CREATE TABLE n (m mood, p posint)",
        )
        .await
        .unwrap();
    let insert = "INSERT INTO n (m, p) VALUES ($1, $2) RETURNING m, p";
    let params = [PgParam(Text("sad")), PgParam(Integer(5))];
    let rows = client.query(insert, &params_of(&params)).await.unwrap();
    assert_eq!(
        decode_row(&rows[0]).unwrap(),
        [Value::Text("sad".into()), Value::Integer(5)]
    );
    // A domain is range-checked as its base type.
    let params = [PgParam(Null), PgParam(Integer(1 << 40))];
    let err = client.query(insert, &params_of(&params)).await.unwrap_err();
    assert!(
        cause(&err).contains("out of range for a parameter of type"),
        "{err:?}"
    );

    // A parameter nothing constrains is inferred as text (never `unknown`, on PostgreSQL 15),
    // so an Integer reads back as its decimal text.
    let stmt = client.prepare("SELECT $1").await.unwrap();
    assert_eq!(stmt.params(), [Type::TEXT]);
    let rows = client
        .query(&stmt, &params_of(&[PgParam(Integer(5))]))
        .await
        .unwrap();
    assert_eq!(decode_row(&rows[0]).unwrap(), [Value::Text("5".into())]);

    // citext is an extension's type, recognised by name.
    let create = format!(
        "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA \"{}\"",
        db.schema()
    );
    let found = "SELECT to_regtype('citext') IS NOT NULL";
    let available = match client.batch_execute(&create).await {
        Ok(()) => client
            .query_one(found, &[])
            .await
            .unwrap()
            .get::<_, bool>(0),
        Err(e) => {
            eprintln!("{e}");
            false
        }
    };
    if !available {
        eprintln!("citext is not installable in this test's schema: its case does not run");
        return;
    }
    let params = [PgParam(Text("abc"))];
    let rows = client
        .query("SELECT $1::citext = 'ABC', $1::citext", &params_of(&params))
        .await
        .unwrap();
    assert_eq!(
        decode_row(&rows[0]).unwrap(),
        [Value::Integer(1), Value::Text("abc".into())]
    );
}

/// Binds each of `params` (through `ToParam`, as a statement does) to `columns` of `table`
/// in one row; the row read back.
#[cfg(any(
    feature = "chrono",
    feature = "time",
    feature = "uuid",
    feature = "serde_json"
))]
async fn insert_params(
    client: &Client,
    table: &str,
    columns: &str,
    params: &[&dyn crate::value::ToParam],
) -> Vec<Value> {
    let placeholders: Vec<String> = (1..=params.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({columns}) VALUES ({}) RETURNING {columns}",
        placeholders.join(", ")
    );
    let bound: Vec<_> = params.iter().map(|p| p.to_param().unwrap()).collect();
    let values: Vec<PgParam<'_>> = bound.iter().map(|p| PgParam(p.as_value_ref())).collect();
    let rows = client
        .query(&sql, &params_of(&values))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", cause(&e)));
    decode_row(&rows[0]).unwrap()
}

#[cfg(any(feature = "chrono", feature = "time", feature = "uuid"))]
fn read<T: crate::value::FromValue>(value: &Value) -> T {
    T::from_value(value.as_ref()).unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

#[cfg(feature = "chrono")]
#[tokio::test]
async fn chrono_values_round_trip_through_their_columns() {
    use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

    let Some(db) = TestDb::new("bind_chrono").await else {
        return;
    };
    let client = db.connect().await;
    client.batch_execute(TEMPORAL).await.unwrap();
    client
        .batch_execute("SET TIME ZONE 'America/St_Johns'")
        .await
        .unwrap();
    let ts = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_micro_opt(23, 59, 58, 123_456)
        .unwrap();
    let bc = NaiveDate::from_ymd_opt(-44, 3, 15)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap();
    for ts in [ts, bc] {
        let utc: DateTime<Utc> = ts.and_utc();
        let east = FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap();
        let local: DateTime<FixedOffset> = utc.with_timezone(&east);
        for tstz in [&utc as &dyn crate::value::ToParam, &local] {
            let row = insert_params(
                &client,
                "tt",
                "d, t, ts, tstz",
                &[&ts.date(), &ts.time(), &ts, tstz],
            )
            .await;
            assert_eq!(read::<NaiveDate>(&row[0]), ts.date());
            assert_eq!(read::<NaiveTime>(&row[1]), ts.time());
            assert_eq!(read::<NaiveDateTime>(&row[2]), ts);
            assert_eq!(read::<DateTime<Utc>>(&row[3]), utc);
            // The server keeps the instant, not the offset: it reads back at UTC.
            let back = read::<DateTime<FixedOffset>>(&row[3]);
            assert_eq!(back, local);
            assert_eq!(back.offset().local_minus_utc(), 0);
        }
    }
    // None is NULL, and NULL reads as None.
    let row = insert_params(&client, "tt", "tstz", &[&None::<DateTime<Utc>>]).await;
    assert_eq!(read::<Option<DateTime<Utc>>>(&row[0]), None);
    // A timestamp the server computed reads as a chrono value too.
    let row = client
        .query_one("SELECT timestamptz '2024-01-02 03:04:05.5+01'", &[])
        .await
        .unwrap();
    let values = decode_row(&row).unwrap();
    assert_eq!(
        read::<DateTime<Utc>>(&values[0]),
        DateTime::parse_from_rfc3339("2024-01-02T02:04:05.5Z").unwrap()
    );
}

#[cfg(feature = "uuid")]
#[tokio::test]
async fn uuids_round_trip_through_uuid_text_and_bytea_columns() {
    use uuid::Uuid;

    let Some((_db, client)) = table("bind_uuid").await else {
        return;
    };
    client.batch_execute(TEMPORAL).await.unwrap();
    let u = Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8);
    let row = insert_params(&client, "tt", "u", &[&u]).await;
    assert_eq!(read::<Uuid>(&row[0]), u);
    let row = insert_params(&client, "tt", "u", &[&None::<Uuid>]).await;
    assert_eq!(read::<Option<Uuid>>(&row[0]), None);
    // In a text column, its text; in bytea, the 16 bytes read back as it too.
    let row = insert_params(&client, "t", "txt", &[&u]).await;
    assert_eq!(row[0], Value::Text(u.hyphenated().to_string()));
    assert_eq!(read::<Uuid>(&row[0]), u);
    let row = insert_params(&client, "t", "by", &[&u.as_bytes().as_slice()]).await;
    assert_eq!(read::<Uuid>(&row[0]), u);
}

#[cfg(feature = "time")]
#[tokio::test]
async fn time_values_round_trip_through_their_columns() {
    use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

    let Some(db) = TestDb::new("bind_time").await else {
        return;
    };
    let client = db.connect().await;
    client.batch_execute(TEMPORAL).await.unwrap();
    let ts = PrimitiveDateTime::new(
        Date::from_calendar_date(1999, Month::December, 31).unwrap(),
        Time::from_hms_micro(23, 59, 59, 999_999).unwrap(),
    );
    let local = ts.assume_offset(UtcOffset::from_hms(-3, -30, 0).unwrap());
    let row = insert_params(
        &client,
        "tt",
        "d, t, ts, tstz",
        &[&ts.date(), &ts.time(), &ts, &local],
    )
    .await;
    assert_eq!(read::<Date>(&row[0]), ts.date());
    assert_eq!(read::<Time>(&row[1]), ts.time());
    assert_eq!(read::<PrimitiveDateTime>(&row[2]), ts);
    let back = read::<OffsetDateTime>(&row[3]);
    assert_eq!(back, local);
    assert_eq!(back.offset(), UtcOffset::UTC);
}

#[cfg(feature = "serde_json")]
#[tokio::test]
async fn json_values_round_trip_through_json_jsonb_and_text() {
    let Some((_db, client)) = table("bind_serde_json").await else {
        return;
    };
    let doc = serde_json::json!({"a": [1, 2.5, null, "x"], "b": {"c": true}, "n": 5});
    for bare in [
        doc,
        serde_json::json!(5),
        serde_json::json!("s"),
        serde_json::json!(null),
    ] {
        let row = insert_params(&client, "t", "j, jb, txt", &[&bare, &bare, &bare]).await;
        for value in &row {
            let back: serde_json::Value =
                crate::value::FromValue::from_value(value.as_ref()).unwrap();
            assert_eq!(back, bare, "{value:?}");
        }
    }
}
