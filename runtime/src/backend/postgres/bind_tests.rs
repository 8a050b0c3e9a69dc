//! Tests of `bind.rs`: the numeric codec and the type checks run without a server; the round
//! trips run against `DATABASE_URL`'s server (and return early when it is unset).

use super::*;
use crate::backend::postgres::test_db::TestDb;
use tokio_postgres::Client;

use ValueRef::{Blob, Integer, Null, Real, Text};

/// What `PgParam(value)` writes for a parameter of type `ty`, or its error message.
fn bind(value: ValueRef<'_>, ty: &Type) -> Result<Option<Vec<u8>>, String> {
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
    assert_eq!(
        bind(Text("x"), &Type::INT4).unwrap_err(),
        "cannot bind a TEXT value to a parameter of type int4"
    );
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
    let cases: [(&str, ValueRef<'_>, &str); 8] = [
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
            "i4",
            Text("5"),
            "cannot bind a TEXT value to a parameter of type int4",
        ),
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
    let sql = "SELECT 1 AS id, '2024-01-02 03:04:05+00'::timestamptz AS created_at";
    let row = client.query_one(sql, &[]).await.unwrap();
    let err = decode_row(&row).unwrap_err();
    assert_eq!(
        err,
        DecodeError {
            column: "1 `created_at`".into(),
            pg_type: "timestamptz".into(),
            reason: None,
            hint: "cast it in SQL, e.g. `created_at::text`".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "column 1 `created_at` has type timestamptz, which has no Value form: \
         cast it in SQL, e.g. `created_at::text`"
    );
    // The hint works.
    client.batch_execute("SET TIME ZONE 'UTC'").await.unwrap();
    let row = client
        .query_one("SELECT '2024-01-02 03:04:05+00'::timestamptz::text", &[])
        .await
        .unwrap();
    assert_eq!(
        decode_row(&row).unwrap(),
        [Value::Text("2024-01-02 03:04:05+00".into())]
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
