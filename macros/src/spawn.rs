//! Rewrites tokio's spawns in the body to the ones that carry the current transaction into
//! the new task.
//!
//! ```text
//! // Input
//! tokio::spawn(work(1));
//! let handles: Vec<_> = jobs.into_iter().map(::tokio::task::spawn).collect();
//! tokio::task::spawn_local::<_>(work(2));
//! tokio::join!(tokio::spawn(work(3)), other());
//! use tokio::spawn as go;
//! tokio::task::JoinSet::spawn(&mut set, work(4));
//! // Output
//! ::transactional::__private::spawn(work(1));
//! let handles: Vec<_> = jobs.into_iter().map(::transactional::__private::spawn).collect();
//! ::transactional::__private::spawn_local::<_>(work(2));
//! tokio::join!(::transactional::__private::spawn(work(3)), other());
//! use ::transactional::__private::spawn as go;
//! tokio::task::JoinSet::spawn(&mut set, ::transactional::__private::carry(work(4)));
//! ```
//!
//! What is rewritten, everywhere in the body except in nested items (fns, impls, modules,
//! `macro_rules!`: they run wherever they are called from, not as part of this body):
//!
//! - Every expression path `tokio::spawn`, `tokio::task::spawn` or `tokio::task::spawn_local`
//!   (with or without a leading `::`, with or without turbofish arguments), so calls and
//!   paths passed as values both carry the transaction. The replacements have the same
//!   generic parameters and signature, so they fit wherever tokio's did.
//! - The same token sequences inside macro invocations (`tokio::join!`, `select!`, `vec!`,
//!   the user's own macros), since the attribute cannot parse what a macro's tokens mean;
//!   the spans are kept. `stringify!` and `concat!` are left alone: there the tokens are
//!   text, and rewriting them would change it.
//! - A `use` of one of those three fns written in the body (`use tokio::spawn;`,
//!   `use tokio::spawn as go;`, `use tokio::task::{self, spawn_local};`) imports the
//!   carrying fn under the same name instead, for the whole block it is in.
//! - Calls of tokio's other spawners by their full path, whose future argument is wrapped in
//!   `carry`: `tokio::task::JoinSet::spawn` (also `spawn_on`, `spawn_local`,
//!   `spawn_local_on`), `tokio::task::LocalSet::spawn_local`, `tokio::runtime::Handle::spawn`
//!   and `tokio::runtime::Runtime::spawn`, as in `tokio::task::JoinSet::spawn(&mut set, f)`.
//!
//! What is not, and why:
//!
//! - Method calls such as `set.spawn(fut)` or `handle.spawn(fut)`: the attribute sees no
//!   types, and a method named `spawn` on another type may take a closure, a concrete future
//!   type such as `BoxFuture` or an argument whose type is inferred from the parameter;
//!   wrapping its argument would break code that compiles. Write
//!   `set.spawn(transactional::carry(fut))`.
//! - A `JoinSet`, `Handle` or `LocalSet` named without `tokio::` (`JoinSet::spawn(..)` after a
//!   `use`): the short name may be any type's, with the same risk.
//! - A `spawn` imported outside the fn (`use tokio::spawn;` at the top of the module), glob
//!   imports (`use tokio::task::*;`) and renamed modules (`use tokio::task as t;`): the
//!   attribute sees only the fn, and an explicit import added next to a glob would clash
//!   with a local item of the same name. Call `transactional::spawn` there.
//! - Spawns that a macro expands to (`my_spawn!(fut)` defined outside the fn): the attribute
//!   sees a macro's arguments, not its expansion.
//! - Spawns in fns the body calls: they are other fns. They run outside the transaction
//!   unless they use `transactional::spawn` or `transactional::carry`.

use proc_macro2::{Group, Spacing, Span, TokenStream, TokenTree};
use quote::quote_spanned;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Block, Expr, ExprCall, ExprPath, Ident, Item, ItemUse, Macro, Path, PathArguments, Stmt,
    UseTree,
};

/// `private` is the path of the runtime's `__private` module.
pub fn rewrite(body: &mut Block, private: &TokenStream) {
    Spawns { private }.visit_block_mut(body);
}

struct Spawns<'a> {
    private: &'a TokenStream,
}

impl VisitMut for Spawns<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Path(ExprPath {
                qself: None, path, ..
            }) => {
                if let Some((spawn, arguments)) = tokio_spawn(path) {
                    let private = respan(self.private, path.span());
                    let spawn = quote_spanned!(path.span()=> #private::#spawn #arguments);
                    *path = syn::parse2(spawn).expect("`<crate>::__private::<spawn>` is a path");
                    return;
                }
            }
            Expr::Call(call) => self.carry_future_argument(call),
            _ => {}
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    fn visit_block_mut(&mut self, block: &mut Block) {
        let stmts = std::mem::take(&mut block.stmts);
        for stmt in stmts {
            match stmt {
                Stmt::Item(Item::Use(item)) => {
                    block
                        .stmts
                        .extend(self.rewrite_use(item).into_iter().map(Stmt::Item));
                }
                stmt => block.stmts.push(stmt),
            }
        }
        visit_mut::visit_block_mut(self, block);
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        if mac.path.get_ident().is_some_and(is_text_macro) {
            return;
        }
        mac.tokens = rewrite_tokens(std::mem::take(&mut mac.tokens), self.private);
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}
}

impl Spawns<'_> {
    /// `tokio::task::JoinSet::spawn(&mut set, fut)` and tokio's other spawners called by
    /// their full path: the future (the argument after the receiver) goes into `carry`.
    fn carry_future_argument(&self, call: &mut ExprCall) {
        let Expr::Path(ExprPath {
            qself: None, path, ..
        }) = &*call.func
        else {
            return;
        };
        if !is_tokio_spawner_method(path) || call.args.len() < 2 {
            return;
        }
        let future = &mut call.args[1];
        let span = future.span();
        let private = respan(self.private, span);
        let carried = quote_spanned!(span=> #private::carry(#future));
        *future = syn::parse2(carried).expect("`<crate>::__private::carry(<expr>)` is a call");
    }

    /// `use` of tokio's spawns in the body: each one becomes a `use` of the carrying spawn
    /// under the same name (the rest of the tree is kept as written, and left out when
    /// nothing else remains in it).
    fn rewrite_use(&self, mut item: ItemUse) -> Vec<Item> {
        let mut found = Vec::new();
        let rest = take_spawns(item.tree.clone(), &mut Vec::new(), &mut found);
        if found.is_empty() {
            return vec![Item::Use(item)];
        }
        let mut items = Vec::new();
        for (spawn, name) in found {
            let (attrs, vis) = (&item.attrs, &item.vis);
            let private = respan(self.private, name.span());
            let spawn = Ident::new(spawn, name.span());
            let import =
                quote_spanned!(name.span()=> #(#attrs)* #vis use #private::#spawn as #name;);
            items.push(syn::parse2(import).expect("a `use` of the carrying spawn"));
        }
        if let Some(rest) = rest {
            item.tree = rest;
            items.insert(0, Item::Use(item));
        }
        items
    }
}

/// Removes from `tree` (under the path `prefix`) every import of one of tokio's spawns,
/// recording which carrying spawn replaces it and the name it bound. `None` when nothing of
/// the tree remains.
fn take_spawns(
    tree: UseTree,
    prefix: &mut Vec<String>,
    found: &mut Vec<(&'static str, Ident)>,
) -> Option<UseTree> {
    match tree {
        UseTree::Path(mut path) => {
            prefix.push(path.ident.to_string());
            let rest = take_spawns(*path.tree, prefix, found);
            prefix.pop();
            path.tree = Box::new(rest?);
            Some(UseTree::Path(path))
        }
        UseTree::Name(name) => match carrying_spawn(prefix, &name.ident) {
            Some(spawn) => {
                found.push((spawn, name.ident));
                None
            }
            None => Some(UseTree::Name(name)),
        },
        UseTree::Rename(rename) => match carrying_spawn(prefix, &rename.ident) {
            Some(spawn) => {
                found.push((spawn, rename.rename));
                None
            }
            None => Some(UseTree::Rename(rename)),
        },
        UseTree::Glob(glob) => Some(UseTree::Glob(glob)),
        UseTree::Group(mut group) => {
            let items: Punctuated<UseTree, syn::Token![,]> = std::mem::take(&mut group.items)
                .into_iter()
                .filter_map(|tree| take_spawns(tree, prefix, found))
                .collect();
            if items.is_empty() {
                return None;
            }
            group.items = items;
            Some(UseTree::Group(group))
        }
    }
}

/// The carrying spawn that replaces the fn `prefix::name`, if it is one of tokio's spawns.
fn carrying_spawn(prefix: &[String], name: &Ident) -> Option<&'static str> {
    let mut names: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let name = name.to_string();
    names.push(&name);
    spawn_for(&names)
}

/// The carrying spawn that replaces tokio's spawn at `names`.
fn spawn_for(names: &[&str]) -> Option<&'static str> {
    match names {
        ["tokio", "spawn"] | ["tokio", "task", "spawn"] => Some("spawn"),
        ["tokio", "task", "spawn_local"] => Some("spawn_local"),
        _ => None,
    }
}

/// The carrying spawn that replaces `path`, if `path` is one of tokio's spawns, and the
/// turbofish arguments to keep on it.
fn tokio_spawn(path: &Path) -> Option<(Ident, PathArguments)> {
    let last = path.segments.last()?;
    // Turbofish arguments only on the fn itself: `tokio::spawn::<F>`.
    let init = &mut path.segments.iter().take(path.segments.len() - 1);
    if init.any(|segment| !segment.arguments.is_none()) {
        return None;
    }
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let spawn = spawn_for(&names)?;
    Some((Ident::new(spawn, path.span()), last.arguments.clone()))
}

/// Whether `path` is one of tokio's spawning methods, named by its full path, whose second
/// argument is the future to run.
fn is_tokio_spawner_method(path: &Path) -> bool {
    // Generic arguments on the type (`JoinSet::<u32>::spawn`) do not change which fn it is.
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    matches!(
        names[..],
        [
            "tokio",
            "task",
            "JoinSet",
            "spawn" | "spawn_on" | "spawn_local" | "spawn_local_on"
        ] | ["tokio", "task", "LocalSet", "spawn_local"]
            | ["tokio", "runtime", "Handle" | "Runtime", "spawn"]
    )
}

/// Rewrites the token sequences `[::] tokio :: spawn`, `[::] tokio :: task :: spawn` and
/// `[::] tokio :: task :: spawn_local` in a macro's tokens, at any depth of delimiters,
/// keeping the span of what they replace. Turbofish arguments that follow stay as written.
fn rewrite_tokens(tokens: TokenStream, private: &TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = TokenStream::new();
    let mut at = 0;
    while at < tokens.len() {
        if let [TokenTree::Ident(name), TokenTree::Punct(bang), TokenTree::Group(_), ..] =
            &tokens[at..]
        {
            if bang.as_char() == '!' && is_text_macro(name) {
                out.extend(tokens[at..at + 3].iter().cloned());
                at += 3;
                continue;
            }
        }
        if let Some((len, spawn, span)) = spawn_path_at(&tokens, at) {
            let spawn = Ident::new(spawn, span);
            let private = respan(private, span);
            out.extend(quote_spanned!(span=> #private::#spawn));
            at += len;
            continue;
        }
        match &tokens[at] {
            TokenTree::Group(group) => {
                let mut rewritten =
                    Group::new(group.delimiter(), rewrite_tokens(group.stream(), private));
                rewritten.set_span(group.span());
                out.extend([TokenTree::Group(rewritten)]);
            }
            token => out.extend([token.clone()]),
        }
        at += 1;
    }
    out
}

/// The length of the spawn path that starts at `tokens[at]`, the carrying spawn that
/// replaces it and its span; `None` when no spawn path starts there, including when the
/// tokens there continue another path (`my::tokio::spawn`) or a metavariable (`$tokio`).
fn spawn_path_at(tokens: &[TokenTree], at: usize) -> Option<(usize, &'static str, Span)> {
    let before = &tokens[..at];
    let leading = is_path_sep(&tokens[at..]);
    let continues_a_path = match before.last() {
        Some(TokenTree::Punct(p)) if p.as_char() == '$' => true,
        // `a::tokio::spawn`: the path is `a`'s. (`::tokio::spawn` itself is matched at its
        // leading `::`, one token earlier.)
        _ if !leading => before.len() >= 2 && is_path_sep(&before[before.len() - 2..]),
        // `a ::tokio::spawn` is `a::tokio::spawn` too, unless `a` is a keyword that an
        // expression follows (`return ::tokio::spawn(..)`).
        Some(TokenTree::Ident(ident)) => !EXPRESSION_AFTER.contains(&&*ident.to_string()),
        _ => false,
    };
    if continues_a_path {
        return None;
    }
    let start = if leading { at + 2 } else { at };
    let mut names = Vec::new();
    let mut end = start;
    loop {
        let TokenTree::Ident(ident) = tokens.get(end)? else {
            return None;
        };
        names.push(ident.to_string());
        end += 1;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Some(spawn) = spawn_for(&names) {
            let span = tokens[at].span();
            return Some((end - at, spawn, span));
        }
        if names.len() >= 3 || !is_path_sep(&tokens[end..]) {
            return None;
        }
        end += 2;
    }
}

/// `stringify!` and `concat!`, whose tokens are text: rewriting them would change it.
fn is_text_macro(name: &Ident) -> bool {
    name == "stringify" || name == "concat"
}

/// Keywords that an expression may follow, so that a `::` after them starts a path.
const EXPRESSION_AFTER: &[&str] = &[
    "return", "break", "in", "match", "if", "while", "else", "yield", "move", "mut",
];

/// `tokens` (the runtime's path) with the span of the code it replaces, so that an error
/// about the call points at the user's `tokio::spawn`, not at the attribute.
fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}

/// Whether `tokens` starts with `::`.
fn is_path_sep(tokens: &[TokenTree]) -> bool {
    matches!(
        tokens,
        [TokenTree::Punct(a), TokenTree::Punct(b), ..]
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
    )
}
