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
        "use :: transactional :: __private as __transactional_private ;",
        // The arguments stay in the fn's future; the body borrows them uniquely.
        "# [allow (unused_mut)] let mut db = db ; # [allow (unused_mut)] let mut x = x ;",
        "return __transactional_private :: TxResult :: finish (__transactional_private :: TxResult :: run (__transactional_private :: Atomic :: new ()",
        ". db (__transactional_private :: database (& (db)))",
        ". propagation (__transactional_private :: Propagation :: Join)",
        ". timeout (__transactional_private :: Duration :: from_nanos (1000000000u64))",
        // Only `x` is mentioned by the body; `db` is used by the builder, outside it.
        ". name (\"load\") , async { let _ = & mut x ; # [allow",
        "let __transactional_ret : Result < u32 , MyError > = loop { } ;",
        "Ok (x) }) . await) ;",
    ] {
        assert!(out.contains(part), "missing {part:?} in\n{out}");
    }
    assert!(!out.contains("compile_error"), "{out}");
}

#[test]
fn expands_retries_to_a_loop() {
    let out = expand(
        quote!(retries = 2),
        quote!(
            async fn f() -> io::Result<()> {
                Ok(())
            }
        ),
    );
    for part in [
        "let mut __transactional_retry = __transactional_private :: Retry :: new (",
        ". retries (2u32)) ; loop {",
        "TxResult :: attempt (& mut __transactional_retry , async {",
        "{ break __transactional_raw ; }",
    ] {
        assert!(out.contains(part), "missing {part:?} in\n{out}");
    }
    // The error is classified by its type, named through the alias.
    assert!(
        out.contains(
            "| __transactional_err : & < io :: Result < () > as __transactional_private :: TxResult > :: Err |"
        ),
        "{out}"
    );
}

#[test]
fn leading_items_come_first() {
    let out = expand(
        quote!(),
        quote!(
            async fn f() -> Result<(), E> {
                use std::fmt::Write;
                const N: u32 = 1;
                let x = N;
                fn later() {}
                Ok(())
            }
        ),
    );
    let items = "use std :: fmt :: Write ; const N : u32 = 1 ; # [allow (unused_imports)]";
    assert!(!out.contains(items), "{out}");
    let before = "as __transactional_private ; use std :: fmt :: Write ; const N : u32 = 1 ; # [allow (clippy :: needless_return)] return";
    assert!(out.contains(before), "{out}");
    // An item after a statement stays where it is.
    assert!(out.contains("let x = N ; fn later () { }"), "{out}");
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
    // The path is written once, in the probe import; everything else goes through it.
    assert!(
        out.contains("use my :: tx as __transactional_crate ;"),
        "{out}"
    );
    assert!(
        out.contains("use __transactional_crate :: __private as __transactional_private ;"),
        "{out}"
    );
    assert!(
        out.contains("__transactional_private :: spawn (async { })"),
        "{out}"
    );
    assert!(out.contains("__transactional_private :: Duration"), "{out}");
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
    assert!(
        out.contains("__transactional_private :: spawn (a ())"),
        "{out}"
    );
    assert!(
        out.contains("let _ = __transactional_private :: spawn ;"),
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
        out.contains("__transactional_private :: spawn_local (a ())"),
        "{out}"
    );
    assert!(
        out.contains("__transactional_private :: spawn_local (b ())"),
        "{out}"
    );
    assert!(
        out.contains("map (__transactional_private :: spawn_local)"),
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
        out.contains("__transactional_private :: spawn_local (async { })"),
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
        "let __self = self ; let key = key ; # [allow (unused_imports)] use :: transactional :: __private";
    assert!(out.contains(bindings), "{out}");
    // The prologue's bindings are the arguments the body borrows.
    assert!(
        out.contains("async { let _ = & mut key ; # [allow"),
        "{out}"
    );
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

#[test]
fn tokio_test_above_is_refused() {
    // What `#[tokio::test]` makes of `async fn t() -> Result<(), E>` above `#[transactional]`.
    let out = expand(
        quote!(),
        quote!(
            #[::core::prelude::v1::test]
            fn t() -> Result<(), E> {
                let body = async { Ok(()) };
                return tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("Failed building the Runtime")
                    .block_on(body);
            }
        ),
    );
    assert!(
        out.contains("put `#[transactional]` above `#[tokio::test]`"),
        "{out}"
    );
    assert!(!out.contains("add `async`"), "{out}");
}

#[test]
fn applied_twice_is_refused() {
    let out = expand(
        quote!(),
        quote!(
            #[transactional(name = "f")]
            async fn f() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(out.contains("is applied twice"), "{out}");
}

#[test]
fn any_path_may_be_a_result_alias() {
    for ty in [quote!(Fallible<u32>), quote!(SearchResult)] {
        let out = expand(quote!(), quote!(async fn f() -> #ty { todo!() }));
        assert!(!out.contains("compile_error"), "{out}");
    }
    for ty in [quote!(u32), quote!(Option<u32>), quote!((u32, E))] {
        let out = expand(quote!(), quote!(async fn f() -> #ty { todo!() }));
        assert!(out.contains("must return a `Result`"), "{out}");
    }
}

#[test]
fn retries_refuses_only_visible_writes_through_mut_references() {
    let refused = |args: TokenStream, body: TokenStream| {
        let out = expand(
            quote!(retries = 1),
            quote!(async fn f(#args) -> Result<(), E> { #body Ok(()) }),
        );
        out.contains("would carry over into the next")
    };
    use proc_macro2::TokenStream;
    assert!(!refused(quote!(x: &mut Vec<u8>), quote!(let _ = x.len();)));
    assert!(!refused(quote!(x: &mut u8), quote!(let _ = *x == 1;)));
    assert!(refused(quote!(x: &mut u8), quote!(*x += 1;)));
    assert!(refused(quote!(x: &mut S), quote!(x.a.b = 1;)));
    assert!(refused(quote!(x: &mut S), quote!(take(&mut x.a);)));
    assert!(refused(quote!((mut a, b): (u8, u8)), quote!(a += b;)));
    assert!(!refused(quote!((a, b): (u8, u8)), quote!(let _ = a + b;)));
}

#[test]
fn the_name_defaults_to_the_fn_name() {
    let out = expand(
        quote!(),
        quote!(
            async fn r#load() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(out.contains(". name (\"load\")"), "{out}");
    let out = expand(
        quote!(name = "other"),
        quote!(
            async fn load() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(
        out.contains(". name (\"other\")") && !out.contains("\"load\""),
        "{out}"
    );
}

#[test]
fn every_argument_is_redeclared_and_only_the_mentioned_ones_borrowed() {
    let out = expand(
        quote!(),
        quote!(
            async fn f(a: A, (b, c): (B, C), unused: D) -> Result<(), E> {
                a.go(b, c)
            }
        ),
    );
    let rebind = "let mut a = a ; # [allow (unused_mut)] let mut b = b ; # [allow (unused_mut)] let mut c = c ; # [allow (unused_mut)] let mut unused = unused ;";
    assert!(out.contains(rebind), "{out}");
    assert!(
        out.contains("async { let _ = & mut a ; let _ = & mut b ; let _ = & mut c ; # [allow"),
        "{out}"
    );
    // Left unused, so that rustc still says so.
    assert!(!out.contains("& mut unused"), "{out}");
}
