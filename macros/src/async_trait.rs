//! `#[async_trait]` sits on the impl (or trait), so it expands before a `#[transactional]` on
//! one of its methods: we see a fn that already returns a boxed future, and wrap the body of
//! that future instead of the fn's (as tracing-attributes does).
//!
//! ```text
//! // Input: what #[async_trait] made of `async fn get(&self, key: String) -> Result<T, E>`
//! fn get<'life0, 'async_trait>(&'life0 self, key: String)
//!     -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'async_trait>>
//! {
//!     Box::pin(async move {
//!         if let Some(__ret) = None::<Result<T, E>> { return __ret; }
//!         let __self = self;
//!         let key = key;
//!         let __ret: Result<T, E> = { body };
//!         __ret
//!     })
//! }
//! // Output: the same, with the statements after the argument bindings wrapped
//!     Box::pin(async move {
//!         if let Some(__ret) = None::<Result<T, E>> { return __ret; }
//!         let __self = self;
//!         let key = key;
//!         ::transactional::__private::Atomic::new().run(async move { .. }).await
//!     })
//! ```

use proc_macro2::Ident;
use syn::visit_mut::VisitMut;
use syn::{
    Block, Expr, ExprAsync, GenericArgument, Pat, PathArguments, ReturnType, Signature, Stmt, Type,
    TypeParamBound,
};

/// `R` when `sig` and `block` have the shape `#[async_trait]` gives an `async fn … -> R`.
pub fn output(sig: &Signature, block: &Block) -> Option<Type> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    let boxed = last_generic(ty, "Pin")?;
    let Type::TraitObject(future) = last_generic(boxed, "Box")? else {
        return None;
    };
    let output = future.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let future = bound.path.segments.last().filter(|s| s.ident == "Future")?;
        let PathArguments::AngleBracketed(args) = &future.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(assoc.ty.clone()),
            _ => None,
        })
    })?;
    boxed_async(block).map(|_| output)
}

/// The `async move { .. }` in the `Box::pin(..)` that ends `block`.
pub fn body(block: &mut Block) -> Option<&mut ExprAsync> {
    boxed_async(block)?;
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last_mut() else {
        return None;
    };
    match call.args.first_mut() {
        Some(Expr::Async(body)) => Some(body),
        _ => None,
    }
}

fn boxed_async(block: &Block) -> Option<&ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last() else {
        return None;
    };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let names: Vec<_> = func
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !names.ends_with(&["Box".into(), "pin".into()]) || call.args.len() != 1 {
        return None;
    }
    match call.args.first() {
        Some(Expr::Async(body)) => Some(body),
        _ => None,
    }
}

/// How many leading statements of the future's body bind the arguments (`let key = key;`)
/// or pin its output type: they stay outside the transaction, so that a retried body
/// borrows the arguments like an ordinary `async fn`'s does.
pub fn prologue_len(stmts: &[Stmt]) -> usize {
    stmts
        .iter()
        .take_while(|stmt| match stmt {
            Stmt::Expr(Expr::If(pin), _) => matches!(&*pin.cond, Expr::Let(_)),
            Stmt::Local(local) => {
                let init = local.init.as_ref().filter(|init| init.diverge.is_none());
                !matches!(&local.pat, Pat::Wild(_))
                    && matches!(init.map(|init| &*init.expr), Some(Expr::Path(path)) if path.path.get_ident().is_some())
            }
            _ => false,
        })
        .count()
}

/// In the future's body `#[async_trait]` has moved the receiver into `__self`; `db = self.x`
/// must say `__self.x` there.
pub fn rename_self(db: &mut Expr) {
    struct RenameSelf;
    impl VisitMut for RenameSelf {
        fn visit_ident_mut(&mut self, ident: &mut Ident) {
            if ident == "self" {
                *ident = Ident::new("__self", ident.span());
            }
        }
        fn visit_item_mut(&mut self, _: &mut syn::Item) {}
    }
    RenameSelf.visit_expr_mut(db);
}

/// The type argument of `ty` when `ty` is `…::<name><T>`.
fn last_generic<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last().filter(|s| s.ident == name)?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}
