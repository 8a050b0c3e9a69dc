//! The text forms of dates and times, from and to their components: shared by the `chrono`
//! and `time` impls below and by PostgreSQL's decoder, so that a column PostgreSQL sends as
//! a binary timestamp reads as the very text the same Rust value is written as on SQLite.

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
