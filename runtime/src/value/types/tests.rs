#[cfg(any(feature = "chrono", feature = "time", feature = "postgres"))]
mod text_forms {
    use crate::value::types::text::{self, Civil, Clock};

    const fn civil(year: i32, month: u8, day: u8) -> Civil {
        Civil { year, month, day }
    }

    const fn clock(hour: u8, minute: u8, second: u8, nanosecond: u32) -> Clock {
        Clock {
            hour,
            minute,
            second,
            nanosecond,
        }
    }

    #[test]
    fn written_forms() {
        let d = civil(2024, 1, 2);
        let t = clock(3, 4, 5, 123_456_000);
        assert_eq!(text::date(d), "2024-01-02");
        assert_eq!(text::time(t), "03:04:05.123456");
        assert_eq!(text::time(clock(0, 0, 0, 0)), "00:00:00.000000");
        assert_eq!(text::time(clock(23, 59, 59, 1)), "23:59:59.000000001");
        assert_eq!(text::time(clock(24, 0, 0, 0)), "24:00:00.000000");
        assert_eq!(text::naive(d, t), "2024-01-02 03:04:05.123456");
        assert_eq!(
            text::with_offset(d, t, 0),
            "2024-01-02T03:04:05.123456+00:00"
        );
        assert_eq!(
            text::with_offset(d, t, -(9 * 3600 + 30 * 60)),
            "2024-01-02T03:04:05.123456-09:30"
        );
        assert_eq!(
            text::with_offset(d, t, 3600 + 2),
            "2024-01-02T03:04:05.123456+01:00:02"
        );
        // Before 1 AD, as PostgreSQL writes it: year 0 is 1 BC.
        assert_eq!(text::date(civil(0, 12, 31)), "0001-12-31 BC");
        assert_eq!(text::date(civil(-4712, 1, 1)), "4713-01-01 BC");
        assert_eq!(
            text::with_offset(civil(-1, 3, 4), t, 0),
            "0002-03-04T03:04:05.123456+00:00 BC"
        );
        assert_eq!(text::date(civil(1, 1, 1)), "0001-01-01");
        assert_eq!(text::date(civil(294_276, 12, 31)), "294276-12-31");
    }

    #[cfg(any(feature = "chrono", feature = "time"))]
    #[test]
    fn parsed_forms() {
        let d = civil(2024, 1, 2);
        assert_eq!(text::parse_date("2024-01-02"), Some(d));
        assert_eq!(text::parse_date("0001-12-31 BC"), Some(civil(0, 12, 31)));
        assert_eq!(
            text::parse_date("294276-12-31"),
            Some(civil(294_276, 12, 31))
        );
        for bad in [
            "",
            "2024-1-02",
            "24-01-02",
            "2024-01-02x",
            "2024/01/02",
            "0000-01-01 BC",
            "infinity",
            "2024-01-02 03:04:05",
        ] {
            assert_eq!(text::parse_date(bad), None, "{bad:?}");
        }

        assert_eq!(text::parse_time("03:04:05"), Some(clock(3, 4, 5, 0)));
        assert_eq!(
            text::parse_time("03:04:05.5"),
            Some(clock(3, 4, 5, 500_000_000))
        );
        assert_eq!(
            text::parse_time("03:04:05.123456789"),
            Some(clock(3, 4, 5, 123_456_789))
        );
        for bad in [
            "03:04",
            "3:04:05",
            "03:04:05.",
            "03:04:05.1234567890",
            "03:04:05Z",
        ] {
            assert_eq!(text::parse_time(bad), None, "{bad:?}");
        }

        let t = clock(3, 4, 5, 123_456_000);
        for (s, offset) in [
            ("2024-01-02 03:04:05.123456", None),
            ("2024-01-02T03:04:05.123456", None),
            ("2024-01-02t03:04:05.123456", None),
            ("2024-01-02T03:04:05.123456Z", Some(0)),
            ("2024-01-02T03:04:05.123456z", Some(0)),
            ("2024-01-02T03:04:05.123456+00:00", Some(0)),
            (
                "2024-01-02 03:04:05.123456-09:30",
                Some(-(9 * 3600 + 30 * 60)),
            ),
            ("2024-01-02 03:04:05.123456+0530", Some(5 * 3600 + 30 * 60)),
            ("2024-01-02 03:04:05.123456+05", Some(5 * 3600)),
            ("2024-01-02 03:04:05.123456+01:00:02", Some(3602)),
            ("2024-01-02 03:04:05.123456+010002", Some(3602)),
        ] {
            assert_eq!(text::parse_datetime(s), Some((d, t, offset)), "{s:?}");
        }
        assert_eq!(
            text::parse_datetime("2024-01-02 03:04:05"),
            Some((d, clock(3, 4, 5, 0), None))
        );
        assert_eq!(
            text::parse_datetime("0002-03-04T03:04:05.123456+00:00 BC"),
            Some((civil(-1, 3, 4), t, Some(0)))
        );
        for bad in [
            "2024-01-02",
            "2024-01-0203:04:05",
            "2024-01-02 03:04",
            "2024-01-02 03:04:05+",
            "2024-01-02 03:04:05+1",
            "2024-01-02 03:04:05+01:",
            "2024-01-02 03:04:05+01:60",
            "2024-01-02 03:04:05 +01:00",
            "2024-01-02 03:04:05+01:00x",
            "-infinity",
        ] {
            assert_eq!(text::parse_datetime(bad), None, "{bad:?}");
        }
    }

    /// Every form written is read back as the same components.
    #[cfg(any(feature = "chrono", feature = "time"))]
    #[test]
    fn written_forms_parse_back() {
        let dates = [
            civil(2024, 2, 29),
            civil(1, 1, 1),
            civil(0, 1, 1),
            civil(-4712, 1, 1),
            civil(9999, 12, 31),
            civil(10_000, 1, 1),
        ];
        let clocks = [
            clock(0, 0, 0, 0),
            clock(23, 59, 59, 999_999_000),
            clock(12, 0, 0, 1),
            clock(23, 59, 60, 0),
        ];
        for d in dates {
            assert_eq!(text::parse_date(&text::date(d)), Some(d));
            for t in clocks {
                assert_eq!(text::parse_time(&text::time(t)), Some(t));
                assert_eq!(text::parse_datetime(&text::naive(d, t)), Some((d, t, None)));
                for offset in [0, -3600, 5 * 3600 + 45 * 60, -(3600 + 61)] {
                    let s = text::with_offset(d, t, offset);
                    assert_eq!(text::parse_datetime(&s), Some((d, t, Some(offset))), "{s}");
                }
            }
        }
    }
}

/// What the `chrono` and `time` tests share: a value's text form, and reading one back.
#[cfg(any(feature = "chrono", feature = "time"))]
mod shared {
    use crate::value::{FromValue, ToParam, Value, ValueRef};

    pub(super) fn text<T: ToParam>(value: &T) -> String {
        match value.to_param().unwrap().into_owned() {
            Value::Text(s) => s,
            other => panic!("not text: {other:?}"),
        }
    }

    pub(super) fn read<T: FromValue>(s: &str) -> Result<T, String> {
        T::from_value(ValueRef::Text(s)).map_err(|e| e.to_string())
    }

    pub(super) fn round_trips<T: ToParam + FromValue + PartialEq + std::fmt::Debug>(value: T) {
        let s = text(&value);
        assert_eq!(read::<T>(&s).as_ref(), Ok(&value), "{s}");
    }
}

#[cfg(feature = "chrono")]
mod chrono_types {
    use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

    use crate::value::{FromValue, ValueRef};

    use super::shared::{read, round_trips, text};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn at(d: NaiveDate, h: u32, m: u32, s: u32, nanos: u32) -> NaiveDateTime {
        d.and_hms_nano_opt(h, m, s, nanos).unwrap()
    }

    #[test]
    fn forms_written() {
        let ts = at(date(2024, 1, 2), 3, 4, 5, 123_456_000);
        assert_eq!(text(&ts.date()), "2024-01-02");
        assert_eq!(text(&ts.time()), "03:04:05.123456");
        assert_eq!(text(&ts), "2024-01-02 03:04:05.123456");
        assert_eq!(text(&ts.and_utc()), "2024-01-02T03:04:05.123456+00:00");
        let east = FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(
            text(&ts.and_utc().with_timezone(&east)),
            "2024-01-02T05:04:05.123456+02:00"
        );
        // What chrono itself reads as RFC 3339 (BC aside).
        let dt = ts.and_utc().with_timezone(&east);
        assert_eq!(DateTime::parse_from_rfc3339(&text(&dt)).unwrap(), dt);
        // A leap second.
        let leap = NaiveTime::from_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        assert_eq!(text(&leap), "23:59:60.500000");
    }

    #[test]
    fn values_round_trip() {
        for d in [
            date(2024, 2, 29),
            date(1, 1, 1),
            date(0, 12, 31),
            date(-4712, 1, 1),
        ] {
            round_trips(d);
            for (h, m, s, nanos) in [(0, 0, 0, 0), (23, 59, 59, 999_999_999), (12, 30, 0, 1000)] {
                let naive = at(d, h, m, s, nanos);
                round_trips(naive.time());
                round_trips(naive);
                round_trips(naive.and_utc());
                for offset in [-12 * 3600, 3600 + 30 * 60, 0] {
                    let east = FixedOffset::east_opt(offset).unwrap();
                    round_trips(naive.and_utc().with_timezone(&east));
                }
            }
        }
        round_trips(NaiveTime::from_hms_nano_opt(23, 59, 59, 1_999_999_999).unwrap());
        round_trips(NaiveDate::MAX);
        round_trips(NaiveDateTime::MIN);
    }

    #[test]
    fn lenient_reading() {
        let ts = at(date(2024, 1, 2), 3, 4, 5, 0);
        let utc = ts.and_utc();
        assert_eq!(read::<NaiveDateTime>("2024-01-02T03:04:05"), Ok(ts));
        assert_eq!(read::<NaiveDateTime>("2024-01-02 03:04:05.000"), Ok(ts));
        // Without an offset: UTC (SQLite's CURRENT_TIMESTAMP).
        assert_eq!(read::<DateTime<Utc>>("2024-01-02 03:04:05"), Ok(utc));
        assert_eq!(read::<DateTime<Utc>>("2024-01-02T03:04:05Z"), Ok(utc));
        assert_eq!(read::<DateTime<Utc>>("2024-01-02T05:04:05+02:00"), Ok(utc));
        let at_plus2 = read::<DateTime<FixedOffset>>("2024-01-02T05:04:05+02").unwrap();
        assert_eq!(at_plus2, utc);
        assert_eq!(at_plus2.offset().local_minus_utc(), 7200);
        assert_eq!(
            read::<DateTime<FixedOffset>>("2024-01-02 03:04:05")
                .unwrap()
                .offset()
                .local_minus_utc(),
            0
        );
        // Seconds since 1970.
        assert_eq!(
            DateTime::<Utc>::from_value(ValueRef::Integer(1_704_164_645)).unwrap(),
            utc
        );
        assert_eq!(
            DateTime::<FixedOffset>::from_value(ValueRef::Integer(0)).unwrap(),
            DateTime::UNIX_EPOCH
        );
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            read::<NaiveDateTime>("2024-01-02T03:04:05+00:00").unwrap_err(),
            "\"2024-01-02T03:04:05+00:00\" has an offset: read it as a DateTime, not a \
             NaiveDateTime"
        );
        assert_eq!(
            read::<NaiveDate>("2024-02-30").unwrap_err(),
            "\"2024-02-30\" is not a valid date"
        );
        assert_eq!(
            read::<NaiveDate>("02/01/2024").unwrap_err(),
            "\"02/01/2024\" is not a date (YYYY-MM-DD)"
        );
        assert_eq!(
            read::<DateTime<Utc>>("infinity").unwrap_err(),
            "infinity (PostgreSQL's infinite date and time) has no value in this Rust type"
        );
        assert!(read::<NaiveTime>("24:00:00").is_err());
        assert_eq!(
            NaiveDate::from_value(ValueRef::Integer(1))
                .unwrap_err()
                .to_string(),
            "an INTEGER value is not a date"
        );
        assert!(NaiveDateTime::from_value(ValueRef::Integer(1)).is_err());
        assert!(DateTime::<Utc>::from_value(ValueRef::Integer(i64::MAX)).is_err());
    }
}

#[cfg(feature = "time")]
mod time_types {
    use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

    use crate::value::{FromValue, ValueRef};

    use super::shared::{read, round_trips, text};

    fn date(y: i32, m: Month, d: u8) -> Date {
        Date::from_calendar_date(y, m, d).unwrap()
    }

    #[test]
    fn forms_written_and_read() {
        let d = date(2024, Month::January, 2);
        let t = Time::from_hms_micro(3, 4, 5, 123_456).unwrap();
        let ts = PrimitiveDateTime::new(d, t);
        assert_eq!(text(&d), "2024-01-02");
        assert_eq!(text(&t), "03:04:05.123456");
        assert_eq!(text(&ts), "2024-01-02 03:04:05.123456");
        assert_eq!(text(&ts.assume_utc()), "2024-01-02T03:04:05.123456+00:00");
        let minus = UtcOffset::from_hms(-3, -30, 0).unwrap();
        assert_eq!(
            text(&ts.assume_offset(minus)),
            "2024-01-02T03:04:05.123456-03:30"
        );
        assert_eq!(
            read::<OffsetDateTime>("2024-01-02 03:04:05.123456"),
            Ok(ts.assume_utc())
        );
        assert_eq!(
            read::<OffsetDateTime>("2024-01-02T06:34:05.123456+03:30"),
            Ok(ts.assume_utc())
        );
        assert_eq!(
            OffsetDateTime::from_value(ValueRef::Integer(0)).unwrap(),
            OffsetDateTime::UNIX_EPOCH
        );
        assert!(read::<PrimitiveDateTime>("2024-01-02 03:04:05Z").is_err());
        // time has no leap seconds.
        assert!(read::<Time>("23:59:60").is_err());
        for d in [
            d,
            date(2024, Month::February, 29),
            date(0, Month::December, 31),
            date(-9999, Month::January, 1),
            Date::MAX,
        ] {
            round_trips(d);
            for t in [
                Time::MIDNIGHT,
                t,
                Time::from_hms_nano(23, 59, 59, 999_999_999).unwrap(),
            ] {
                round_trips(t);
                let ts = PrimitiveDateTime::new(d, t);
                round_trips(ts);
                round_trips(ts.assume_offset(minus));
                round_trips(ts.assume_utc());
            }
        }
    }

    /// chrono and time write the same instant as the same text.
    #[cfg(feature = "chrono")]
    #[test]
    fn chrono_and_time_agree() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_704_164_645_123_456_789).unwrap();
        let c = chrono::DateTime::from_timestamp(1_704_164_645, 123_456_789).unwrap();
        assert_eq!(text(&t), text(&c));
        assert_eq!(text(&t.date()), text(&c.date_naive()));
        assert_eq!(text(&t.time()), text(&c.time()));
    }
}

#[cfg(feature = "uuid")]
mod uuid_types {
    use uuid::Uuid;

    use crate::value::{FromValue, ToParam, Value, ValueRef};

    #[test]
    fn text_hyphenated_lowercase_and_back() {
        let s = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let u = Uuid::parse_str(s).unwrap();
        assert_eq!(u.to_param().unwrap().into_owned(), Value::Text(s.into()));
        assert_eq!(Uuid::from_value(ValueRef::Text(s)).unwrap(), u);
        let upper = s.to_uppercase();
        assert_eq!(Uuid::from_value(ValueRef::Text(&upper)).unwrap(), u);
        let simple = s.replace('-', "");
        assert_eq!(Uuid::from_value(ValueRef::Text(&simple)).unwrap(), u);
        // rusqlite's form.
        assert_eq!(Uuid::from_value(ValueRef::Blob(u.as_bytes())).unwrap(), u);
        assert_eq!(
            Uuid::from_value(ValueRef::Blob(&[0; 15]))
                .unwrap_err()
                .to_string(),
            "a BLOB of 15 bytes is not a UUID"
        );
        assert!(Uuid::from_value(ValueRef::Text("nope")).is_err());
        assert!(Uuid::from_value(ValueRef::Integer(1)).is_err());
    }
}

#[cfg(feature = "serde_json")]
mod serde_json_types {
    use serde_json::json;

    use crate::value::{FromValue, ToParam, Value, ValueRef};

    #[test]
    fn serialized_text_and_back() {
        let j = json!({"a": [1, 2.5, null, "x"], "b": {"c": true}});
        let Value::Text(s) = j.to_param().unwrap().into_owned() else {
            panic!("not text")
        };
        assert_eq!(s, r#"{"a":[1,2.5,null,"x"],"b":{"c":true}}"#);
        assert_eq!(
            serde_json::Value::from_value(ValueRef::Text(&s)).unwrap(),
            j
        );
        // JSON null is text, not SQL NULL.
        assert_eq!(
            serde_json::Value::Null.to_param().unwrap().into_owned(),
            Value::Text("null".into())
        );
        // Bare numbers, as SQLite stores them in a column of numeric affinity.
        let from = |v| serde_json::Value::from_value(v).map_err(|e| e.to_string());
        assert_eq!(from(ValueRef::Integer(5)), Ok(json!(5)));
        assert_eq!(from(ValueRef::Real(1.5)), Ok(json!(1.5)));
        assert!(from(ValueRef::Real(f64::NAN)).is_err());
        assert!(from(ValueRef::Text("{")).is_err());
        assert!(from(ValueRef::Blob(b"{}")).is_err());
    }
}
