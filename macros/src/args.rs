//! Parsing `#[transactional(...)]`'s arguments into a typed [`Args`].
//!
//! Syntax errors (a token that is not an option, a missing `,`) stop the parse; errors in a
//! value (an unknown propagation, a bad duration) and repeated or unknown options are
//! collected so the user sees all of them at once.

use proc_macro2::{Span, TokenTree};
use syn::ext::IdentExt;
use syn::parse::discouraged::Speculative;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Expr, Ident, LitStr, Path, Result, Token};

use crate::errors::Errors;
use crate::value::{self, Begin, Isolation, Propagation};

/// The one registry of options: each line gives the option's variant in [`Key`], its name,
/// how it is written (for "needs a value" messages), its field in [`Args`] with the value's
/// type, and the check that turns the written expression into that value. A new option is
/// one line here, plus its combinations in `validate::options` and its builder call in
/// `expand::builder`.
macro_rules! options {
    ($($key:ident $name:literal $usage:literal => $field:ident: $ty:ty = $check:expr;)*) => {
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub enum Key {
            $($key,)*
        }

        impl Key {
            pub const ALL: &'static [Key] = &[$(Key::$key),*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Key::$key => $name,)*
                }
            }

            /// How the option is written, for "needs a value" messages.
            fn usage(self) -> &'static str {
                match self {
                    $(Key::$key => $usage,)*
                }
            }

            fn from_name(name: &str) -> Option<Key> {
                Key::ALL.iter().copied().find(|key| key.name() == name)
            }
        }

        /// The options as written, each with the span of its key for later messages.
        #[derive(Clone, Default)]
        pub struct Args {
            $(pub $field: Option<Opt<$ty>>,)*
        }

        impl Args {
            /// Checks the value written for `key` and stores it.
            fn store(&mut self, key: Key, span: Span, expr: Expr) -> Result<()> {
                match key {
                    $(Key::$key => {
                        let check: fn(Expr) -> Result<$ty> = $check;
                        self.$field = Some(Opt { key: span, value: check(expr)? });
                    })*
                }
                Ok(())
            }
        }
    };
}

options! {
    Db "db" "db = <expression>" => db: Expr = Ok;
    Propagation "propagation" "propagation = \"nested\"" =>
        propagation: Propagation = |expr| value::choice(&expr);
    Begin "begin" "begin = \"immediate\"" => begin: Begin = |expr| value::choice(&expr);
    Isolation "isolation" "isolation = \"serializable\"" =>
        isolation: Isolation = |expr| value::choice(&expr);
    ReadOnly "read_only" "read_only" =>
        read_only: bool = |expr| value::flag(&expr, "read_only");
    Offload "offload" "offload" => offload: bool = |expr| value::flag(&expr, "offload");
    Retries "retries" "retries = 3" => retries: u32 = |expr| value::retries(&expr);
    // In nanoseconds.
    Timeout "timeout" "timeout = \"2s\"" => timeout: u64 = |expr| value::timeout(&expr);
    Name "name" "name = \"load_user\"" => name: LitStr = |expr| value::name(&expr);
    Crate "crate" "crate = \"::transactional\"" =>
        krate: Path = |expr| value::crate_path(&expr);
}

/// One option's value and the span of its key.
#[derive(Clone)]
pub struct Opt<T> {
    pub key: Span,
    pub value: T,
}

/// The options that may be written without a value, meaning `true`.
const FLAGS: [Key; 2] = [Key::ReadOnly, Key::Offload];

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
    if input.peek(Ident::peek_any) {
        let fork = input.fork();
        let ident = fork.call(Ident::parse_any)?;
        if let Some(key) = Key::from_name(&ident.to_string()) {
            input.advance_to(&fork);
            return Ok(Ok((key, ident.span())));
        }
    }
    unknown_option(input).map(Err)
}

/// An identifier that is not an option becomes an "unknown option" error, and a bare value
/// (`"join"`) an error naming its option; anything else is a syntax error listing the options.
fn unknown_option(input: ParseStream) -> Result<Error> {
    if input.peek(LitStr) {
        let lit = input.fork().parse::<LitStr>()?;
        if let Some(option) = value::option_taking(&lit.value()) {
            input.parse::<LitStr>()?;
            let message = format!("expected `{option} = {:?}`", lit.value());
            return Ok(Error::new(lit.span(), message));
        }
    }
    let names = || Key::ALL.iter().map(|key| key.name());
    if !input.peek(Ident::peek_any) {
        let message = format!(
            "expected an option: {}",
            value::list(names().map(|name| format!("`{name}`")))
        );
        return Err(input.error(message));
    }
    let ident = input.call(Ident::parse_any)?;
    let text = ident.to_string();
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
    /// Checks `value` for `key` and stores it; a value is optional only for the flags.
    fn set(&mut self, key: Key, span: Span, value: Option<Expr>) -> Result<()> {
        match value {
            Some(expr) => self.store(key, span, expr),
            None if FLAGS.contains(&key) => {
                let flag = Some(Opt {
                    key: span,
                    value: true,
                });
                match key {
                    Key::Offload => self.offload = flag,
                    _ => self.read_only = flag,
                }
                Ok(())
            }
            None => {
                let message = format!(
                    "the `{}` option needs a value: `{}`",
                    key.name(),
                    key.usage()
                );
                Err(Error::new(span, message))
            }
        }
    }
}
