//! Rewrites `tokio::spawn` and `tokio::task::spawn_local` in the body to the spawns that
//! carry the current transaction into the new task.
//!
//! ```text
//! // Input
//! tokio::spawn(work(1));
//! let handles: Vec<_> = jobs.into_iter().map(::tokio::task::spawn).collect();
//! tokio::task::spawn_local(work(2));
//! // Output
//! ::transactional::__private::spawn(work(1));
//! let handles: Vec<_> = jobs.into_iter().map(::transactional::__private::spawn).collect();
//! ::transactional::__private::spawn_local(work(2));
//! ```
//!
//! Any expression path `tokio::spawn`, `tokio::task::spawn` or `tokio::task::spawn_local`
//! (with or without a leading `::`) is rewritten, so calls and paths passed as values both
//! carry the transaction. Items nested in the body (fns, impls, modules) are left alone:
//! they run wherever they are called from, not as part of this body. Paths inside macro
//! invocations and a `spawn` imported with `use` are not seen; call `transactional::spawn`
//! (or `transactional::spawn_local`) there.

use proc_macro2::TokenStream;
use quote::quote_spanned;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprPath, Item, Path};

/// `private` is the path of the runtime's `__private` module.
pub fn rewrite(body: &mut Block, private: &TokenStream) {
    Spawns { private }.visit_block_mut(body);
}

struct Spawns<'a> {
    private: &'a TokenStream,
}

impl VisitMut for Spawns<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if let Expr::Path(ExprPath {
            qself: None, path, ..
        }) = expr
        {
            if let Some(spawn) = tokio_spawn(path) {
                let private = self.private;
                let spawn = quote_spanned!(path.span()=> #private::#spawn);
                *path = syn::parse2(spawn).expect("`<crate>::__private::<spawn>` is a path");
                return;
            }
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}
}

/// The carrying spawn that replaces `path`, if `path` is one of tokio's spawns.
fn tokio_spawn(path: &Path) -> Option<syn::Ident> {
    let names: Option<Vec<String>> = path
        .segments
        .iter()
        .map(|segment| {
            segment
                .arguments
                .is_none()
                .then(|| segment.ident.to_string())
        })
        .collect();
    let names = names.unwrap_or_default();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let spawn = match names[..] {
        ["tokio", "spawn"] | ["tokio", "task", "spawn"] => "spawn",
        ["tokio", "task", "spawn_local"] => "spawn_local",
        _ => return None,
    };
    Some(syn::Ident::new(spawn, path.span()))
}
