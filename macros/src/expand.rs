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

// Input:
//
//     #[transactional(db = db, propagation = "join", name = "load")]
//     async fn f(db: &Database, x: u32) -> Result<u32, MyError> { body }
//
// Output:
//
//     async fn f(db: &Database, x: u32) -> Result<u32, MyError> {
//         ::transactional::__private::assert_error_type::<MyError>();
//         ::transactional::__private::Atomic::new()
//             .db(::transactional::__private::database(&(db)))
//             .propagation(::transactional::__private::Propagation::Join)
//             .name("load")
//             .run(async move {
//                 #[allow(unreachable_code, ..)]
//                 if false {
//                     let __transactional_ret: Result<u32, MyError> = loop {};
//                     return __transactional_ret;
//                 }
//                 body
//             })
//             .await
//     }
//
// With `retries = 3` the last part is `.retries(3).run_retrying(|| async { body })`: a fresh
// body for each attempt, borrowing the arguments rather than moving them in (a closure that
// moved them into its first future could not make a second one).
fn expand(args: &Args, function: Function) -> TokenStream {
    let Function {
        mut item,
        output,
        async_trait,
    } = function;
    spawn::rewrite(&mut item.block, &private(args, Span::call_site()));
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
    let stmts = target.stmts.split_off(prologue);
    let mut args = args.clone();
    if let (true, Some(db)) = (async_trait && item.sig.receiver().is_some(), &mut args.db) {
        async_trait::rename_self(&mut db.value);
    }
    let wrapped = wrap(&args, &output, &stmts, target.brace_token.span);
    target.stmts.push(Stmt::Expr(Expr::Verbatim(wrapped), None));
    item.into_token_stream()
}

/// The statements of the body, run in the transaction.
fn wrap(args: &Args, output: &Type, stmts: &[Stmt], braces: DelimSpan) -> TokenStream {
    // A missing `From<transactional::Error>` is reported on `E`, once: `run` requires the
    // same bound, and rustc drops the second report when both have the same span.
    let error = error_type(output);
    // Without a written `E` (`AppResult<T>`), `run`'s bound is reported on the return type.
    let error_span = error.map_or_else(|| output.span(), |error| error.span());
    let assert_error_type = error.map(|error| {
        let private = private(args, error_span);
        quote_spanned!(error_span=> #private::assert_error_type::<#error>();)
    });
    let atomic = private(args, error_span);
    let options = builder(args);
    let pin = pin_output(output);
    // The body keeps the braces the user wrote, so that borrowck errors name its variables.
    let mut block = Group::new(Delimiter::Brace, quote!(#pin #(#stmts)*));
    block.set_span(braces.join());
    let Some(retries) = &args.retries else {
        return quote_spanned! {error_span=>
            #assert_error_type
            #atomic::Atomic::new() #options .run(async move #block).await
        };
    };
    let n = retries.value;
    let closure = quote_spanned!(retries.key=> ||);
    let body = quote_spanned!(braces.open()=> #closure async #block);
    // Whether the body's error is transient is read off the error itself where its type can
    // be named (`__private::Probe`); otherwise `run_retrying` judges by the last statement.
    let error = match error {
        Some(error) => Some(quote!(#error)),
        None if nameable(output) => Some(quote!(<#output as #atomic::IsResult>::Err)),
        None => None,
    };
    match error {
        Some(error) => quote_spanned! {error_span=>
            #assert_error_type
            #atomic::run_retrying(
                #atomic::Atomic::new() #options .retries(#n),
                #body,
                |__transactional_err: &#error| {
                    #[allow(unused_imports)]
                    use #atomic::{Unknown as _, ViaSource as _};
                    #atomic::Probe(__transactional_err).transient()
                },
            )
            .await
        },
        None => quote_spanned! {error_span=>
            #assert_error_type
            #atomic::Atomic::new() #options .retries(#n) .run_retrying(#body).await
        },
    }
}

/// A type with no `impl Trait` or `_` in it, which can be named in a projection.
fn nameable(ty: &Type) -> bool {
    let mut unnameable = Unnameable(false);
    unnameable.visit_type_mut(&mut ty.clone());
    !unnameable.0
}

/// `<crate>::__private` with `span`, so that an error in a call points at its option.
fn private(args: &Args, span: Span) -> TokenStream {
    match &args.krate {
        Some(krate) => {
            let krate = &krate.value;
            quote_spanned!(span=> #krate::__private)
        }
        None => quote_spanned!(span=> ::transactional::__private),
    }
}

/// The builder calls for the options given, each spanned on its key.
fn builder(args: &Args) -> TokenStream {
    let mut calls = TokenStream::new();
    if let Some(db) = &args.db {
        let expr = &db.value;
        let span = expr.span();
        let private = private(args, span);
        calls.extend(quote_spanned!(span=> .db(#private::database(&(#expr)))));
    }
    if let Some(propagation) = &args.propagation {
        calls.extend(choice(
            args,
            "propagation",
            propagation.key,
            propagation.value,
        ));
    }
    if let Some(begin) = &args.begin {
        calls.extend(choice(args, "begin", begin.key, begin.value));
    }
    if let Some(isolation) = &args.isolation {
        calls.extend(choice(args, "isolation", isolation.key, isolation.value));
    }
    if let Some(read_only) = &args.read_only {
        let value = read_only.value;
        calls.extend(quote_spanned!(read_only.key=> .read_only(#value)));
    }
    if let Some(timeout) = &args.timeout {
        let nanos = timeout.value;
        let private = private(args, timeout.key);
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

fn choice<T: Choice>(args: &Args, method: &str, key: Span, value: T) -> TokenStream {
    let private = private(args, key);
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
    let ret = Ident::new("__transactional_ret", Span::mixed_site());
    quote! {
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
