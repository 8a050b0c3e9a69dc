//! The tokens of the rewritten fn, and errors found on the fn.

use quote::quote;

use super::expand;

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
    assert!(out.contains(". retries (2u32) , || async {"), "{out}");
    // The error is classified by its type, named through the alias.
    assert!(
        out.contains(
            "| __transactional_err : & < io :: Result < () > as :: transactional :: __private :: IsResult > :: Err |"
        ),
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
fn rewrites_spawn_local_calls_and_paths() {
    let out = expand(
        quote!(),
        quote!(
            async fn f() -> Result<(), E> {
                tokio::task::spawn_local(a());
                ::tokio::task::spawn_local(b());
                let _ = jobs.into_iter().map(tokio::task::spawn_local);
                tokio::spawn_local(c());
                local.spawn_local(d());
                fn inner() {
                    tokio::task::spawn_local(e());
                }
                Ok(())
            }
        ),
    );
    assert!(
        out.contains(":: transactional :: __private :: spawn_local (a ())"),
        "{out}"
    );
    assert!(
        out.contains(":: transactional :: __private :: spawn_local (b ())"),
        "{out}"
    );
    assert!(
        out.contains("map (:: transactional :: __private :: spawn_local)"),
        "{out}"
    );
    // Not tokio's spawn_local: `tokio::spawn_local` does not exist, a method is a method.
    assert!(out.contains("tokio :: spawn_local (c ())"), "{out}");
    assert!(out.contains("local . spawn_local (d ())"), "{out}");
    assert!(
        out.contains("fn inner () { tokio :: task :: spawn_local (e ()) ; }"),
        "{out}"
    );
}

#[test]
fn crate_path_applies_to_spawn_local() {
    let out = expand(
        quote!(crate = "my::tx"),
        quote!(
            async fn f() -> Result<(), E> {
                tokio::task::spawn_local(async {});
                Ok(())
            }
        ),
    );
    assert!(
        out.contains("my :: tx :: __private :: spawn_local (async { })"),
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
    assert!(out.contains(". retries (2u32) , || async {"), "{out}");
    assert!(out.contains("| __transactional_err : & Error |"), "{out}");
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
