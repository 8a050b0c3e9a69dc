//! Parsing `#[transactional(...)]`'s arguments into a typed [`Args`].
//!
//! Syntax errors (a token that is not an option, a missing `,`) stop the parse; errors in a
//! value (an unknown propagation, a bad duration) and repeated or unknown options are
//! collected so the user sees all of them at once.

use proc_macro2::{Span, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Lookahead1, Parse, ParseStream};
use syn::{Error, Expr, Ident, LitStr, Path, Result, Token};

use crate::errors::Errors;
use crate::value::{self, Begin, Isolation, Propagation};

mod kw {
    syn::custom_keyword!(db);
    syn::custom_keyword!(propagation);
    syn::custom_keyword!(begin);
    syn::custom_keyword!(isolation);
    syn::custom_keyword!(read_only);
    syn::custom_keyword!(retries);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(name);
}

/// The options as written, each with the span of its key for later messages.
#[derive(Clone, Default)]
pub struct Args {
    pub db: Option<Opt<Expr>>,
    pub propagation: Option<Opt<Propagation>>,
    pub begin: Option<Opt<Begin>>,
    pub isolation: Option<Opt<Isolation>>,
    pub read_only: Option<Opt<bool>>,
    pub retries: Option<Opt<u32>>,
    /// In nanoseconds.
    pub timeout: Option<Opt<u64>>,
    pub name: Option<Opt<LitStr>>,
    pub krate: Option<Opt<Path>>,
}

/// One option's value and the span of its key.
#[derive(Clone)]
pub struct Opt<T> {
    pub key: Span,
    pub value: T,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Db,
    Propagation,
    Begin,
    Isolation,
    ReadOnly,
    Retries,
    Timeout,
    Name,
    Crate,
}

impl Key {
    pub const ALL: [Key; 9] = [
        Key::Db,
        Key::Propagation,
        Key::Begin,
        Key::Isolation,
        Key::ReadOnly,
        Key::Retries,
        Key::Timeout,
        Key::Name,
        Key::Crate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Key::Db => "db",
            Key::Propagation => "propagation",
            Key::Begin => "begin",
            Key::Isolation => "isolation",
            Key::ReadOnly => "read_only",
            Key::Retries => "retries",
            Key::Timeout => "timeout",
            Key::Name => "name",
            Key::Crate => "crate",
        }
    }

    /// How the option is written, for "needs a value" messages.
    fn usage(self) -> &'static str {
        match self {
            Key::Db => "db = <expression>",
            Key::Propagation => "propagation = \"nested\"",
            Key::Begin => "begin = \"immediate\"",
            Key::Isolation => "isolation = \"serializable\"",
            Key::ReadOnly => "read_only",
            Key::Retries => "retries = 3",
            Key::Timeout => "timeout = \"2s\"",
            Key::Name => "name = \"load_user\"",
            Key::Crate => "crate = \"::transactional\"",
        }
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> Result<Self> {
        let mut args = Args::default();
        let mut errors = Errors::default();
        let mut seen = Vec::new();
        let syntax = parse_options(input, &mut args, &mut seen, &mut errors);
        errors.ok(syntax);
        errors.finish(args)
    }
}

fn parse_options(
    input: ParseStream,
    args: &mut Args,
    seen: &mut Vec<Key>,
    errors: &mut Errors,
) -> Result<()> {
    while !input.is_empty() {
        match parse_key(input)? {
            Ok((key, span)) => {
                let value = if input.peek(Token![=]) {
                    input.parse::<Token![=]>()?;
                    Some(input.parse::<Expr>()?)
                } else {
                    None
                };
                errors.ok(once(seen, key, span));
                errors.ok(args.set(key, span, value));
            }
            Err(unknown) => {
                errors.push(unknown);
                skip_to_comma(input)?;
            }
        }
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            return Err(input.error("expected `,` between options"));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

/// Rejects a repeated option: the one place that check is made.
fn once(seen: &mut Vec<Key>, key: Key, span: Span) -> Result<()> {
    if seen.contains(&key) {
        let message = format!("duplicate option `{}`; give each option once", key.name());
        return Err(Error::new(span, message));
    }
    seen.push(key);
    Ok(())
}

/// The next option's key. The outer `Err` is a syntax error that ends the parse; the inner one
/// an unknown option, after which parsing goes on at the next `,`.
fn parse_key(input: ParseStream) -> Result<std::result::Result<(Key, Span), Error>> {
    let lookahead = input.lookahead1();
    let key = if lookahead.peek(kw::db) {
        (Key::Db, input.parse::<kw::db>()?.span)
    } else if lookahead.peek(kw::propagation) {
        (Key::Propagation, input.parse::<kw::propagation>()?.span)
    } else if lookahead.peek(kw::begin) {
        (Key::Begin, input.parse::<kw::begin>()?.span)
    } else if lookahead.peek(kw::isolation) {
        (Key::Isolation, input.parse::<kw::isolation>()?.span)
    } else if lookahead.peek(kw::read_only) {
        (Key::ReadOnly, input.parse::<kw::read_only>()?.span)
    } else if lookahead.peek(kw::retries) {
        (Key::Retries, input.parse::<kw::retries>()?.span)
    } else if lookahead.peek(kw::timeout) {
        (Key::Timeout, input.parse::<kw::timeout>()?.span)
    } else if lookahead.peek(kw::name) {
        (Key::Name, input.parse::<kw::name>()?.span)
    } else if lookahead.peek(Token![crate]) {
        (Key::Crate, input.parse::<Token![crate]>()?.span)
    } else {
        return unknown_option(input, lookahead).map(Err);
    };
    Ok(Ok(key))
}

/// An identifier that is not an option becomes an "unknown option" error, and a bare value
/// (`"join"`) an error naming its option; anything else is a syntax error listing the options.
fn unknown_option(input: ParseStream, lookahead: Lookahead1) -> Result<Error> {
    if input.peek(LitStr) {
        let lit = input.fork().parse::<LitStr>()?;
        if let Some(option) = value::option_taking(&lit.value()) {
            input.parse::<LitStr>()?;
            let message = format!("expected `{option} = {:?}`", lit.value());
            return Ok(Error::new(lit.span(), message));
        }
    }
    if !input.peek(Ident::peek_any) {
        return Err(lookahead.error());
    }
    let ident = input.call(Ident::parse_any)?;
    let text = ident.to_string();
    let names = || Key::ALL.iter().map(|key| key.name());
    let message = match value::similar(&text, names()) {
        Some(name) => format!("unknown option `{text}`; did you mean `{name}`?"),
        None => format!(
            "unknown option `{text}`; the options are {}",
            value::list(names().map(|name| format!("`{name}`")))
        ),
    };
    Ok(Error::new(ident.span(), message))
}

/// Passes over the rest of an unknown option (`= value`) up to the next `,`.
fn skip_to_comma(input: ParseStream) -> Result<()> {
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tree, next)) = rest.token_tree() {
            if matches!(&tree, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

impl Args {
    /// Checks `value` for `key` and stores it; a value is optional only for `read_only`.
    fn set(&mut self, key: Key, span: Span, value: Option<Expr>) -> Result<()> {
        fn opt<T>(key: Span, value: T) -> Option<Opt<T>> {
            Some(Opt { key, value })
        }
        let Some(expr) = value else {
            if key == Key::ReadOnly {
                self.read_only = opt(span, true);
                return Ok(());
            }
            let message = format!(
                "the `{}` option needs a value: `{}`",
                key.name(),
                key.usage()
            );
            return Err(Error::new(span, message));
        };
        match key {
            Key::Db => self.db = opt(span, expr),
            Key::Propagation => self.propagation = opt(span, value::choice(&expr)?),
            Key::Begin => self.begin = opt(span, value::choice(&expr)?),
            Key::Isolation => self.isolation = opt(span, value::choice(&expr)?),
            Key::ReadOnly => self.read_only = opt(span, value::flag(&expr, "read_only")?),
            Key::Retries => self.retries = opt(span, value::retries(&expr)?),
            Key::Timeout => self.timeout = opt(span, value::timeout(&expr)?),
            Key::Name => self.name = opt(span, value::name(&expr)?),
            Key::Crate => self.krate = opt(span, value::crate_path(&expr)?),
        }
        Ok(())
    }
}
