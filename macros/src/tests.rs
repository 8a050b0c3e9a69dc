//! Unit tests of each step on token streams; `ui-tests/` checks what the user sees.

use proc_macro2::TokenStream;
use quote::quote;

use crate::args::Args;
use crate::value::{self, Begin, Isolation, Propagation};

fn args(tokens: TokenStream) -> Args {
    syn::parse2(tokens).unwrap_or_else(|error| panic!("{error}"))
}

fn error(tokens: TokenStream) -> String {
    match syn::parse2::<Args>(tokens) {
        Ok(_) => panic!("parsed"),
        Err(error) => error
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn expand(args: TokenStream, item: TokenStream) -> String {
    crate::expand::transactional(args, item).to_string()
}

#[test]
fn parses_every_option() {
    let args = args(quote! {
        db = self.db, propagation = "requires_new", begin = "exclusive",
        isolation = "repeatable_read", read_only, retries = 5, timeout = "2s",
        name = "load_user", crate = "::facade::transactional",
    });
    assert!(args.db.is_some());
    assert_eq!(args.propagation.unwrap().value, Propagation::RequiresNew);
    assert_eq!(args.begin.unwrap().value, Begin::Exclusive);
    assert_eq!(args.isolation.unwrap().value, Isolation::RepeatableRead);
    assert!(args.read_only.unwrap().value);
    assert_eq!(args.retries.unwrap().value, 5);
    assert_eq!(args.timeout.unwrap().value, 2_000_000_000);
    assert_eq!(args.name.unwrap().value.value(), "load_user");
    let krate = args.krate.unwrap().value;
    assert_eq!(quote!(#krate).to_string(), ":: facade :: transactional");
}

#[test]
fn empty_and_trailing_comma() {
    assert!(args(quote!()).db.is_none());
    assert!(!args(quote!(read_only = false,)).read_only.unwrap().value);
}

#[test]
fn durations() {
    assert_eq!(value::parse_duration("1500us"), Ok(1_500_000));
    assert_eq!(value::parse_duration("250ms"), Ok(250_000_000));
    assert_eq!(value::parse_duration("1m"), Ok(60_000_000_000));
    assert_eq!(value::parse_duration("1_000ns"), Ok(1_000));
    for bad in [
        "",
        "2",
        "s",
        "2 s",
        "1.5s",
        "2sec",
        "-1s",
        "0s",
        "99999999999h",
    ] {
        assert!(value::parse_duration(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn suggestions() {
    let keys = ["db", "read_only", "retries", "timeout"];
    assert_eq!(
        value::similar("readonly", keys.into_iter()),
        Some("read_only")
    );
    assert_eq!(value::similar("retry", keys.into_iter()), Some("retries"));
    assert_eq!(
        value::similar("max_retries", keys.into_iter()),
        Some("retries")
    );
    assert_eq!(
        value::similar("Read-Only", keys.into_iter()),
        Some("read_only")
    );
    assert_eq!(value::similar("savepoint", keys.into_iter()), None);
    assert_eq!(value::similar("dbname", keys.into_iter()), None);
    assert_eq!(
        value::list(["`a`", "`b`", "`c`"].map(String::from).into_iter()),
        "`a`, `b` or `c`"
    );
}

#[test]
fn collects_independent_errors() {
    let message = error(quote!(
        propagation = "up",
        timeout = "soon",
        name = "a b",
        retries = 0
    ));
    assert_eq!(message.lines().count(), 4, "{message}");
    assert!(message.contains("unknown propagation \"up\""));
}

#[test]
fn reports_duplicates_once_per_repeat() {
    let message = error(quote!(db = a, db = b, read_only, read_only));
    assert!(message.contains("duplicate option `db`"), "{message}");
    assert!(
        message.contains("duplicate option `read_only`"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 2, "{message}");
}

#[test]
fn unknown_options_keep_parsing() {
    let message = error(quote!(readonly, foo = 1 + 2, retries = "3"));
    assert!(message.contains("did you mean `read_only`?"), "{message}");
    assert!(
        message.contains("unknown option `foo`; the options are `db`"),
        "{message}"
    );
    assert!(
        message.contains("`retries` takes a positive integer"),
        "{message}"
    );
}

#[test]
fn a_bare_value_gets_its_option() {
    assert_eq!(error(quote!("join")), "expected `propagation = \"join\"`");
    assert_eq!(
        error(quote!("2s", read_only)),
        "expected `timeout = \"2s\"`"
    );
    assert!(error(quote!("x")).starts_with("expected one of: `db`"));
}

#[test]
fn wrong_value_types_suggest_quotes() {
    assert!(error(quote!(propagation = join)).contains("`propagation = \"join\"`"));
    assert!(error(quote!(timeout = 2s)).contains("`timeout = \"2s\"`"));
    assert!(error(quote!(name = load)).contains("`name = \"load\"`"));
    assert!(error(quote!(isolation = foo)).contains("`isolation = \"read_committed\"`"));
}

#[test]
fn expands_to_the_builder() {
    let out = expand(
        quote!(db = db, propagation = "join", timeout = "1s", name = "load"),
        quote! {
            /// Docs.
            pub async fn f(db: &Database, x: u32) -> Result<u32, MyError> { Ok(x) }
        },
    );
    for part in [
        "pub async fn f (db : & Database , x : u32) -> Result < u32 , MyError >",
        ":: transactional :: __private :: assert_error_type :: < MyError > ()",
        ":: transactional :: __private :: Atomic :: new ()",
        ". db (:: transactional :: __private :: database (& (db)))",
        ". propagation (:: transactional :: __private :: Propagation :: Join)",
        ". timeout (:: transactional :: __private :: Duration :: from_nanos (1000000000u64))",
        ". name (\"load\")",
        ". run (async move {",
        "let __transactional_ret : Result < u32 , MyError > = loop { } ;",
        "Ok (x) }) . await",
    ] {
        assert!(out.contains(part), "missing {part:?} in\n{out}");
    }
    assert!(!out.contains("compile_error"), "{out}");
}

#[test]
fn expands_retries_to_a_closure() {
    let out = expand(
        quote!(retries = 2),
        quote!(
            async fn f() -> io::Result<()> {
                Ok(())
            }
        ),
    );
    assert!(
        out.contains(". retries (2u32) . run_retrying (|| async {"),
        "{out}"
    );
    // The error type of an alias is not written, so it is not checked separately.
    assert!(!out.contains("assert_error_type"), "{out}");
}

#[test]
fn replaces_impl_trait_in_the_pinned_type() {
    let out = expand(
        quote!(),
        quote!(
            async fn f() -> Result<impl Display, E> {
                Ok(1)
            }
        ),
    );
    assert!(
        out.contains("__transactional_ret : Result < _ , E >"),
        "{out}"
    );
}

#[test]
fn crate_path_replaces_every_path() {
    let out = expand(
        quote!(crate = "my::tx", timeout = "1ms"),
        quote!(
            async fn f() -> Result<(), E> {
                tokio::spawn(async {});
                Ok(())
            }
        ),
    );
    assert!(!out.contains(":: transactional"), "{out}");
    assert!(
        out.contains("my :: tx :: __private :: spawn (async { })"),
        "{out}"
    );
    assert!(out.contains("my :: tx :: __private :: Duration"), "{out}");
}

#[test]
fn rewrites_spawn_but_not_in_nested_items() {
    let out = expand(
        quote!(),
        quote!(
            async fn f() -> Result<(), E> {
                ::tokio::task::spawn(a());
                let _ = tokio::spawn;
                tokio::task::spawn_blocking(b);
                fn inner() {
                    tokio::spawn(c());
                }
                Ok(())
            }
        ),
    );
    assert!(out.contains("__private :: spawn (a ())"), "{out}");
    assert!(
        out.contains("let _ = :: transactional :: __private :: spawn ;"),
        "{out}"
    );
    assert!(out.contains("tokio :: task :: spawn_blocking (b)"), "{out}");
    assert!(
        out.contains("fn inner () { tokio :: spawn (c ()) ; }"),
        "{out}"
    );
}

#[test]
fn wraps_the_future_of_an_async_trait_method() {
    let out = expand(
        quote!(retries = 2),
        quote! {
            fn get<'life0, 'async_trait>(&'life0 self, key: String) -> ::core::pin::Pin<Box<
                dyn ::core::future::Future<Output = Result<usize, Error>> + ::core::marker::Send + 'async_trait
            >> {
                Box::pin(async move {
                    if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<Result<usize, Error>> {
                        return __ret;
                    }
                    let __self = self;
                    let key = key;
                    let __ret: Result<usize, Error> = { Ok(key.len()) };
                    __ret
                })
            }
        },
    );
    let bindings =
        "let __self = self ; let key = key ; :: transactional :: __private :: assert_error_type";
    assert!(out.contains(bindings), "{out}");
    assert!(out.contains(". run_retrying (|| async {"), "{out}");
    assert!(!out.contains("compile_error"), "{out}");
}

#[test]
fn on_error_emits_the_item_unchanged() {
    let item = quote!(
        fn f(db: &Database) -> u32 {
            1
        }
    );
    let out = expand(quote!(db = db, retries = 0), item.clone());
    assert!(
        out.starts_with(&format!("# [allow (unused_variables)] {item}")),
        "{out}"
    );
    assert_eq!(out.matches("compile_error").count(), 3, "{out}");
}

#[test]
fn conflicting_options() {
    let out = expand(
        quote!(
            propagation = "mandatory",
            isolation = "serializable",
            read_only,
            begin = "immediate"
        ),
        quote!(
            async fn f() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(
        out.contains("`isolation` has no effect with `propagation = \\\"mandatory\\\"`"),
        "{out}"
    );
    assert!(out.contains("`begin` has no effect"), "{out}");
    assert!(
        out.contains("`read_only` transactions never take the write lock"),
        "{out}"
    );
}
