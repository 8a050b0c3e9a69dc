//! Parameters and column values of other crates' types, each behind the crate feature of the
//! same name: `chrono`'s and `time`'s dates and times, `uuid::Uuid`, `serde_json::Value`.
//!
//! Every one of them is stored as TEXT, in one form per type, because that is the form both
//! backends take and give back. SQLite has no date, UUID or JSON type: it stores the text,
//! and its date functions read the same ISO 8601 forms. PostgreSQL parses the text when it
//! is bound to a `uuid`, `date`, `time`, `timestamp`, `timestamptz` or `json(b)` parameter
//! (`backend/postgres/bind.rs` sends it in text format), and reads those columns back as
//! text in exactly these forms. So the same Rust code writes and reads a date, a UUID or a
//! JSON document on either backend and gets the same value back.
//!
//! The forms written ([`text`] writes them, for these impls and for PostgreSQL's decoder):
//!
//! | type | text |
//! | --- | --- |
//! | date | `2024-01-02` |
//! | time | `03:04:05.123456` |
//! | date and time | `2024-01-02 03:04:05.123456` |
//! | date and time with offset | `2024-01-02T03:04:05.123456+00:00` |
//! | UUID | `67e55044-10b1-426f-9247-bb680e5fe0c8` |
//! | JSON | `{"a":1}` (serialized, compact) |
//!
//! The fraction always has six digits (microseconds: what PostgreSQL keeps), so that values
//! of one type and offset sort chronologically as text (SQLite's `ORDER BY`, `min`, `<`);
//! nine when the value has nanoseconds, which SQLite keeps and PostgreSQL rounds away. A
//! year before 1 AD is written as PostgreSQL writes it, `0001-01-01 BC` for year 0 of the
//! proleptic calendar `chrono` and `time` count in; a year after 9999 has more digits.
//!
//! Reading accepts more than is written: `T`, `t` or a space between date and time, a
//! fraction of up to nine digits or none, and an offset of `Z`, `+HH`, `+HH:MM`, `+HHMM`
//! (with optional seconds) or none. A naive type refuses a text with an offset (read it as
//! an offset type); an offset type reads a text without one as UTC, which is what SQLite's
//! `CURRENT_TIMESTAMP` and `datetime('now')` write. PostgreSQL's `infinity` and `-infinity`
//! have no form in these crates and are errors.

/// The text forms of dates and times, from and to their components: shared by the `chrono`
/// and `time` impls below and by PostgreSQL's decoder, so that a column PostgreSQL sends as
/// a binary timestamp reads as the very text the same Rust value is written as on SQLite.
#[cfg(any(feature = "chrono", feature = "time", feature = "postgres"))]
pub(crate) mod text {
    use std::fmt::Write;

    /// A calendar date of the proleptic Gregorian calendar; year 0 is 1 BC.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Civil {
        pub(crate) year: i32,
        pub(crate) month: u8,
        pub(crate) day: u8,
    }

    /// A time of day. `second` is 60 in a leap second; `hour` is 24 only in PostgreSQL's
    /// `24:00:00`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Clock {
        pub(crate) hour: u8,
        pub(crate) minute: u8,
        pub(crate) second: u8,
        pub(crate) nanosecond: u32,
    }

    /// `YYYY-MM-DD`.
    pub(crate) fn date(d: Civil) -> String {
        let mut out = String::with_capacity(16);
        let bc = write_date(&mut out, d);
        finish(out, bc)
    }

    /// `HH:MM:SS.ffffff`.
    pub(crate) fn time(t: Clock) -> String {
        let mut out = String::with_capacity(18);
        write_clock(&mut out, t);
        out
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff`.
    pub(crate) fn naive(d: Civil, t: Clock) -> String {
        let mut out = String::with_capacity(32);
        let bc = write_date(&mut out, d);
        out.push(' ');
        write_clock(&mut out, t);
        finish(out, bc)
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM` (RFC 3339), with `:SS` after the offset only when
    /// it has seconds; `d` and `t` are the local date and time at `offset_seconds` east of
    /// UTC.
    pub(crate) fn with_offset(d: Civil, t: Clock, offset_seconds: i32) -> String {
        let mut out = String::with_capacity(40);
        let bc = write_date(&mut out, d);
        out.push('T');
        write_clock(&mut out, t);
        let sign = if offset_seconds < 0 { '-' } else { '+' };
        let abs = offset_seconds.unsigned_abs();
        let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
        let _ = write!(out, "{sign}{h:02}:{m:02}");
        if s != 0 {
            let _ = write!(out, ":{s:02}");
        }
        finish(out, bc)
    }

    /// Writes the date; whether it is BC (the suffix goes at the very end, as PostgreSQL
    /// writes and reads it).
    fn write_date(out: &mut String, d: Civil) -> bool {
        let bc = d.year <= 0;
        let year = if bc {
            1 - i64::from(d.year)
        } else {
            d.year.into()
        };
        let _ = write!(out, "{year:04}-{:02}-{:02}", d.month, d.day);
        bc
    }

    fn write_clock(out: &mut String, t: Clock) {
        let _ = write!(out, "{:02}:{:02}:{:02}", t.hour, t.minute, t.second);
        if t.nanosecond % 1000 == 0 {
            let _ = write!(out, ".{:06}", t.nanosecond / 1000);
        } else {
            let _ = write!(out, ".{:09}", t.nanosecond);
        }
    }

    fn finish(mut out: String, bc: bool) -> String {
        if bc {
            out.push_str(" BC");
        }
        out
    }

    /// Why a text is not the form asked for.
    #[cfg(any(feature = "chrono", feature = "time"))]
    pub(crate) fn invalid(s: &str, what: &str, form: &str) -> crate::value::types::BoxError {
        if s == "infinity" || s == "-infinity" {
            format!("{s} (PostgreSQL's infinite {what}) has no value in this Rust type").into()
        } else {
            format!("{s:?} is not a {what} ({form})").into()
        }
    }

    /// A date: `YYYY-MM-DD`, ` BC` after it for years before 1 AD.
    #[cfg(any(feature = "chrono", feature = "time"))]
    pub(crate) fn parse_date(s: &str) -> Option<Civil> {
        let (body, bc) = split_era(s);
        let mut cur = Cursor::new(body);
        let d = cur.date(bc)?;
        cur.end()?;
        Some(d)
    }

    /// A time: `HH:MM:SS` with an optional fraction.
    #[cfg(any(feature = "chrono", feature = "time"))]
    pub(crate) fn parse_time(s: &str) -> Option<Clock> {
        let mut cur = Cursor::new(s);
        let t = cur.clock()?;
        cur.end()?;
        Some(t)
    }

    /// A date and time, `T` or a space between them, and the offset east of UTC in seconds
    /// when there is one.
    #[cfg(any(feature = "chrono", feature = "time"))]
    pub(crate) fn parse_datetime(s: &str) -> Option<(Civil, Clock, Option<i32>)> {
        let (body, bc) = split_era(s);
        let mut cur = Cursor::new(body);
        let d = cur.date(bc)?;
        if !(cur.eat(b'T') || cur.eat(b't') || cur.eat(b' ')) {
            return None;
        }
        let t = cur.clock()?;
        let offset = cur.offset()?;
        cur.end()?;
        Some((d, t, offset))
    }

    #[cfg(any(feature = "chrono", feature = "time"))]
    fn split_era(s: &str) -> (&str, bool) {
        match s.strip_suffix(" BC") {
            Some(body) => (body, true),
            None => (s, false),
        }
    }

    /// A parser of ASCII digits and punctuation: every method returns `None` when the text
    /// is not what it reads.
    #[cfg(any(feature = "chrono", feature = "time"))]
    struct Cursor<'a> {
        rest: &'a [u8],
    }

    #[cfg(any(feature = "chrono", feature = "time"))]
    impl<'a> Cursor<'a> {
        fn new(s: &'a str) -> Self {
            Cursor { rest: s.as_bytes() }
        }

        fn eat(&mut self, b: u8) -> bool {
            match self.rest.split_first() {
                Some((&first, rest)) if first == b => {
                    self.rest = rest;
                    true
                }
                _ => false,
            }
        }

        fn end(&self) -> Option<()> {
            self.rest.is_empty().then_some(())
        }

        /// `min..=max` digits (as many as there are), their value and count.
        fn digits(&mut self, min: usize, max: usize) -> Option<(u64, usize)> {
            let n = self
                .rest
                .iter()
                .take(max)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if n < min {
                return None;
            }
            let value = self.rest[..n]
                .iter()
                .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
            self.rest = &self.rest[n..];
            Some((value, n))
        }

        fn two(&mut self) -> Option<u8> {
            self.digits(2, 2).map(|(v, _)| v as u8)
        }

        fn date(&mut self, bc: bool) -> Option<Civil> {
            let (year, _) = self.digits(4, 9)?;
            let year = i32::try_from(year).ok()?;
            let year = match bc {
                true if year >= 1 => 1 - year,
                true => return None,
                false => year,
            };
            self.eat(b'-').then_some(())?;
            let month = self.two()?;
            self.eat(b'-').then_some(())?;
            let day = self.two()?;
            Some(Civil { year, month, day })
        }

        fn clock(&mut self) -> Option<Clock> {
            let hour = self.two()?;
            self.eat(b':').then_some(())?;
            let minute = self.two()?;
            self.eat(b':').then_some(())?;
            let second = self.two()?;
            let nanosecond = if self.eat(b'.') {
                let (value, n) = self.digits(1, 9)?;
                // A longer fraction is not cut short silently.
                if self.rest.first().is_some_and(u8::is_ascii_digit) {
                    return None;
                }
                (value * 10u64.pow(9 - n as u32)) as u32
            } else {
                0
            };
            Some(Clock {
                hour,
                minute,
                second,
                nanosecond,
            })
        }

        /// `Z`, `±HH`, `±HH:MM`, `±HHMM`, `±HH:MM:SS` or `±HHMMSS`, or nothing.
        fn offset(&mut self) -> Option<Option<i32>> {
            if self.eat(b'Z') || self.eat(b'z') {
                return Some(Some(0));
            }
            let sign = if self.eat(b'+') {
                1
            } else if self.eat(b'-') {
                -1
            } else {
                return Some(None);
            };
            let hours = i32::from(self.two()?);
            let colon = self.eat(b':');
            let minutes = if colon || !self.rest.is_empty() {
                i32::from(self.two()?)
            } else {
                0
            };
            let seconds = if (colon && self.eat(b':')) || (!colon && !self.rest.is_empty()) {
                i32::from(self.two()?)
            } else {
                0
            };
            if minutes > 59 || seconds > 59 {
                return None;
            }
            Some(Some(sign * (hours * 3600 + minutes * 60 + seconds)))
        }
    }
}

#[cfg(any(
    feature = "chrono",
    feature = "time",
    feature = "uuid",
    feature = "serde_json"
))]
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(any(
    feature = "chrono",
    feature = "time",
    feature = "uuid",
    feature = "serde_json"
))]
fn mismatch(value: super::ValueRef<'_>, what: &str) -> BoxError {
    let kind = value.type_name();
    let article = if kind.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind} value is not a {what}").into()
}

#[cfg(feature = "chrono")]
mod chrono_types {
    use chrono::{
        DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike,
        Utc,
    };

    use super::text::{self, Civil, Clock};
    use super::{mismatch, BoxError};
    use crate::value::{FromValue, ParamValue, ToParam, Value, ValueRef};

    fn civil(d: &NaiveDate) -> Civil {
        Civil {
            year: d.year(),
            month: d.month() as u8,
            day: d.day() as u8,
        }
    }

    /// chrono counts a leap second as nanoseconds past 1 000 000 000 of second 59.
    fn clock(t: &NaiveTime) -> Clock {
        let (second, nanosecond) = match t.nanosecond() {
            n if n >= 1_000_000_000 => (60, n - 1_000_000_000),
            n => (t.second() as u8, n),
        };
        Clock {
            hour: t.hour() as u8,
            minute: t.minute() as u8,
            second,
            nanosecond,
        }
    }

    fn to_date(d: Civil, s: &str) -> Result<NaiveDate, BoxError> {
        NaiveDate::from_ymd_opt(d.year, d.month.into(), d.day.into())
            .ok_or_else(|| format!("{s:?} is not a valid date").into())
    }

    fn to_time(t: Clock, s: &str) -> Result<NaiveTime, BoxError> {
        let (second, nanosecond) = match t.second {
            60 => (59, t.nanosecond + 1_000_000_000),
            s => (s, t.nanosecond),
        };
        NaiveTime::from_hms_nano_opt(t.hour.into(), t.minute.into(), second.into(), nanosecond)
            .ok_or_else(|| format!("{s:?} is not a valid time of day").into())
    }

    /// The naive date and time of a text, its offset east of UTC if it has one, and the
    /// text.
    fn parse<'a>(
        value: ValueRef<'a>,
        what: &str,
    ) -> Result<(NaiveDateTime, Option<i32>, &'a str), BoxError> {
        let ValueRef::Text(s) = value else {
            return Err(mismatch(value, what));
        };
        let (d, t, offset) = text::parse_datetime(s)
            .ok_or_else(|| text::invalid(s, what, "YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]"))?;
        Ok((to_date(d, s)?.and_time(to_time(t, s)?), offset, s))
    }

    fn fixed_offset(seconds: i32) -> Result<FixedOffset, BoxError> {
        FixedOffset::east_opt(seconds).ok_or_else(|| format!("offset of {seconds} s").into())
    }

    fn from_unix(secs: i64) -> Result<DateTime<Utc>, BoxError> {
        DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| format!("{secs} s since 1970 is out of chrono's range").into())
    }

    /// As text, `YYYY-MM-DD`.
    impl ToParam for NaiveDate {
        fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
            Ok(Value::Text(text::date(civil(self))).into())
        }
    }

    /// From text, `YYYY-MM-DD`.
    impl FromValue for NaiveDate {
        fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
            match value {
                ValueRef::Text(s) => {
                    let d = text::parse_date(s)
                        .ok_or_else(|| text::invalid(s, "date", "YYYY-MM-DD"))?;
                    to_date(d, s)
                }
                _ => Err(mismatch(value, "date")),
            }
        }
    }

    /// As text, `HH:MM:SS.ffffff`.
    impl ToParam for NaiveTime {
        fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
            Ok(Value::Text(text::time(clock(self))).into())
        }
    }

    /// From text, `HH:MM:SS` with an optional fraction.
    impl FromValue for NaiveTime {
        fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
            match value {
                ValueRef::Text(s) => {
                    let t = text::parse_time(s)
                        .ok_or_else(|| text::invalid(s, "time", "HH:MM:SS[.ffffff]"))?;
                    to_time(t, s)
                }
                _ => Err(mismatch(value, "time")),
            }
        }
    }

    /// As text, `YYYY-MM-DD HH:MM:SS.ffffff`.
    impl ToParam for NaiveDateTime {
        fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
            let text = text::naive(civil(&self.date()), clock(&self.time()));
            Ok(Value::Text(text).into())
        }
    }

    /// From text without an offset: a naive date and time means no instant, and one with
    /// an offset is read as a `DateTime`.
    impl FromValue for NaiveDateTime {
        fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
            match parse(value, "date and time")? {
                (naive, None, _) => Ok(naive),
                (_, Some(_), s) => Err(format!(
                    "{s:?} has an offset: read it as a DateTime, not a NaiveDateTime"
                )
                .into()),
            }
        }
    }

    /// As text, RFC 3339 at offset +00:00.
    impl ToParam for DateTime<Utc> {
        fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
            let naive = self.naive_utc();
            let text = text::with_offset(civil(&naive.date()), clock(&naive.time()), 0);
            Ok(Value::Text(text).into())
        }
    }

    /// From text (converted to UTC; without an offset it is taken to be UTC) or an integer
    /// (seconds since 1970-01-01 00:00:00 UTC, as SQLite's `unixepoch()` gives).
    impl FromValue for DateTime<Utc> {
        fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
            DateTime::<FixedOffset>::from_value(value).map(|local| local.with_timezone(&Utc))
        }
    }

    /// As text, RFC 3339 at its own offset.
    impl ToParam for DateTime<FixedOffset> {
        fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
            let local = self.naive_local();
            let offset = self.offset().local_minus_utc();
            let text = text::with_offset(civil(&local.date()), clock(&local.time()), offset);
            Ok(Value::Text(text).into())
        }
    }

    /// From text at its own offset (without one, UTC) or an integer (seconds since 1970,
    /// at UTC).
    impl FromValue for DateTime<FixedOffset> {
        fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
            if let ValueRef::Integer(secs) = value {
                return Ok(from_unix(secs)?.fixed_offset());
            }
            let (naive, offset, s) = parse(value, "date and time")?;
            fixed_offset(offset.unwrap_or(0))?
                .from_local_datetime(&naive)
                .single()
                .ok_or_else(|| format!("{s:?} is out of chrono's range").into())
        }
    }
}

#[cfg(feature = "time")]
mod time_types {
    use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

    use super::text::{self, Civil, Clock};
    use super::{mismatch, BoxError};
    use crate::value::{FromValue, ParamValue, ToParam, Value, ValueRef};

    fn civil(d: Date) -> Civil {
        Civil {
            year: d.year(),
            month: d.month() as u8,
            day: d.day(),
        }
    }

    fn clock(t: Time) -> Clock {
        Clock {
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
            nanosecond: t.nanosecond(),
        }
    }

    fn to_date(d: Civil, s: &str) -> Result<Date, BoxError> {
        let month = Month::try_from(d.month).map_err(|e| format!("{s:?}: {e}"))?;
        Date::from_calendar_date(d.year, month, d.day).map_err(|e| format!("{s:?}: {e}").into())
    }

    fn to_time(t: Clock, s: &str) -> Result<Time, BoxError> {
        Time::from_hms_nano(t.hour, t.minute, t.second, t.nanosecond)
            .map_err(|e| format!("{s:?}: {e}").into())
    }

    /// The date and time of a text, its offset east of UTC if it has one, and the text.
    fn parse<'a>(
        value: ValueRef<'a>,
        what: &str,
    ) -> Result<(PrimitiveDateTime, Option<i32>, &'a str), BoxError> {
        let ValueRef::Text(s) = value else {
            return Err(mismatch(value, what));
        };
        let (d, t, offset) = text::parse_datetime(s)
            .ok_or_else(|| text::invalid(s, what, "YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]"))?;
        Ok((
            PrimitiveDateTime::new(to_date(d, s)?, to_time(t, s)?),
            offset,
            s,
        ))
    }

    /// As text, `YYYY-MM-DD`.
    impl ToParam for Date {
        fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
            Ok(Value::Text(text::date(civil(*self))).into())
        }
    }

    /// From text, `YYYY-MM-DD`.
    impl FromValue for Date {
        fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
            match value {
                ValueRef::Text(s) => {
                    let d = text::parse_date(s)
                        .ok_or_else(|| text::invalid(s, "date", "YYYY-MM-DD"))?;
                    to_date(d, s)
                }
                _ => Err(mismatch(value, "date")),
            }
        }
    }

    /// As text, `HH:MM:SS.ffffff`.
    impl ToParam for Time {
        fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
            Ok(Value::Text(text::time(clock(*self))).into())
        }
    }

    /// From text, `HH:MM:SS` with an optional fraction.
    impl FromValue for Time {
        fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
            match value {
                ValueRef::Text(s) => {
                    let t = text::parse_time(s)
                        .ok_or_else(|| text::invalid(s, "time", "HH:MM:SS[.ffffff]"))?;
                    to_time(t, s)
                }
                _ => Err(mismatch(value, "time")),
            }
        }
    }

    /// As text, `YYYY-MM-DD HH:MM:SS.ffffff`.
    impl ToParam for PrimitiveDateTime {
        fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
            let text = text::naive(civil(self.date()), clock(self.time()));
            Ok(Value::Text(text).into())
        }
    }

    /// From text without an offset: one with an offset is read as an `OffsetDateTime`.
    impl FromValue for PrimitiveDateTime {
        fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
            match parse(value, "date and time")? {
                (primitive, None, _) => Ok(primitive),
                (_, Some(_), s) => Err(format!(
                    "{s:?} has an offset: read it as an OffsetDateTime, not a \
                     PrimitiveDateTime"
                )
                .into()),
            }
        }
    }

    /// As text, RFC 3339 at its own offset.
    impl ToParam for OffsetDateTime {
        fn to_param(&self) -> Result<ParamValue<'_>, BoxError> {
            let text = text::with_offset(
                civil(self.date()),
                clock(self.time()),
                self.offset().whole_seconds(),
            );
            Ok(Value::Text(text).into())
        }
    }

    /// From text at its own offset (without one, UTC) or an integer (seconds since 1970, at
    /// UTC).
    impl FromValue for OffsetDateTime {
        fn from_value(value: ValueRef<'_>) -> Result<Self, BoxError> {
            if let ValueRef::Integer(secs) = value {
                return OffsetDateTime::from_unix_timestamp(secs)
                    .map_err(|e| format!("{secs} s since 1970: {e}").into());
            }
            let (primitive, offset, _) = parse(value, "date and time")?;
            let offset = UtcOffset::from_whole_seconds(offset.unwrap_or(0))?;
            Ok(primitive.assume_offset(offset))
        }
    }
}

/// `Uuid` is stored as TEXT, hyphenated and lowercase (`67e55044-10b1-426f-9247-bb680e5fe0c8`).
/// rusqlite's own `uuid` support stores a 16-byte BLOB instead; TEXT is chosen here because
/// it is the one form both backends share: PostgreSQL parses it into a `uuid` parameter and
/// this crate reads a `uuid` column back as it, SQLite compares and shows it as written, and
/// a `TEXT` column of either backend holds it. A 16-byte BLOB (rusqlite's form, or a
/// `bytea`) still reads as a `Uuid`.
#[cfg(feature = "uuid")]
mod uuid_types {
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
}

/// `serde_json::Value` is stored as its serialized text: a PostgreSQL `json`/`jsonb`
/// parameter takes it as JSON, a text column or SQLite as text. JSON `null` is the text
/// `null`, not SQL `NULL` (bind an `Option` for that).
#[cfg(feature = "serde_json")]
mod serde_json_types {
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
}

#[cfg(test)]
mod tests {
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

    #[cfg(feature = "chrono")]
    mod chrono_types {
        use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

        use crate::value::{FromValue, ToParam, Value, ValueRef};

        fn text<T: ToParam>(value: &T) -> String {
            match value.to_param().unwrap().into_owned() {
                Value::Text(s) => s,
                other => panic!("not text: {other:?}"),
            }
        }

        fn read<T: FromValue>(s: &str) -> Result<T, String> {
            T::from_value(ValueRef::Text(s)).map_err(|e| e.to_string())
        }

        fn round_trips<T: ToParam + FromValue + PartialEq + std::fmt::Debug>(value: T) {
            let s = text(&value);
            assert_eq!(read::<T>(&s).as_ref(), Ok(&value), "{s}");
        }

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
                for (h, m, s, nanos) in [(0, 0, 0, 0), (23, 59, 59, 999_999_999), (12, 30, 0, 1000)]
                {
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

        use crate::value::{FromValue, ToParam, Value, ValueRef};

        fn text<T: ToParam>(value: &T) -> String {
            match value.to_param().unwrap().into_owned() {
                Value::Text(s) => s,
                other => panic!("not text: {other:?}"),
            }
        }

        fn read<T: FromValue>(s: &str) -> Result<T, String> {
            T::from_value(ValueRef::Text(s)).map_err(|e| e.to_string())
        }

        fn round_trips<T: ToParam + FromValue + PartialEq + std::fmt::Debug>(value: T) {
            let s = text(&value);
            assert_eq!(read::<T>(&s).as_ref(), Ok(&value), "{s}");
        }

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
}
