use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
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
                let d =
                    text::parse_date(s).ok_or_else(|| text::invalid(s, "date", "YYYY-MM-DD"))?;
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
