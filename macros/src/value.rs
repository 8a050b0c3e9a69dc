//! The values an option can take, checked at compile time: each check returns the typed
//! value or an error spanned on the literal (or expression) that is wrong.

use syn::{Error, Expr, Lit, LitStr, Path, Result};

/// A string option with a fixed set of spellings, each naming a variant of a runtime enum.
pub trait Choice: Copy + 'static {
    /// The option that takes this value, for messages.
    const OPTION: &'static str;
    /// The enum in `__private` that holds the variants.
    const TYPE: &'static str;
    /// How each variant is written in the attribute.
    const VALUES: &'static [(&'static str, Self)];
    /// Other frameworks' names for a value, with what to write here instead.
    const MEANINGS: &'static [(&'static str, &'static str)];
    fn variant(self) -> &'static str;
}

macro_rules! choice {
    (
        $name:ident, $option:literal { $($text:literal => $variant:ident,)* }
        $(meanings { $($known:literal => $meaning:literal,)* })?
    ) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($variant),* }

        impl Choice for $name {
            const OPTION: &'static str = $option;
            const TYPE: &'static str = stringify!($name);
            const VALUES: &'static [(&'static str, Self)] = &[$(($text, Self::$variant)),*];
            const MEANINGS: &'static [(&'static str, &'static str)] = &[$($(($known, $meaning)),*)?];
            fn variant(self) -> &'static str {
                match self { $(Self::$variant => stringify!($variant)),* }
            }
        }
    };
}

choice!(Propagation, "propagation" {
    "nested" => Nested,
    "join" => Join,
    "mandatory" => Mandatory,
    "requires_new" => RequiresNew,
}
// Names other frameworks give their modes (Spring's `Propagation`, Django's `atomic`), with
// what ours does instead. Matched by meaning, not by spelling: Spring's `REQUIRED` is one
// edit from our `requires_new`, its opposite.
meanings {
    "required" => "Spring's REQUIRED (join the current transaction, or begin one) is \
                   `propagation = \"join\"`",
    "supports" => "Spring's SUPPORTS has no equivalent: a `#[transactional]` fn always runs in \
                   a transaction; `propagation = \"join\"` joins the current one, or begins one",
    "not_supported" => "Spring's NOT_SUPPORTED has no equivalent: call the code that must run \
                        outside the transaction from outside the `#[transactional]` fn",
    "never" => "Spring's NEVER has no equivalent: a `#[transactional]` fn always runs in a \
                transaction; leave the attribute off the fn instead",
    "atomic" => "Django's `atomic` (a savepoint inside a transaction, or a new transaction) is \
                 `propagation = \"nested\"`, the default",
    "savepoint" => "a savepoint inside the current transaction (or a new transaction) is \
                    `propagation = \"nested\"`, the default",
    "durable" => "Django's `durable` has no equivalent; `propagation = \"requires_new\"` runs \
                  in a new transaction of its own, independent of the current one",
});
choice!(Begin, "begin" {
    "deferred" => Deferred,
    "immediate" => Immediate,
    "exclusive" => Exclusive,
});

choice!(Isolation, "isolation" {
    "read_committed" => ReadCommitted,
    "repeatable_read" => RepeatableRead,
    "serializable" => Serializable,
});

pub fn choice<T: Choice>(expr: &Expr) -> Result<T> {
    let names = || T::VALUES.iter().map(|(text, _)| *text);
    let lit = string(expr, T::OPTION, names().next().unwrap(), |text| {
        names().any(|name| name == text)
    })?;
    let text = lit.value();
    if let Some((_, value)) = T::VALUES.iter().find(|(name, _)| *name == text) {
        return Ok(*value);
    }
    // `REQUIRED`, `PROPAGATION_REQUIRED`, `required`: compared lowercase, without the prefix.
    let lower = text.to_ascii_lowercase();
    let plain = lower.strip_prefix("propagation_").unwrap_or(&lower);
    if T::VALUES.iter().any(|(name, _)| *name == plain) {
        let message = format!("write {:?}: the {} values are lowercase", plain, T::OPTION);
        return Err(Error::new(lit.span(), message));
    }
    if let Some((_, meaning)) = T::MEANINGS.iter().find(|(known, _)| *known == plain) {
        let message = format!("unknown {} {text:?}: {meaning}", T::OPTION);
        return Err(Error::new(lit.span(), message));
    }
    let message = match similar(&text, names()) {
        Some(name) => format!("unknown {} {text:?}; did you mean {name:?}?", T::OPTION),
        None => format!(
            "unknown {} {text:?}; expected one of {}",
            T::OPTION,
            list(names().map(|name| format!("{name:?}")))
        ),
    };
    Err(Error::new(lit.span(), message))
}

/// The option that `text` is a value of, for `#[transactional("join")]`.
pub fn option_taking(text: &str) -> Option<&'static str> {
    fn takes<T: Choice>(text: &str) -> Option<&'static str> {
        T::VALUES
            .iter()
            .any(|(name, _)| *name == text)
            .then_some(T::OPTION)
    }
    takes::<Propagation>(text)
        .or_else(|| takes::<Begin>(text))
        .or_else(|| takes::<Isolation>(text))
        .or_else(|| parse_duration(text).is_ok().then_some("timeout"))
}

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// `timeout = "250ms"`: the duration in nanoseconds.
pub fn timeout(expr: &Expr) -> Result<u64> {
    let lit = string(expr, "timeout", "2s", |text| parse_duration(text).is_ok())?;
    parse_duration(&lit.value()).map_err(|message| Error::new(lit.span(), message))
}

pub fn parse_duration(text: &str) -> std::result::Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number = number.replace('_', "");
    let scale = UNITS.iter().find(|(name, _)| *name == unit);
    let (Some((_, scale)), false) = (scale, number.is_empty()) else {
        let units = list(UNITS.iter().map(|(name, _)| format!("`{name}`")));
        return Err(format!(
            "invalid duration {text:?}: write a whole number followed by one of the units \
             {units}, like \"250ms\" or \"2s\""
        ));
    };
    let nanos = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(*scale));
    match nanos {
        Some(0) => {
            Err("the timeout must be longer than zero; remove the option for no timeout".into())
        }
        Some(nanos) => Ok(nanos),
        None => Err(format!(
            "timeout {text:?} is too long; the limit is about 584 years"
        )),
    }
}

/// `retries = 3`: how often a failed outermost transaction is re-run.
pub fn retries(expr: &Expr) -> Result<u32> {
    let usage = "`retries` takes a positive integer: `retries = 3`";
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Int(int), ..
    }) = ungroup(expr)
    else {
        return Err(Error::new_spanned(expr, usage));
    };
    match int.base10_parse::<u32>() {
        Ok(0) => Err(Error::new(
            int.span(),
            "`retries` must be at least 1; remove the option to run the transaction only once",
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(Error::new(
            int.span(),
            format!("{usage}, at most {}", u32::MAX),
        )),
    }
}

/// `name = "load_user"`: a name for the savepoint and the tracing span.
pub fn name(expr: &Expr) -> Result<LitStr> {
    let lit = string(expr, "name", "load_user", is_identifier)?;
    if is_identifier(&lit.value()) {
        return Ok(lit.clone());
    }
    Err(Error::new(
        lit.span(),
        "`name` must be an identifier: letters, digits and `_`, not starting with a digit, \
         like \"load_user\"",
    ))
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `read_only` or `read_only = true | false`.
pub fn flag(expr: &Expr, option: &str) -> Result<bool> {
    match ungroup(expr) {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        _ => Err(Error::new_spanned(
            expr,
            format!("expected `true` or `false`, or write just `{option}`"),
        )),
    }
}

/// `crate = "::my::transactional"`: where the runtime crate is.
pub fn crate_path(expr: &Expr) -> Result<Path> {
    let usage = "`crate` takes the path of the `transactional` crate as a string, \
                 like `crate = \"::my_facade::transactional\"`";
    let lit = string(expr, "crate", "::transactional", |_| false)
        .map_err(|error| Error::new(error.span(), usage))?;
    lit.parse::<Path>()
        .map_err(|_| Error::new(lit.span(), usage))
}

/// The string literal `expr` must be. The error shows how to write `option`: with the user's
/// own word in quotes when `fits` accepts it (`timeout = 2s` → `timeout = "2s"`), else with
/// `example`.
fn string<'a>(
    expr: &'a Expr,
    option: &str,
    example: &str,
    fits: impl Fn(&str) -> bool,
) -> Result<&'a LitStr> {
    let expr = ungroup(expr);
    if let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(lit), ..
    }) = expr
    {
        return Ok(lit);
    }
    let word = match expr {
        Expr::Path(path) => path.path.get_ident().map(ToString::to_string),
        Expr::Lit(lit) => Some(quote::ToTokens::to_token_stream(&lit.lit).to_string()),
        _ => None,
    };
    let example = word.filter(|word| fits(word)).unwrap_or(example.into());
    Err(Error::new_spanned(
        expr,
        format!("expected a string literal: `{option} = {example:?}`"),
    ))
}

/// Looks through the invisible groups `macro_rules!` puts around an `$x:expr`.
fn ungroup(mut expr: &Expr) -> &Expr {
    while let Expr::Group(group) = expr {
        expr = &group.expr;
    }
    expr
}

/// `a`, `b` or `c`.
pub fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The candidate the user most likely meant by `input`, if one is close enough: a few typos
/// away, sharing a long prefix (`retry`), or contained in it (`timeout_ms`).
pub fn similar<'a>(input: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let normal = |s: &str| s.to_ascii_lowercase().replace(['-', ' '], "_");
    let input = normal(input);
    let close = |candidate: &str, distance: usize| {
        let prefix = input
            .chars()
            .zip(candidate.chars())
            .take_while(|(a, b)| a == b)
            .count();
        distance <= 1.max(candidate.len() / 3)
            || prefix >= 4
            || (candidate.len() >= 4 && input.contains(candidate))
    };
    candidates
        .map(|candidate| (distance(&input, &normal(candidate)), candidate))
        .filter(|(distance, candidate)| close(&normal(candidate), *distance))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, counting a missing or extra `_` as a change like any other.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
