//! `?N` → `$N`: the library's statements use SQLite's numbered placeholders on both backends
//! (ARCHITECTURE.md §6), and PostgreSQL only knows `$N`. A placeholder counts only in SQL code:
//! string literals (`'..'` with `''`, `E'..'` with backslash escapes), quoted identifiers,
//! `--` and nested `/* */` comments, and dollar-quoted bodies (`$$..$$`, `$tag$..$tag$`) are
//! passed through byte for byte. A `?` not followed by a digit is left alone: it is one of
//! jsonb's operators (`?`, `?|`, `?&`), not a placeholder. A `?N` glued to a word
//! (`LIMIT?1`, which SQLite accepts) is an error: PostgreSQL would read `LIMIT$1` as one
//! identifier.
//!
//! `?` and `$` are both one ASCII byte, so a rewrite changes single bytes in place and byte
//! offsets (error positions the server reports) stay valid for the original text.
//!
//! Assumes `standard_conforming_strings = on` (PostgreSQL's default since 9.1): in a plain
//! `'..'` literal a backslash is an ordinary character.

use std::borrow::Cow;
use std::ops::Range;

/// The highest placeholder number: the wire protocol counts parameters in 16 bits.
pub(crate) const MAX_PLACEHOLDER: u32 = u16::MAX as u32;

/// A numbered placeholder PostgreSQL could not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PlaceholderError {
    #[error("placeholder `?{digits}` at byte {offset}: placeholders are numbered from ?1")]
    Zero { offset: usize, digits: String },
    #[error(
        "placeholder at byte {offset} directly follows `{before}`: PostgreSQL would read its \
         `$` as part of that word; put a space before it"
    )]
    Glued { offset: usize, before: char },
    #[error(
        "placeholder `?{digits}` at byte {offset} is past the highest a statement can have (?{MAX_PLACEHOLDER})"
    )]
    TooLarge { offset: usize, digits: String },
}

/// Rewrites every `?N` in SQL code to `$N`; borrows `sql` when there is none.
///
/// The digits are kept as written (`?07` becomes `$07`), so mapping `$N` back gives the
/// original text.
pub(crate) fn rewrite(sql: &str) -> Result<Cow<'_, str>, PlaceholderError> {
    let mut at = Vec::new();
    for (kind, range) in parts(sql) {
        if kind == Part::Code {
            placeholders_in(sql, range, &mut at)?;
        }
    }
    if at.is_empty() {
        return Ok(Cow::Borrowed(sql));
    }
    let mut bytes = sql.as_bytes().to_vec();
    for i in at {
        bytes[i] = b'$';
    }
    // Only ASCII `?` bytes were replaced by ASCII `$`: still the same valid UTF-8.
    Ok(Cow::Owned(String::from_utf8(bytes).expect(
        "replacing one ASCII byte by another keeps UTF-8 valid",
    )))
}

/// Pushes the offset of the `?` of each `?N` in `sql[range]` (code, never quoted text).
fn placeholders_in(
    sql: &str,
    range: Range<usize>,
    at: &mut Vec<usize>,
) -> Result<(), PlaceholderError> {
    let b = sql.as_bytes();
    let mut i = range.start;
    while i < range.end {
        if b[i] == b'?' && i + 1 < range.end && b[i + 1].is_ascii_digit() {
            // Glued to a word, `$N` would continue it (`LIMIT$1` is one identifier), and
            // after a `$` it would open a dollar quote (`$tag$1`).
            if i > range.start && is_ident_byte(b[i - 1]) {
                return Err(PlaceholderError::Glued {
                    offset: i,
                    before: sql[..i].chars().next_back().unwrap_or('$'),
                });
            }
            let start = i + 1;
            let mut end = start;
            while end < range.end && b[end].is_ascii_digit() {
                end += 1;
            }
            let digits = &sql[start..end];
            // Leading zeros do not count towards the limit: `?0001` is `?1`.
            let significant = digits.trim_start_matches('0');
            let value = if significant.len() > 5 {
                None
            } else {
                significant.parse::<u32>().ok().or(Some(0))
            };
            match value {
                Some(0) => {
                    return Err(PlaceholderError::Zero {
                        offset: i,
                        digits: digits.to_owned(),
                    })
                }
                Some(n) if n <= MAX_PLACEHOLDER => at.push(i),
                _ => {
                    return Err(PlaceholderError::TooLarge {
                        offset: i,
                        digits: digits.to_owned(),
                    })
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// What a stretch of a statement is, as far as placeholders are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// SQL code: placeholders here are rewritten.
    Code,
    /// A literal, quoted identifier, comment or dollar-quoted body, delimiters included:
    /// never changed.
    Quoted,
}

/// Splits `sql` into adjacent code and quoted stretches covering all of it, in order.
/// An unterminated quote runs to the end of the text (the server will reject it).
pub(crate) fn parts(sql: &str) -> Parts<'_> {
    Parts {
        b: sql.as_bytes(),
        pos: 0,
        pending: None,
    }
}

pub(crate) struct Parts<'a> {
    b: &'a [u8],
    pos: usize,
    /// The end of the quoted part that starts at `pos`, found while scanning code.
    pending: Option<usize>,
}

impl Iterator for Parts<'_> {
    type Item = (Part, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.pos;
        if start >= self.b.len() {
            return None;
        }
        // A quoted part found while scanning code (its opening may depend on the code before
        // it, as `E'` does) or one that starts right after another quoted part, where nothing
        // before `start` can belong to an identifier.
        if let Some(end) = self
            .pending
            .take()
            .or_else(|| self.quoted_end(start, start))
        {
            self.pos = end;
            return Some((Part::Quoted, start..end));
        }
        let mut i = start + 1;
        while i < self.b.len() {
            if let Some(end) = self.quoted_end(i, start) {
                self.pending = Some(end);
                break;
            }
            i += 1;
        }
        self.pos = i;
        Some((Part::Code, start..i))
    }
}

impl Parts<'_> {
    /// If a quoted stretch starts at `i`, where it ends (exclusive). `code_start` is where the
    /// code around `i` begins: bytes before it belong to an earlier token.
    fn quoted_end(&self, i: usize, code_start: usize) -> Option<usize> {
        let b = self.b;
        match b[i] {
            b'\'' => Some(self.single_quoted_end(i, self.is_escape_string(i, code_start))),
            b'"' => Some(self.single_quoted_end(i, false)),
            // As in PostgreSQL's lexer, a carriage return ends a line comment too.
            b'-' if b.get(i + 1) == Some(&b'-') => Some(
                b[i..]
                    .iter()
                    .position(|&c| c == b'\n' || c == b'\r')
                    .map_or(b.len(), |n| i + n + 1),
            ),
            b'/' if b.get(i + 1) == Some(&b'*') => Some(self.block_comment_end(i)),
            b'$' => self.dollar_quoted_end(i, code_start),
            _ => None,
        }
    }

    /// `E'..'`/`e'..'`: the quote follows an `E` that is a token of its own.
    fn is_escape_string(&self, quote: usize, code_start: usize) -> bool {
        quote > code_start
            && matches!(self.b[quote - 1], b'E' | b'e')
            && (quote - 1 == code_start || !is_ident_byte(self.b[quote - 2]))
    }

    /// End of a `'..'` literal or `".."` identifier opened at `i`: a doubled delimiter is an
    /// escaped one; in an `E'..'` literal a backslash escapes the byte after it.
    fn single_quoted_end(&self, i: usize, backslash_escapes: bool) -> usize {
        let b = self.b;
        let delim = b[i];
        let mut j = i + 1;
        while j < b.len() {
            if backslash_escapes && b[j] == b'\\' {
                j += 2;
            } else if b[j] == delim {
                if b.get(j + 1) == Some(&delim) {
                    j += 2;
                } else {
                    return j + 1;
                }
            } else {
                j += 1;
            }
        }
        b.len()
    }

    /// End of a `/* */` comment opened at `i`; PostgreSQL's block comments nest.
    fn block_comment_end(&self, i: usize) -> usize {
        let b = self.b;
        let mut depth = 0usize;
        let mut j = i;
        while j + 1 < b.len() {
            match (b[j], b[j + 1]) {
                (b'/', b'*') => {
                    depth += 1;
                    j += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        return j;
                    }
                }
                _ => j += 1,
            }
        }
        b.len()
    }

    /// End of a `$tag$..$tag$` body opened at `i`, if `$` opens one here: not inside an
    /// identifier (`a$b` is one identifier) and not a `$1` parameter.
    fn dollar_quoted_end(&self, i: usize, code_start: usize) -> Option<usize> {
        let b = self.b;
        if i > code_start && is_ident_byte(b[i - 1]) {
            return None;
        }
        let mut j = i + 1;
        if j < b.len() && is_ident_start(b[j]) {
            j += 1;
            while j < b.len() && is_ident_byte(b[j]) && b[j] != b'$' {
                j += 1;
            }
        }
        if b.get(j) != Some(&b'$') {
            return None;
        }
        let delimiter = &b[i..=j];
        let body = j + 1;
        Some(
            b[body..]
                .windows(delimiter.len())
                .position(|w| w == delimiter)
                .map_or(b.len(), |n| body + n + delimiter.len()),
        )
    }
}

/// A byte that can start an identifier or a dollar-quote tag (bytes of non-ASCII characters
/// count as letters, as in PostgreSQL's lexer).
fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

/// A byte that can continue an identifier (`$` can, after the first character).
fn is_ident_byte(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(sql: &str) -> String {
        rewrite(sql).unwrap().into_owned()
    }

    #[test]
    fn numbered_placeholders_become_dollar_parameters() {
        assert_eq!(
            rw("INSERT INTO kv(key, val) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET val = ?2"),
            "INSERT INTO kv(key, val) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET val = $2"
        );
        assert_eq!(rw("SELECT ?10+?9,?65535"), "SELECT $10+$9,$65535");
        assert_eq!(rw("?1"), "$1");
        assert_eq!(rw("SELECT ?07"), "SELECT $07");
    }

    #[test]
    fn text_without_placeholders_is_borrowed() {
        let sql = "SELECT '?1', \"?2\" -- ?3\n";
        assert!(matches!(rewrite(sql), Ok(Cow::Borrowed(s)) if s == sql));
        assert!(matches!(rewrite(""), Ok(Cow::Borrowed(""))));
    }

    #[test]
    fn string_literals_are_untouched() {
        assert_eq!(rw("SELECT '?1', ?1"), "SELECT '?1', $1");
        // '' is an escaped quote, not the end of the literal.
        assert_eq!(rw("SELECT 'it''s ?1', ?2"), "SELECT 'it''s ?1', $2");
        assert_eq!(rw("SELECT '', ?1, ''''"), "SELECT '', $1, ''''");
        // A plain literal's backslash is an ordinary character: the literal ends at `\'`.
        assert_eq!(rw(r"SELECT 'a\', ?1"), r"SELECT 'a\', $1");
        // Prefixed literals: bit strings, national, Unicode escapes.
        assert_eq!(
            rw("SELECT B'?1', X'?1', N'?1', U&'?1', ?1"),
            "SELECT B'?1', X'?1', N'?1', U&'?1', $1"
        );
    }

    #[test]
    fn escape_string_literals_honour_backslashes() {
        assert_eq!(rw(r"SELECT E'\' ?1', ?2"), r"SELECT E'\' ?1', $2");
        assert_eq!(rw(r"SELECT e'a\\', ?1"), r"SELECT e'a\\', $1");
        assert_eq!(rw(r"SELECT E'x''?1\n', ?1"), r"SELECT E'x''?1\n', $1");
        // `E` at the end of an identifier is not a prefix: `name'..'` is a plain literal.
        assert_eq!(rw(r"SELECT typE'a\', ?1"), r"SELECT typE'a\', $1");
    }

    #[test]
    fn quoted_identifiers_are_untouched() {
        assert_eq!(
            rw("SELECT \"?1\", \"a\"\"?2\" FROM t WHERE x = ?3"),
            "SELECT \"?1\", \"a\"\"?2\" FROM t WHERE x = $3"
        );
        assert_eq!(rw("U&\"?1\" = ?1"), "U&\"?1\" = $1");
    }

    #[test]
    fn comments_are_untouched() {
        assert_eq!(rw("SELECT ?1 -- ?2\n, ?3"), "SELECT $1 -- ?2\n, $3");
        assert_eq!(rw("SELECT ?1 -- ?2"), "SELECT $1 -- ?2");
        assert_eq!(rw("SELECT /* ?1 */ ?2"), "SELECT /* ?1 */ $2");
        // Block comments nest: the first `*/` does not end the outer one.
        assert_eq!(
            rw("SELECT /* a /* ?1 */ ?2 */ ?3"),
            "SELECT /* a /* ?1 */ ?2 */ $3"
        );
        // Quotes inside comments do not open anything.
        assert_eq!(rw("/* ' */ ?1 -- \"\n?2"), "/* ' */ $1 -- \"\n$2");
        assert_eq!(
            rw("SELECT 1 /* ?1 unterminated"),
            "SELECT 1 /* ?1 unterminated"
        );
        // PostgreSQL ends a line comment at a carriage return as well.
        assert_eq!(rw("SELECT 1 -- ?1\r?2"), "SELECT 1 -- ?1\r$2");
    }

    #[test]
    fn dollar_quoted_bodies_are_untouched() {
        assert_eq!(rw("SELECT $$?1 'x$$, ?1"), "SELECT $$?1 'x$$, $1");
        assert_eq!(
            rw("DO $body$ BEGIN PERFORM ?1; $$ ?2 $$ END $body$; SELECT ?3"),
            "DO $body$ BEGIN PERFORM ?1; $$ ?2 $$ END $body$; SELECT $3"
        );
        // `$1` is a parameter, not a quote; `a$b$` is one identifier.
        assert_eq!(rw("SELECT $1, ?2"), "SELECT $1, $2");
        assert_eq!(rw("SELECT a$b$ + ?1"), "SELECT a$b$ + $1");
        // A tag's delimiter must match exactly.
        assert_eq!(rw("SELECT $a$ $b$ ?1 $a$, ?1"), "SELECT $a$ $b$ ?1 $a$, $1");
        assert_eq!(rw("SELECT $é$?1$é$, ?1"), "SELECT $é$?1$é$, $1");
        // Right after a quoted token, `$$` opens a new body: the `$` before it closed a token.
        assert_eq!(rw("SELECT $$a$$$$?1$$, ?1"), "SELECT $$a$$$$?1$$, $1");
        assert_eq!(rw(r"SELECT $$a$$E'\' ?1', ?1"), r"SELECT $$a$$E'\' ?1', $1");
    }

    #[test]
    fn question_mark_operators_are_left_alone() {
        let sql = "SELECT d ? 'k', d ?| array['a'], d ?& array['b'], d @? '$.a', d?'k' FROM t";
        assert_eq!(rw(sql), sql);
        assert_eq!(
            rw("SELECT d ? 'k' AND id = ?1"),
            "SELECT d ? 'k' AND id = $1"
        );
        assert_eq!(rw("SELECT ?"), "SELECT ?");
    }

    #[test]
    fn a_placeholder_glued_to_a_word_is_an_error() {
        // SQLite reads `LIMIT?1` as `LIMIT ?1`; PostgreSQL would read `LIMIT$1` as one word.
        assert_eq!(
            rewrite("SELECT v FROM t LIMIT?1"),
            Err(PlaceholderError::Glued {
                offset: 21,
                before: 'T'
            })
        );
        assert_eq!(
            rewrite("SELECT v FROM t LIMIT?1").unwrap_err().to_string(),
            "placeholder at byte 21 directly follows `T`: PostgreSQL would read its `$` as part \
             of that word; put a space before it"
        );
        // `$?1` and `$tag?1` would become a dollar-quote opener.
        assert!(matches!(
            rewrite("SELECT ''$?1"),
            Err(PlaceholderError::Glued { .. })
        ));
        assert!(matches!(
            rewrite("SELECT $é?1"),
            Err(PlaceholderError::Glued { before: 'é', .. })
        ));
        // Punctuation before a placeholder is fine.
        assert_eq!(rw("SELECT (?1),?2=?3::int"), "SELECT ($1),$2=$3::int");
    }

    #[test]
    fn placeholder_zero_is_an_error() {
        assert_eq!(
            rewrite("SELECT ?1, ?0"),
            Err(PlaceholderError::Zero {
                offset: 11,
                digits: "0".into()
            })
        );
        assert!(matches!(
            rewrite("SELECT ?000"),
            Err(PlaceholderError::Zero { .. })
        ));
        let err = rewrite("SELECT ?0").unwrap_err().to_string();
        assert_eq!(
            err,
            "placeholder `?0` at byte 7: placeholders are numbered from ?1"
        );
    }

    #[test]
    fn placeholder_past_the_protocol_limit_is_an_error() {
        assert_eq!(
            rewrite("SELECT ?65536"),
            Err(PlaceholderError::TooLarge {
                offset: 7,
                digits: "65536".into()
            })
        );
        assert!(matches!(
            rewrite("SELECT ?99999999999999999999999999"),
            Err(PlaceholderError::TooLarge { .. })
        ));
        assert_eq!(rw("SELECT ?00065535"), "SELECT $00065535");
        // In a literal a huge number is only text.
        assert_eq!(rw("SELECT '?0 ?99999999'"), "SELECT '?0 ?99999999'");
    }

    #[test]
    fn parts_cover_the_text_in_order() {
        let sql = "a '?1' \"b\" -- c\n/* d */ $$e$$ ?1";
        let parts: Vec<_> = parts(sql).map(|(k, r)| (k, &sql[r])).collect();
        assert_eq!(
            parts,
            [
                (Part::Code, "a "),
                (Part::Quoted, "'?1'"),
                (Part::Code, " "),
                (Part::Quoted, "\"b\""),
                (Part::Code, " "),
                (Part::Quoted, "-- c\n"),
                (Part::Quoted, "/* d */"),
                (Part::Code, " "),
                (Part::Quoted, "$$e$$"),
                (Part::Code, " ?1"),
            ]
        );
    }

    /// The server agrees with the rewrite about what is code and what is quoted.
    #[tokio::test]
    async fn rewritten_statements_run_on_the_server() {
        use crate::backend::postgres::test_db::TestDb;
        let Some(db) = TestDb::new("placeholders_server").await else {
            return;
        };
        let c = db.connect().await;
        let sql = rw(concat!(
            "SELECT ?1::text || 'it''s ?2' || E'\\'?3' || $$?4$$ || $t$?5$t$ ",
            "/* ?6 /* ?7 */ ?8 */ || \"c?9\" -- ?10\n",
            "FROM (SELECT 'x' AS \"c?9\") s WHERE ?2::int = 2 ",
            "AND '{\"k\": 1}'::jsonb ? ?1 AND NOT '{\"k\": 1}'::jsonb ?| array['?1']",
        ));
        let row = c.query_one(&sql, &[&"k", &2i32]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "kit's ?2'?3?4?5x");
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        /// One stretch of a generated statement, rendered with `?N` and with `$N`.
        #[derive(Debug, Clone)]
        enum Seg {
            Code(String),
            Placeholder(u32),
            Quoted(String),
        }

        const TEXT: &str = "[a-zA-Z0-9 ?$'\"*/\\\\\n\\-é;]{0,12}";

        fn code() -> impl Strategy<Value = String> {
            let token = prop_oneof![
                "[a-z_][a-z0-9_]{0,5}",
                "[0-9]{1,4}",
                Just("?|".to_owned()),
                Just("?&".to_owned()),
                Just("?".to_owned()),
                Just("@?".to_owned()),
                Just("+".to_owned()),
                Just("(".to_owned()),
                Just(",".to_owned()),
            ];
            proptest::collection::vec(token, 1..4).prop_map(|t| t.join(" "))
        }

        fn quoted() -> impl Strategy<Value = String> {
            prop_oneof![
                TEXT.prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
                TEXT.prop_map(|s| format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))),
                TEXT.prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
                "[^\n\r]{0,12}".prop_map(|s| format!("--{s}\n")),
                (TEXT, TEXT, proptest::bool::ANY)
                    .prop_filter("no comment delimiters inside", |(a, b, _)| {
                        let joined = format!("{a}{b}");
                        ![a, b, &joined]
                            .iter()
                            .any(|s| s.contains("/*") || s.contains("*/"))
                    })
                    .prop_map(|(a, b, nest)| if nest {
                        format!("/* {a} /* {b} */ */")
                    } else {
                        format!("/* {a}{b} */")
                    }),
                ("([a-z_][a-z0-9_]{0,3})?", TEXT)
                    .prop_filter("body holds no closing delimiter", |(tag, body)| {
                        let close = format!("${tag}$");
                        format!("{body}{close}").find(&close) == Some(body.len())
                    })
                    .prop_map(|(tag, body)| format!("${tag}${body}${tag}$")),
            ]
        }

        fn statement() -> impl Strategy<Value = Vec<Seg>> {
            let seg = prop_oneof![
                code().prop_map(Seg::Code),
                (1..=MAX_PLACEHOLDER).prop_map(Seg::Placeholder),
                quoted().prop_map(Seg::Quoted),
            ];
            proptest::collection::vec(seg, 0..10)
        }

        /// Segments joined by spaces, so that neighbours cannot merge into other tokens.
        fn render(segs: &[Seg], sigil: char) -> String {
            let text: Vec<String> = segs
                .iter()
                .map(|s| match s {
                    Seg::Code(c) | Seg::Quoted(c) => c.clone(),
                    Seg::Placeholder(n) => format!("{sigil}{n}"),
                })
                .collect();
            text.join(" ")
        }

        /// The inverse mapping: `$N` in code back to `?N`.
        fn to_question_marks(sql: &str) -> String {
            let mut out = String::new();
            for (kind, r) in parts(sql) {
                let text = &sql[r];
                if kind == Part::Quoted {
                    out.push_str(text);
                    continue;
                }
                let b = text.as_bytes();
                for (i, ch) in text.char_indices() {
                    let is_param = ch == '$' && b.get(i + 1).is_some_and(u8::is_ascii_digit);
                    out.push(if is_param { '?' } else { ch });
                }
            }
            out
        }

        fn quoted_texts(sql: &str) -> Vec<&str> {
            parts(sql)
                .filter(|(k, _)| *k == Part::Quoted)
                .map(|(_, r)| &sql[r])
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn rewrite_matches_the_model_and_round_trips(segs in statement()) {
                let sqlite = render(&segs, '?');
                let postgres = rewrite(&sqlite).unwrap();
                prop_assert_eq!(postgres.as_ref(), render(&segs, '$'));
                prop_assert_eq!(to_question_marks(&postgres), sqlite.clone());
                prop_assert_eq!(quoted_texts(&postgres), quoted_texts(&sqlite));
                let expected: Vec<&str> = segs
                    .iter()
                    // The `E` of `E'..'` is code; the quoted part is the literal.
                    .filter_map(|s| match s {
                        Seg::Quoted(q) => Some(q.strip_prefix('E').unwrap_or(q)),
                        _ => None,
                    })
                    .collect();
                prop_assert_eq!(quoted_texts(&sqlite), expected);
            }

            #[test]
            fn any_text_rewrites_without_panicking_and_keeps_quoted_text(sql in "\\PC{0,40}") {
                if let Ok(out) = rewrite(&sql) {
                    prop_assert_eq!(out.len(), sql.len());
                    prop_assert_eq!(quoted_texts(&out), quoted_texts(&sql));
                }
            }
        }
    }
}
