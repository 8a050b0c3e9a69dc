//! Checks that the item is an `async fn` returning a `Result`, and that the options make
//! sense together. Every error points at the token to change.

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::{Error, FnArg, Item, ItemFn, Pat, Result, ReturnType, Type};

use crate::args::Args;
use crate::async_trait;
use crate::errors::Errors;
use crate::value::{Begin, Propagation};

/// An `async fn` returning a `Result`.
pub struct Function {
    pub item: ItemFn,
    /// The `Result<T, E>` after `->`.
    pub output: Type,
    /// `#[async_trait]` has already turned the `async fn` into a fn returning
    /// `Box::pin(async move { .. })`; `output` is that future's output.
    pub async_trait: bool,
}

/// The item as an `async fn` with a `Result` return type.
pub fn function(item: TokenStream) -> Result<Function> {
    let func = match syn::parse2::<Item>(item)? {
        Item::Fn(func) => func,
        other => return Err(not_a_function(&other)),
    };
    let sig = &func.sig;
    let async_trait_output = async_trait::output(sig, &func.block);
    let mut errors = Errors::default();
    if let Some(constness) = sig.constness {
        let fix = match sig.asyncness {
            Some(_) => "remove `const`",
            None => "remove `const` and write `async fn`",
        };
        let message = format!("`#[transactional]` cannot be applied to a `const fn`; {fix}");
        errors.push(Error::new(constness.span, message));
    } else if sig.asyncness.is_none() && async_trait_output.is_none() {
        // `async` goes before `unsafe`: `async unsafe fn`.
        let (before, span) = match sig.unsafety {
            Some(unsafety) => ("unsafe", unsafety.span),
            None => ("fn", sig.fn_token.span),
        };
        let message =
            format!("`#[transactional]` needs an `async fn`: add `async` before `{before}`");
        errors.push(Error::new(span, message));
    }
    if let Some(abi) = &sig.abi {
        let message = format!(
            "`#[transactional]` cannot be applied to an `extern` fn; remove `{}`",
            abi.to_token_stream()
        );
        errors.push(Error::new_spanned(abi, message));
    }
    let async_trait = async_trait_output.is_some();
    let output = match async_trait_output {
        Some(output) => result(output),
        None => match &sig.output {
            ReturnType::Default => Err(Error::new(
                sig.paren_token.span.close(),
                format!("{NEEDS_RESULT}: add `-> Result<(), transactional::Error>`"),
            )),
            ReturnType::Type(_, ty) => result((**ty).clone()),
        },
    };
    let output = output.map(|output| Function {
        item: func,
        output,
        async_trait,
    });
    errors.finish_with(output)
}

const NEEDS_RESULT: &str =
    "a `#[transactional]` fn must return a `Result`, since the transaction can fail";

fn result(ty: Type) -> Result<Type> {
    if is_result(&ty) {
        return Ok(ty);
    }
    let message = format!(
        "{NEEDS_RESULT}: write `Result<{}, transactional::Error>`",
        pretty(&ty)
    );
    Err(Error::new_spanned(ty, message))
}

/// A type as it would be written, for messages: `Vec<u8>` rather than `Vec < u8 >`.
fn pretty(ty: &Type) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (from, to) in [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ::", "::"),
        (":: ", "::"),
    ] {
        text = text.replace(from, to);
    }
    text.replace(" ,", ",").replace("& ", "&")
}

/// `Result<..>`, `io::Result<..>`, `AppResult<..>`, … : any path whose last segment ends in
/// `Result`, since aliases are common and the type cannot be resolved here.
pub fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Group(group) => is_result(&group.elem),
        Type::Paren(paren) => is_result(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last();
            last.is_some_and(|last| last.ident.to_string().ends_with("Result"))
        }
        _ => false,
    }
}

/// "applies to an `async fn`", spanned on what the item is (`struct Foo`, `impl Foo`).
fn not_a_function(item: &Item) -> Error {
    let (what, head) = match item {
        Item::Struct(s) => ("a struct", head(&s.struct_token, &s.ident)),
        Item::Enum(e) => ("an enum", head(&e.enum_token, &e.ident)),
        Item::Union(u) => ("a union", head(&u.union_token, &u.ident)),
        Item::Trait(t) => ("a trait", head(&t.trait_token, &t.ident)),
        Item::Impl(i) => ("an impl block", head(&i.impl_token, &i.self_ty)),
        Item::Mod(m) => ("a module", head(&m.mod_token, &m.ident)),
        Item::Const(c) => ("a const", head(&c.const_token, &c.ident)),
        Item::Static(s) => ("a static", head(&s.static_token, &s.ident)),
        Item::Type(t) => ("a type alias", head(&t.type_token, &t.ident)),
        Item::Verbatim(tokens) if has_fn_token(tokens) => {
            return Error::new_spanned(
                tokens,
                "`#[transactional]` wraps the fn's body, and this declaration has none; \
                 put the attribute on the implementations instead",
            );
        }
        other => ("this item", other.to_token_stream()),
    };
    let inside = match item {
        Item::Impl(_) | Item::Trait(_) => "; put it on each `async fn` inside instead",
        _ => "",
    };
    let message = format!("`#[transactional]` applies to an `async fn`, not to {what}{inside}");
    Error::new_spanned(head, message)
}

fn head(keyword: &impl ToTokens, name: &impl ToTokens) -> TokenStream {
    quote!(#keyword #name)
}

fn has_fn_token(tokens: &TokenStream) -> bool {
    tokens
        .clone()
        .into_iter()
        .any(|tree| matches!(tree, TokenTree::Ident(ident) if ident == "fn"))
}

/// Options that cannot both take effect.
pub fn options(args: &Args) -> Result<()> {
    let mut errors = Errors::default();
    if let Some(propagation) = &args.propagation {
        if propagation.value == Propagation::Mandatory {
            let ignored = [
                ("begin", args.begin.as_ref().map(|o| o.key)),
                ("isolation", args.isolation.as_ref().map(|o| o.key)),
                ("retries", args.retries.as_ref().map(|o| o.key)),
            ];
            for (name, key) in ignored {
                if let Some(key) = key {
                    let message = format!(
                        "`{name}` has no effect with `propagation = \"mandatory\"`, which \
                         never begins a transaction; remove `{name}`"
                    );
                    errors.push(Error::new(key, message));
                }
            }
        }
    }
    let read_only = args.read_only.as_ref().is_some_and(|o| o.value);
    if let (true, Some(begin)) = (read_only, &args.begin) {
        if begin.value != Begin::Deferred {
            errors.push(Error::new(
                begin.key,
                "`read_only` transactions never take the write lock, so they cannot begin \
                 `immediate` or `exclusive`; remove `begin` or use `begin = \"deferred\"`",
            ));
        }
    }
    errors.finish(())
}

/// With `retries`, each attempt's body is made by an `FnMut` closure, which can lend the
/// arguments to the body only as shared borrows. A body that changes an argument (`&mut self`,
/// `x: &mut T`, `mut x`) would fail with "captured variable cannot escape `FnMut` closure
/// body"; say why instead, on the argument.
pub fn retries(args: &Args, item: &ItemFn) -> Result<()> {
    if args.retries.is_none() {
        return Ok(());
    }
    let body = item.block.to_token_stream();
    let mut errors = Errors::default();
    for (name, tokens, fix) in item.sig.inputs.iter().filter_map(mutable_argument) {
        if mentions(&body, &name) {
            let message = format!(
                "with `retries` the body runs again on each attempt, so it can only borrow the \
                 arguments immutably; {fix}, or remove `retries`"
            );
            errors.push(Error::new_spanned(tokens, message));
        }
    }
    errors.finish(())
}

/// An argument the body could change: its name, the tokens that make it mutable, and how to
/// fix it.
fn mutable_argument(input: &FnArg) -> Option<(String, TokenStream, &'static str)> {
    const COPY: &str = "remove `mut` and make a mutable copy in the body";
    match input {
        // `ty` is `&mut Self` for `&mut self` too.
        FnArg::Receiver(receiver) if is_mut_ref(&receiver.ty) => {
            let fix = "take `&self` instead of `&mut self`";
            Some(("self".into(), receiver.to_token_stream(), fix))
        }
        FnArg::Receiver(receiver) => {
            Some(("self".into(), receiver.mutability?.to_token_stream(), COPY))
        }
        FnArg::Typed(typed) => {
            let Pat::Ident(pat) = &*typed.pat else {
                return None;
            };
            let name = pat.ident.to_string();
            if is_mut_ref(&typed.ty) {
                Some((
                    name,
                    typed.ty.to_token_stream(),
                    "take a shared reference instead",
                ))
            } else {
                Some((name, pat.mutability?.to_token_stream(), COPY))
            }
        }
    }
}

fn is_mut_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(reference) if reference.mutability.is_some())
}

/// Whether the identifier `name` occurs anywhere in `tokens`.
fn mentions(tokens: &TokenStream, name: &str) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == name,
        TokenTree::Group(group) => mentions(&group.stream(), name),
        _ => false,
    })
}
