//! Parse → validate → expand, and the tokens of the rewritten fn.

use proc_macro2::extra::DelimSpan;
use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, GenericArgument, PathArguments, Stmt, Type};

use crate::args::Args;
use crate::async_trait;
use crate::errors::Errors;
use crate::manifest::{self, Dependency};
use crate::spawn;
use crate::validate::{self, Function};
use crate::value::Choice;

/// The whole attribute. On any error the item is emitted unchanged next to the errors, so
/// one mistake yields one message and the rest of the crate still type-checks.
pub fn transactional(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = errors.ok(syn::parse2::<Args>(args));
    let function = errors.ok(validate::function(item.clone()));
    if let Some(args) = &args {
        errors.ok(validate::options(args));
        if let Some(function) = &function {
            errors.ok(validate::retries(args, &function.item));
        }
    }
    if let (Some(args), true) = (&args, errors.is_empty()) {
        errors.ok(reachable(args));
    }
    match (args, function) {
        (Some(args), Some(function)) if errors.is_empty() => expand(&args, function),
        _ => {
            // A fn is kept as written; since the options may have used its arguments, do not
            // add "unused variable" warnings to the errors.
            let is_fn = syn::parse2::<syn::ItemFn>(item.clone()).is_ok();
            let allow = is_fn.then(|| quote!(#[allow(unused_variables)]));
            let errors = errors.into_compile_error();
            quote!(#allow #item #errors)
        }
    }
}

/// Without `crate = ".."`, whether `::transactional` can work, from the crate's manifest.
fn reachable(args: &Args) -> syn::Result<()> {
    if args.krate.is_some() {
        return Ok(());
    }
    let message = match manifest::dependency() {
        Dependency::Direct => return Ok(()),
        Dependency::Renamed(name) => format!(
            "`#[transactional]` looks for its runtime at `::transactional`, and this crate \
             depends on it as `{name}`: add `crate = \"::{name}\"` to the attribute"
        ),
        Dependency::Missing => "`#[transactional]` looks for its runtime at `::transactional`, \
             which is not a dependency of this crate: if a crate of yours re-exports it, say \
             where with `crate = \"::that_crate::transactional\"`; otherwise add \
             `transactional` to `[dependencies]`"
            .to_owned(),
    };
    Err(syn::Error::new(Span::call_site(), message))
}

// Input:
//
//     #[transactional(db = db, propagation = "join", name = "load")]
//     async fn f(db: &Database, x: u32) -> Result<u32, MyError> { use ..; body }
//
// Output:
//
//     async fn f(db: &Database, x: u32) -> Result<u32, MyError> {
//         use ::transactional::__private as __transactional_private;
//         use ..;
//         #[allow(clippy::needless_return)]
//         return __transactional_private::TxResult::finish(__transactional_private::TxResult::run(
//             __transactional_private::Atomic::new()
//                 .db(__transactional_private::database(&(db)))
//                 .propagation(__transactional_private::Propagation::Join)
//                 .name("load"),
//             async move {
//                 #[allow(unreachable_code, ..)]
//                 if false {
//                     let __transactional_ret: Result<u32, MyError> = loop {};
//                     return __transactional_ret;
//                 }
//                 body
//             },
//         )
//         .await);
//     }
//
// With `retries = 3` the call is `TxResult::run_retrying(atomic.retries(3), || async { body }, classify)`:
// a fresh body for each attempt, borrowing the arguments rather than moving them in (a
// closure that moved them into its first future could not make a second one).
fn expand(args: &Args, function: Function) -> TokenStream {
    let Function {
        mut item,
        output,
        async_trait,
    } = function;
    spawn::rewrite(&mut item.block, &alias(Span::call_site()));
    let target = match async_trait {
        false => &mut item.block,
        true => {
            let body = async_trait::body(&mut item.block);
            &mut body
                .expect("validate::function checked the #[async_trait] shape")
                .block
        }
    };
    let prologue = match async_trait {
        false => 0,
        true => async_trait::prologue_len(&target.stmts),
    };
    let mut stmts = target.stmts.split_off(prologue);
    // The body's leading items (`use`, `const`, helper fns) go first, before anything the
    // attribute adds, so that `clippy::items_after_statements` does not fire on code the
    // user wrote in the right order. An item captures nothing, so moving it out of the
    // `async` block changes nothing else.
    let items = stmts
        .iter()
        .take_while(|stmt| matches!(stmt, Stmt::Item(_)))
        .count();
    let body = stmts.split_off(items);
    let mut args = args.clone();
    // Spans and errors name the frame after the fn unless `name = ".."` says otherwise: a
    // `&'static str` stored in the builder, read only when a span or a message is written.
    if args.name.is_none() {
        let ident = syn::ext::IdentExt::unraw(&item.sig.ident);
        args.name = Some(crate::args::Opt {
            key: ident.span(),
            value: syn::LitStr::new(&ident.to_string(), ident.span()),
        });
    }
    if let (true, Some(db)) = (async_trait && item.sig.receiver().is_some(), &mut args.db) {
        async_trait::rename_self(&mut db.value);
    }
    let probe = probe(&args);
    let mentioned = quote!(#(#body)*);
    let arguments = match async_trait {
        false => Arguments::of_signature(&item.sig, &mentioned),
        true => Arguments::of_prologue(&target.stmts, &mentioned),
    };
    let wrapped = wrap(&args, &output, &arguments, &body, target.brace_token.span);
    target.stmts.push(Stmt::Item(syn::Item::Verbatim(probe)));
    target.stmts.extend(stmts);
    target
        .stmts
        .push(Stmt::Expr(Expr::Verbatim(arguments.rebind), None));
    target.stmts.push(Stmt::Expr(Expr::Verbatim(wrapped), None));
    item.into_token_stream()
}

/// How the body reaches the fn's arguments. They stay where a plain `async fn` keeps them,
/// in the fn's own future, so they are dropped as it drops them: after the whole call (the
/// commit included), in reverse order. The body borrows each one uniquely (`&mut`), so the
/// future is `Send` whenever the arguments are (a shared borrow of a `Send + !Sync` argument
/// such as a `Cell` would not be), and a retried body can borrow them again on each attempt.
struct Arguments {
    /// `let mut x = x;` for each binding, in the fn's body: a unique borrow needs `mut`.
    rebind: TokenStream,
    /// `let _ = &mut x;` for each binding, first in the body's block: makes the block capture
    /// `x` by unique borrow, where a body that only reads `x` would capture a shared one. A
    /// body that moves `x` still captures it by value.
    borrow: TokenStream,
    /// A receiver taken by value and not `mut` cannot be borrowed uniquely; such a body moves
    /// the arguments it mentions, as before (`async move`).
    by_value_self: bool,
}

impl Arguments {
    fn of_signature(sig: &syn::Signature, body: &TokenStream) -> Self {
        let mut arguments = Arguments {
            rebind: TokenStream::new(),
            borrow: TokenStream::new(),
            by_value_self: false,
        };
        for input in &sig.inputs {
            match input {
                syn::FnArg::Receiver(receiver) => {
                    match (&receiver.reference, receiver.mutability) {
                        (Some((_, _)), _) if receiver.mutability.is_some() => {
                            let this = &receiver.self_token;
                            arguments.borrow.extend(quote!(let _ = &mut *#this;));
                        }
                        // `&self`: shared either way.
                        (Some(_), _) => {}
                        (None, Some(_)) => {
                            let this = &receiver.self_token;
                            arguments.borrow.extend(quote!(let _ = &mut #this;));
                        }
                        (None, None) => arguments.by_value_self = true,
                    }
                }
                syn::FnArg::Typed(typed) => arguments.add(&typed.attrs, &typed.pat, body),
            }
        }
        arguments
    }

    /// Under `#[async_trait]` the arguments are the bindings of the future's prologue
    /// (`let key = key;`, `let (a, b) = __arg1;`).
    fn of_prologue(prologue: &[Stmt], body: &TokenStream) -> Self {
        let mut arguments = Arguments {
            rebind: TokenStream::new(),
            borrow: TokenStream::new(),
            by_value_self: false,
        };
        for stmt in prologue {
            if let Stmt::Local(local) = stmt {
                arguments.add(&local.attrs, &local.pat, body);
            }
        }
        arguments
    }

    /// Every binding is re-declared, so that all are dropped in reverse order; only those
    /// the body mentions are borrowed, so that an unused argument still gets rustc's
    /// "unused variable" warning (on its re-declaration, spanned on the argument).
    fn add(&mut self, attrs: &[syn::Attribute], pat: &syn::Pat, body: &TokenStream) {
        // A `#[cfg(..)]` argument may not exist; neither may its rebinding.
        let cfgs: Vec<_> = attrs
            .iter()
            .filter(|attr| attr.path().is_ident("cfg"))
            .collect();
        let mut idents = Vec::new();
        bindings(pat, &mut idents);
        for ident in idents {
            self.rebind.extend(quote! {
                #(#cfgs)*
                #[allow(unused_mut)]
                let mut #ident = #ident;
            });
            if !validate::mentions(body, &ident.to_string()) {
                continue;
            }
            self.borrow.extend(quote! {
                #(#cfgs)*
                let _ = &mut #ident;
            });
        }
    }
}

/// The by-value bindings of a pattern: `x`, `mut x`, and those inside tuples and structs.
fn bindings(pat: &syn::Pat, found: &mut Vec<Ident>) {
    use syn::Pat;
    match pat {
        Pat::Ident(ident) if ident.by_ref.is_none() => {
            found.push(ident.ident.clone());
            if let Some((_, sub)) = &ident.subpat {
                bindings(sub, found);
            }
        }
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| bindings(p, found)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| bindings(p, found)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| bindings(&f.pat, found)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|p| bindings(p, found)),
        Pat::Paren(paren) => bindings(&paren.pat, found),
        Pat::Type(typed) => bindings(&typed.pat, found),
        _ => {}
    }
}

/// The name the expansion gives `<crate>::__private`. An item's name is visible to the body
/// whatever its span's hygiene, hence the unlikely name.
const ALIAS: &str = "__transactional_private";

/// The alias spanned on `span` as it is: an item name resolves the same with any hygiene,
/// and rustc folds two reports of one failed bound only when their spans are identical.
fn alias(span: Span) -> TokenStream {
    let alias = Ident::new(ALIAS, span);
    quote!(#alias)
}

/// `use ::transactional::__private as __transactional_private;`: the one place the crate's
/// path is written. When it does not resolve (the crate is re-exported by another and
/// `crate = ".."` was not given, or the path given is wrong), this import is the one error:
/// rustc does not report again the paths that go through a failed import.
fn probe(args: &Args) -> TokenStream {
    let alias = alias(Span::call_site());
    match &args.krate {
        Some(krate) => {
            let krate = &krate.value;
            let span = krate.span();
            // Two steps, so that a path that resolves but is not the `transactional` crate
            // says so, and one that does not resolve says only that.
            let root = Ident::new(
                "__transactional_crate",
                span.resolved_at(Span::mixed_site()),
            );
            quote_spanned! {span=>
                #[allow(unused_imports, clippy::single_component_path_imports)]
                use #krate as #root;
                #[allow(unused_imports)]
                use #root::__private as #alias;
            }
        }
        None => quote! {
            #[allow(unused_imports)]
            use ::transactional::__private as #alias;
        },
    }
}

/// The statements of the body, run in the transaction.
fn wrap(
    args: &Args,
    output: &Type,
    arguments: &Arguments,
    stmts: &[Stmt],
    braces: DelimSpan,
) -> TokenStream {
    // The fn's return type is checked by the bounds of `run` (a `Result` whose `E` holds a
    // `transactional::Error`), and reported on `E` when it is written, else on the type.
    let error = error_type(output);
    let error_span = error.map_or_else(|| output.span(), |error| error.span());
    let private = alias(error_span);
    let options = builder(args);
    let pin = pin_output(output);
    // The body keeps the braces the user wrote, so that borrowck errors name its variables.
    let borrow = match arguments.by_value_self && args.retries.is_none() {
        true => TokenStream::new(),
        false => arguments.borrow.clone(),
    };
    let mut block = Group::new(Delimiter::Brace, quote!(#borrow #pin #(#stmts)*));
    block.set_span(braces.join());
    let capture = match arguments.by_value_self {
        true => quote!(move),
        false => TokenStream::new(),
    };
    let atomic = quote_spanned!(error_span=> #private::Atomic::new() #options);
    // `return` rather than a tail expression: `clippy::implicit_return` would otherwise
    // fire on the signature, where this expression is spanned.
    let call = match &args.retries {
        None => quote_spanned! {error_span=>
            #private::TxResult::run(#atomic, async #capture #block).await
        },
        Some(retries) => {
            let n = retries.value;
            // Whether the body's error is transient is read off the error itself where its
            // type can be named (`__private::Probe`); otherwise the runtime judges by the
            // last statement.
            let error = match error {
                Some(error) => Some(quote!(#error)),
                None if nameable(output) => Some(quote!(<#output as #private::TxResult>::Err)),
                None => None,
            };
            let classify = match error {
                Some(error) => quote_spanned! {error_span=>
                    |__transactional_err: &#error| {
                        #[allow(unused_imports)]
                        use #private::{Unknown as _, ViaSource as _};
                        #private::Probe(__transactional_err).transient()
                    }
                },
                None => quote_spanned!(error_span=> |_| ::core::option::Option::None),
            };
            // The attempts are made here, in the fn's body, rather than by a closure handed
            // to the runtime: each attempt's block can then borrow the arguments uniquely.
            let retry = Ident::new(
                "__transactional_retry",
                error_span.resolved_at(Span::mixed_site()),
            );
            let raw = Ident::new(
                "__transactional_raw",
                error_span.resolved_at(Span::mixed_site()),
            );
            let attempt = quote_spanned!(retries.key=> async);
            quote_spanned! {error_span=>
                {
                    let mut #retry = #private::Retry::new(#atomic .retries(#n));
                    loop {
                        if let ::core::ops::ControlFlow::Break(#raw) = #private::TxResult::attempt(
                            &mut #retry,
                            #attempt #block,
                            #classify,
                        )
                        .await
                        {
                            break #raw;
                        }
                    }
                }
            }
        }
    };
    // `return` rather than a tail expression: `clippy::implicit_return` would otherwise
    // fire on the signature, where this expression is spanned.
    quote_spanned! {error_span=>
        #[allow(clippy::needless_return)]
        return #private::TxResult::finish(#call);
    }
}

/// A type with no `impl Trait` or `_` in it, which can be named in a projection.
fn nameable(ty: &Type) -> bool {
    let mut unnameable = Unnameable(false);
    unnameable.visit_type_mut(&mut ty.clone());
    !unnameable.0
}

/// The builder calls for the options given, each spanned on its key.
fn builder(args: &Args) -> TokenStream {
    let mut calls = TokenStream::new();
    if let Some(db) = &args.db {
        let expr = &db.value;
        let span = expr.span();
        let private = alias(span);
        calls.extend(quote_spanned!(span=> .db(#private::database(&(#expr)))));
    }
    if let Some(propagation) = &args.propagation {
        calls.extend(choice("propagation", propagation.key, propagation.value));
    }
    if let Some(begin) = &args.begin {
        calls.extend(choice("begin", begin.key, begin.value));
    }
    if let Some(isolation) = &args.isolation {
        calls.extend(choice("isolation", isolation.key, isolation.value));
    }
    if let Some(read_only) = &args.read_only {
        let value = read_only.value;
        calls.extend(quote_spanned!(read_only.key=> .read_only(#value)));
    }
    if let Some(offload) = &args.offload {
        let value = offload.value;
        calls.extend(quote_spanned!(offload.key=> .offload(#value)));
    }
    if let Some(timeout) = &args.timeout {
        let nanos = timeout.value;
        let private = alias(timeout.key);
        calls.extend(quote_spanned!(timeout.key=>
            .timeout(#private::Duration::from_nanos(#nanos))
        ));
    }
    if let Some(name) = &args.name {
        let name = &name.value;
        calls.extend(quote_spanned!(name.span()=> .name(#name)));
    }
    calls
}

fn choice<T: Choice>(method: &str, key: Span, value: T) -> TokenStream {
    let private = alias(key);
    let method = Ident::new(method, key);
    let ty = Ident::new(T::TYPE, key);
    let variant = Ident::new(value.variant(), key);
    quote_spanned!(key=> .#method(#private::#ty::#variant))
}

/// A return that is never taken, giving the async block the fn's own output type, so a
/// wrong `Ok(..)` in the body is reported against the signature, in the user's code.
fn pin_output(output: &Type) -> TokenStream {
    let mut ty = output.clone();
    ImplTraitToInfer.visit_type_mut(&mut ty);
    // Spanned on the return type, so that rustc's "return type inferred to be .. here" and
    // an empty body's "expected `Result`, found `()`" point at the signature, as they would
    // without the attribute, rather than at the attribute.
    let span = output.span();
    let ret = Ident::new("__transactional_ret", span.resolved_at(Span::mixed_site()));
    quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let #ret: #ty = loop {};
            return #ret;
        }
    }
}

/// `impl Trait` may not be written in a `let`; `_` lets the body's value decide.
struct ImplTraitToInfer;

impl VisitMut for ImplTraitToInfer {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](impl_trait.span()),
            });
            return;
        }
        visit_mut::visit_type_mut(self, ty);
    }
}

/// `E` of `Result<T, E>`, to check `E: From<transactional::Error>` with the error on `E`.
/// `None` for an alias like `io::Result<T>` (whose `E` is not written) and for an `E` that
/// cannot be named in a turbofish.
fn error_type(output: &Type) -> Option<&Type> {
    let Type::Path(path) = output else {
        return None;
    };
    let PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    let (Some(_), Some(error), None) = (types.next(), types.next(), types.next()) else {
        return None;
    };
    let mut unnameable = Unnameable(false);
    unnameable.visit_type_mut(&mut error.clone());
    (!unnameable.0).then_some(error)
}

/// Finds `impl Trait` and `_`, which a turbofish cannot hold.
struct Unnameable(bool);

impl VisitMut for Unnameable {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        self.0 |= matches!(ty, Type::ImplTrait(_) | Type::Infer(_));
        visit_mut::visit_type_mut(self, ty);
    }
}
