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

#[cfg(any(feature = "chrono", feature = "time", feature = "postgres"))]
pub(crate) mod text;

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
mod chrono_types;

#[cfg(feature = "time")]
mod time_types;

#[cfg(feature = "uuid")]
mod uuid_types;

#[cfg(feature = "serde_json")]
mod serde_json_types;

#[cfg(test)]
mod tests;
