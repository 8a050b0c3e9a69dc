//! Conformance: the value types of `chrono`, `time`, `uuid` and `serde_json` (the runtime's
//! features of those names) are written and read by the same code on every kind of `KINDS`,
//! and come back equal. The table's column types are real PostgreSQL types; SQLite takes
//! any type name and stores these values as the text the library writes them as.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::json;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use transactional::{current, Atomic, Error, Row};
use transactional_tests::{Kind, TestDb, KINDS};
use uuid::Uuid;

const TABLE: &str = "CREATE TABLE vt (id INTEGER PRIMARY KEY, u UUID, d DATE, t TIME, \
                     ts TIMESTAMP, tstz TIMESTAMPTZ, j JSONB)";

const INSERT: &str =
    "INSERT INTO vt (id, u, d, t, ts, tstz, j) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Runs `body` in a write transaction on `test`'s database.
async fn run<T: Send + 'static>(
    test: &TestDb,
    body: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> T {
    Atomic::new()
        .db(test.db.clone())
        .run(body)
        .await
        .unwrap_or_else(|e| panic!("{:?}: {e}", test.kind))
}

async fn table(kind: Kind) -> TestDb {
    let test = TestDb::new(kind).await;
    test.exec(TABLE).await.expect("create vt");
    test
}

async fn row(test: &TestDb, id: i64) -> Row {
    run(test, async move {
        current()?
            .query_row("SELECT u, d, t, ts, tstz, j FROM vt WHERE id = ?1", (id,))
            .await
    })
    .await
}

fn uuid() -> Uuid {
    Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8)
}

fn stamp() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_micro_opt(23, 59, 58, 123_456)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chrono_uuid_and_json_values_read_back_equal() {
    for kind in KINDS {
        let test = table(kind).await;
        let ts = stamp();
        let utc: DateTime<Utc> = ts.and_utc();
        let doc = json!({"name": "ü", "tags": ["a", "b"], "n": 2.5, "none": null});
        let params = (1, uuid(), ts.date(), ts.time(), ts, utc, doc.clone());
        run(
            &test,
            async move { current()?.execute(INSERT, params).await },
        )
        .await;

        let row = row(&test, 1).await;
        assert_eq!(row.get::<Uuid>("u").unwrap(), uuid(), "{kind:?}");
        assert_eq!(row.get::<NaiveDate>("d").unwrap(), ts.date(), "{kind:?}");
        assert_eq!(row.get::<NaiveTime>("t").unwrap(), ts.time(), "{kind:?}");
        assert_eq!(row.get::<NaiveDateTime>("ts").unwrap(), ts, "{kind:?}");
        assert_eq!(row.get::<DateTime<Utc>>("tstz").unwrap(), utc, "{kind:?}");
        assert_eq!(row.get::<serde_json::Value>("j").unwrap(), doc, "{kind:?}");
        // Every kind gives the same text, too (JSON aside: jsonb normalizes it).
        let texts: Vec<String> = ["u", "d", "t", "ts", "tstz"]
            .into_iter()
            .map(|c| row.get::<String>(c).unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "67e55044-10b1-426f-9247-bb680e5fe0c8",
                "2024-02-29",
                "23:59:58.123456",
                "2024-02-29 23:59:58.123456",
                "2024-02-29T23:59:58.123456+00:00",
            ],
            "{kind:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_values_read_back_equal() {
    for kind in KINDS {
        let test = table(kind).await;
        let ts = PrimitiveDateTime::new(
            Date::from_calendar_date(1999, time::Month::December, 31).unwrap(),
            Time::from_hms_micro(23, 59, 59, 999_999).unwrap(),
        );
        let utc: OffsetDateTime = ts.assume_utc();
        let params = (2, ts.date(), ts.time(), ts, utc);
        run(&test, async move {
            current()?
                .execute(
                    "INSERT INTO vt (id, d, t, ts, tstz) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params,
                )
                .await
        })
        .await;
        let row = row(&test, 2).await;
        assert_eq!(row.get::<Date>("d").unwrap(), ts.date(), "{kind:?}");
        assert_eq!(row.get::<Time>("t").unwrap(), ts.time(), "{kind:?}");
        assert_eq!(row.get::<PrimitiveDateTime>("ts").unwrap(), ts, "{kind:?}");
        assert_eq!(row.get::<OffsetDateTime>("tstz").unwrap(), utc, "{kind:?}");
        // chrono reads what time wrote.
        assert_eq!(
            row.get::<DateTime<Utc>>("tstz").unwrap().timestamp(),
            utc.unix_timestamp(),
            "{kind:?}"
        );
        // NULL columns read as None.
        assert_eq!(row.get::<Option<Uuid>>("u").unwrap(), None, "{kind:?}");
        assert_eq!(
            row.get::<Option<serde_json::Value>>("j").unwrap(),
            None,
            "{kind:?}"
        );
    }
}

/// A value with an offset keeps its instant everywhere; SQLite keeps its offset too, while
/// PostgreSQL's timestamptz keeps only the instant and reads back at UTC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offset_keeps_its_instant() {
    for kind in KINDS {
        let test = table(kind).await;
        let east = FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap();
        let local = stamp().and_utc().with_timezone(&east);
        let plus3 = UtcOffset::from_hms(3, 0, 0).unwrap();
        let odt = stamp().and_utc().timestamp();
        let odt = OffsetDateTime::from_unix_timestamp(odt)
            .unwrap()
            .to_offset(plus3);
        run(&test, async move {
            let tx = current()?;
            tx.execute("INSERT INTO vt (id, tstz) VALUES (?1, ?2)", (3, local))
                .await?;
            tx.execute("INSERT INTO vt (id, tstz) VALUES (?1, ?2)", (4, odt))
                .await
        })
        .await;
        let back = row(&test, 3)
            .await
            .get::<DateTime<FixedOffset>>("tstz")
            .unwrap();
        assert_eq!(back, local, "{kind:?}");
        let back_odt = row(&test, 4).await.get::<OffsetDateTime>("tstz").unwrap();
        assert_eq!(back_odt, odt, "{kind:?}");
        let expected = if kind.is_sqlite() {
            (east.local_minus_utc(), plus3)
        } else {
            (0, UtcOffset::UTC)
        };
        assert_eq!(
            (back.offset().local_minus_utc(), back_odt.offset()),
            expected,
            "{kind:?}"
        );
    }
}

/// Bound dates and times compare and sort chronologically in SQL on every kind: on SQLite
/// because the text forms have fixed widths, on PostgreSQL because the columns are typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_values_compare_and_sort_in_sql() {
    for kind in KINDS {
        let test = table(kind).await;
        let base = stamp().and_utc();
        // Out of order: a microsecond and a second apart, a day later, a year later.
        let offsets_us = [
            86_400_000_000_i64,
            -1,
            0,
            31_536_000_000_000,
            999_999,
            1_000_000,
        ];
        let stamps: Vec<DateTime<Utc>> = offsets_us
            .iter()
            .map(|us| base + chrono::TimeDelta::microseconds(*us))
            .collect();
        let rows = stamps.clone();
        run(&test, async move {
            let tx = current()?;
            for (id, at) in rows.into_iter().enumerate() {
                let id = id as i64 + 10;
                tx.execute(
                    "INSERT INTO vt (id, d, ts, tstz) VALUES (?1, ?2, ?3, ?4)",
                    (id, at.date_naive(), at.naive_utc(), at),
                )
                .await?;
            }
            Ok(())
        })
        .await;
        let mut sorted = stamps.clone();
        sorted.sort();
        let (ordered, later, days) = run(&test, async move {
            let tx = current()?;
            let ordered = tx
                .query("SELECT tstz, ts FROM vt ORDER BY tstz", ())
                .await?
                .iter()
                .map(|r| Ok((r.get::<DateTime<Utc>>(0)?, r.get::<NaiveDateTime>(1)?)))
                .collect::<Result<Vec<_>, Error>>()?;
            let later = tx
                .query_row("SELECT count(*) FROM vt WHERE tstz > ?1", (base,))
                .await?
                .get::<i64>(0)?;
            let days = tx
                .query_row("SELECT count(*) FROM vt WHERE d = ?1", (base.date_naive(),))
                .await?
                .get::<i64>(0)?;
            Ok((ordered, later, days))
        })
        .await;
        let expected: Vec<_> = sorted.iter().map(|at| (*at, at.naive_utc())).collect();
        assert_eq!(ordered, expected, "{kind:?}");
        assert_eq!(later, 4, "{kind:?}");
        assert_eq!(days, 4, "{kind:?}");
    }
}

/// JSON documents, bare JSON values included: on SQLite a bare number in a column of
/// numeric affinity (`JSONB`) is stored as a number, and still reads back as the JSON number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_values_of_every_shape_read_back_equal() {
    for kind in KINDS {
        let test = table(kind).await;
        let docs = [
            json!({"a": {"b": [1, 2, {"c": "d"}]}}),
            json!([1, "two", 3.5, false, null]),
            json!(42),
            json!(-2.5),
            json!("text"),
            json!(true),
            json!(null),
        ];
        let inserted = docs.clone();
        run(&test, async move {
            let tx = current()?;
            for (id, doc) in inserted.into_iter().enumerate() {
                tx.execute(
                    "INSERT INTO vt (id, j) VALUES (?1, ?2)",
                    (id as i64 + 20, doc),
                )
                .await?;
            }
            Ok(())
        })
        .await;
        let back = run(&test, async {
            current()?
                .query("SELECT j FROM vt WHERE id >= 20 ORDER BY id", ())
                .await?
                .iter()
                .map(|r| r.get::<serde_json::Value>(0))
                .collect::<Result<Vec<_>, Error>>()
        })
        .await;
        assert_eq!(back, docs, "{kind:?}");
    }
}

/// A value that is not the type asked for is a conversion error naming the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_of_another_type_is_a_conversion_error() {
    for kind in KINDS {
        let test = table(kind).await;
        run(&test, async {
            current()?
                .execute(
                    "INSERT INTO vt (id, ts, tstz) VALUES (?1, ?2, ?3)",
                    (30, stamp(), stamp().and_utc()),
                )
                .await
        })
        .await;
        let row = row(&test, 30).await;
        let err = row.get::<NaiveDate>("ts").unwrap_err();
        assert!(
            matches!(&err, Error::Conversion { column, .. } if column.contains("ts")),
            "{kind:?}: {err}"
        );
        // A naive timestamp is no instant; one with an offset is no naive timestamp.
        assert!(row.get::<NaiveDateTime>("tstz").is_err(), "{kind:?}");
        assert!(row.get::<Uuid>("ts").is_err(), "{kind:?}");
    }
}
