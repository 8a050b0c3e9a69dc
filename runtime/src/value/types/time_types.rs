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
                let d =
                    text::parse_date(s).ok_or_else(|| text::invalid(s, "date", "YYYY-MM-DD"))?;
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
