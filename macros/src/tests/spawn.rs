//! The spawn rewrite on its own: a block in, the rewritten block out as a string.

use proc_macro2::TokenStream;
use quote::quote;

/// `body` rewritten with the default runtime path.
fn rewrite(body: TokenStream) -> String {
    let mut block: syn::Block = syn::parse2(quote!({ #body })).expect("a block");
    crate::spawn::rewrite(&mut block, &quote!(::transactional::__private));
    quote!(#block).to_string()
}

const SPAWN: &str = ":: transactional :: __private :: spawn";
const SPAWN_LOCAL: &str = ":: transactional :: __private :: spawn_local";

fn assert_contains(out: &str, parts: &[&str]) {
    for part in parts {
        assert!(out.contains(part), "missing {part:?} in\n{out}");
    }
}

#[test]
fn rewrites_spawn_paths_inside_macro_arguments() {
    let out = rewrite(quote! {
        let (a, b) = tokio::join!(tokio::spawn(a()), ::tokio::task::spawn(b()));
        tokio::select! {
            x = tokio::task::spawn_local(c()) => x,
            y = async { tokio::spawn(d()).await } => y,
        };
        let v = vec![tokio::spawn(e()), tokio::spawn(f())];
        my_macro!(nested [ { tokio::spawn(g()) } ]);
    });
    assert_contains(
        &out,
        &[
            &format!("tokio :: join ! ({SPAWN} (a ()) , {SPAWN} (b ()))"),
            &format!("x = {SPAWN_LOCAL} (c ()) => x"),
            &format!("y = async {{ {SPAWN} (d ()) . await }} => y"),
            &format!("vec ! [{SPAWN} (e ()) , {SPAWN} (f ())]"),
            &format!("my_macro ! (nested [{{ {SPAWN} (g ()) }}])"),
        ],
    );
    // The macros themselves are tokio's, as written.
    assert_contains(&out, &["tokio :: join !", "tokio :: select !"]);
}

#[test]
fn leaves_other_paths_in_macro_arguments_alone() {
    let out = rewrite(quote! {
        m!(my::tokio::spawn(a()));
        m!(x ::tokio::spawn(b()));
        m!(tokio::spawn_blocking(c), tokio::task::spawn_blocking(d), tokio::sync::spawn(e()));
        m!($tokio::spawn(f()));
        m!(return ::tokio::spawn(g()));
        println!("{}", stringify!(tokio::spawn(h())));
        concat!("tokio::spawn", stringify!(tokio::spawn));
    });
    assert_contains(
        &out,
        &[
            "m ! (my :: tokio :: spawn (a ()))",
            "m ! (x :: tokio :: spawn (b ()))",
            "m ! (tokio :: spawn_blocking (c) , tokio :: task :: spawn_blocking (d) , tokio :: sync :: spawn (e ()))",
            "m ! ($ tokio :: spawn (f ()))",
            &format!("m ! (return {SPAWN} (g ()))"),
            "stringify ! (tokio :: spawn (h ()))",
            "concat ! (\"tokio::spawn\" , stringify ! (tokio :: spawn))",
        ],
    );
}

/// Where each token of `tokens` starts (line, column), depth first.
fn starts(tokens: TokenStream) -> Vec<(usize, usize)> {
    tokens
        .into_iter()
        .flat_map(|token| {
            let start = token.span().start();
            let mut found = vec![(start.line, start.column)];
            if let proc_macro2::TokenTree::Group(group) = token {
                found.extend(starts(group.stream()));
            }
            found
        })
        .collect()
}

#[test]
fn the_rewrite_keeps_the_span_of_what_it_replaces() {
    // Parsed from text, so that every token has a line and column (call-site tokens made by
    // the rewrite would have line 1, column 0).
    let body = "{\n    m!(x, tokio::spawn(a()));\n    ::tokio::task::spawn_local(b());\n}";
    let mut block: syn::Block = syn::parse_str(body).expect("a block");
    crate::spawn::rewrite(&mut block, &quote!(::transactional::__private));
    let [syn::Stmt::Macro(mac), syn::Stmt::Expr(call, _)] = &block.stmts[..] else {
        panic!("two statements: {}", quote!(#block))
    };
    // In the macro: `::transactional::__private::spawn` all where `tokio::spawn` was
    // (line 2, column 10).
    let in_macro = starts(mac.mac.tokens.clone());
    assert_eq!(in_macro[..2], [(2, 7), (2, 8)], "{in_macro:?}");
    assert!(
        in_macro[2..11].iter().all(|&start| start == (2, 10)),
        "{in_macro:?}"
    );
    assert_eq!(in_macro[11], (2, 22), "the arguments follow: {in_macro:?}");
    // The call's path: where `::tokio` was (line 3, column 4).
    let path = quote!(#call);
    let path: Vec<_> = starts(path).into_iter().take(9).collect();
    assert!(path.iter().all(|&start| start == (3, 4)), "{path:?}");
}

#[test]
fn keeps_turbofish_arguments() {
    let out = rewrite(quote! {
        tokio::spawn::<_>(a());
        ::tokio::task::spawn_local::<Fut>(b());
        let _ = jobs.map(tokio::spawn::<Job>);
        m!(tokio::spawn::<_>(c()));
    });
    assert_contains(
        &out,
        &[
            &format!("{SPAWN} :: < _ > (a ())"),
            &format!("{SPAWN_LOCAL} :: < Fut > (b ())"),
            &format!("map ({SPAWN} :: < Job >)"),
            &format!("m ! ({SPAWN} :: < _ > (c ()))"),
        ],
    );
}

#[test]
fn a_use_of_tokio_spawn_in_the_body_imports_the_carrying_spawn() {
    let out = rewrite(quote! {
        use tokio::spawn;
        use tokio::spawn as go;
        use ::tokio::task::spawn_local as local;
        use tokio::task::{self, spawn, JoinSet};
        use tokio::{sync::Mutex, task::{spawn_local}};
        use tokio::task::spawn_blocking;
        use tokio::task::*;
        spawn(a());
        async {
            use tokio::spawn as inner;
            inner(b())
        };
    });
    assert_contains(
        &out,
        &[
            &format!("use {SPAWN} as spawn ;"),
            &format!("use {SPAWN} as go ;"),
            &format!("use {SPAWN_LOCAL} as local ;"),
            "use tokio :: task :: { self , JoinSet } ;",
            "use tokio :: { sync :: Mutex } ;",
            &format!("use {SPAWN_LOCAL} as spawn_local ;"),
            "use tokio :: task :: spawn_blocking ;",
            // A glob is left alone: an import added beside it could clash with a local item.
            "use tokio :: task :: * ;",
            // Call sites stay as written: the name now means the carrying spawn.
            "spawn (a ()) ;",
            &format!("use {SPAWN} as inner ;"),
        ],
    );
    assert!(!out.contains("use tokio :: spawn"), "{out}");
    assert!(!out.contains("tokio :: task :: { self , spawn"), "{out}");
}

#[test]
fn uses_in_nested_items_are_left_alone() {
    let out = rewrite(quote! {
        fn inner() {
            use tokio::spawn;
            m!(tokio::spawn(a()));
        }
        mod m {
            use tokio::spawn as go;
        }
        macro_rules! later {
            () => { tokio::spawn(b()) };
        }
    });
    assert_contains(
        &out,
        &[
            "fn inner () { use tokio :: spawn ; m ! (tokio :: spawn (a ())) ; }",
            "mod m { use tokio :: spawn as go ; }",
            // A macro defined in the body expands wherever it is used, like a nested fn.
            "macro_rules ! later { () => { tokio :: spawn (b ()) } ; }",
        ],
    );
}

#[test]
fn tokio_spawner_methods_by_full_path_carry_their_future() {
    let out = rewrite(quote! {
        tokio::task::JoinSet::spawn(&mut set, a());
        ::tokio::task::JoinSet::<u32>::spawn_local(&mut set, b());
        tokio::task::JoinSet::spawn_on(&mut set, c(), &handle);
        tokio::runtime::Handle::spawn(&handle, d());
        tokio::runtime::Runtime::spawn(&rt, e());
        tokio::task::LocalSet::spawn_local(&local, f());
    });
    let carry = ":: transactional :: __private :: carry";
    assert_contains(
        &out,
        &[
            &format!("tokio :: task :: JoinSet :: spawn (& mut set , {carry} (a ()))"),
            &format!(
                ":: tokio :: task :: JoinSet :: < u32 > :: spawn_local (& mut set , {carry} (b ()))"
            ),
            &format!("spawn_on (& mut set , {carry} (c ()) , & handle)"),
            &format!("tokio :: runtime :: Handle :: spawn (& handle , {carry} (d ()))"),
            &format!("tokio :: runtime :: Runtime :: spawn (& rt , {carry} (e ()))"),
            &format!("tokio :: task :: LocalSet :: spawn_local (& local , {carry} (f ()))"),
        ],
    );
}

#[test]
fn methods_and_short_type_names_are_left_alone() {
    let out = rewrite(quote! {
        set.spawn(a());
        handle.spawn(b());
        JoinSet::spawn(&mut set, c());
        Handle::spawn(&handle, d());
        my::JoinSet::spawn(&mut set, e());
    });
    assert!(!out.contains("carry"), "{out}");
}
