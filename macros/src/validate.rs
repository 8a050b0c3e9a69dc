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
    } else if let Some(runtime) = tokio_expanded(&func) {
        // `#[tokio::test]` above `#[transactional]` expands first and hands over a plain fn
        // that blocks on the body: there is no `async fn` left to wrap.
        let message = format!(
            "`#[{runtime}]` has already turned this `async fn` into a plain fn; put \
             `#[transactional]` above `#[{runtime}]`, or move the transaction into an \
             `async fn` that the test calls"
        );
        errors.push(Error::new(sig.ident.span(), message));
    } else if sig.asyncness.is_none() && async_trait_output.is_none() && !returns_future(sig) {
        // `async` goes before `unsafe`: `async unsafe fn`.
        let (before, span) = match sig.unsafety {
            Some(unsafety) => ("unsafe", unsafety.span),
            None => ("fn", sig.fn_token.span),
        };
        let message =
            format!("`#[transactional]` needs an `async fn`: add `async` before `{before}`");
        errors.push(Error::new(span, message));
    }
    if let Some(again) = func.attrs.iter().find(|attr| is_transactional(attr)) {
        errors.push(Error::new_spanned(
            again,
            "`#[transactional]` is applied twice; remove one (a nested transactional call \
             already becomes a savepoint)",
        ));
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

/// `#[transactional]` or `#[transactional(..)]` (through any path).
fn is_transactional(attr: &syn::Attribute) -> bool {
    let path = attr.path();
    path.segments
        .last()
        .is_some_and(|last| last.ident == "transactional")
}

/// `"tokio::test"` or `"tokio::main"` when `func` is what those attributes make of an
/// `async fn`: a plain fn whose body builds a runtime and blocks on the original body.
fn tokio_expanded(func: &ItemFn) -> Option<&'static str> {
    if func.sig.asyncness.is_some() {
        return None;
    }
    let body = func.block.to_token_stream();
    if !mentions(&body, "block_on") || !mentions(&body, "Builder") {
        return None;
    }
    let test = func.attrs.iter().any(|attr| {
        attr.path()
            .segments
            .last()
            .is_some_and(|last| last.ident == "test")
    });
    Some(if test || func.sig.ident != "main" {
        "tokio::test"
    } else {
        "tokio::main"
    })
}

const NEEDS_RESULT: &str =
    "a `#[transactional]` fn must return a `Result`, since the transaction can fail";

/// Refuses the return types that are certainly not a `Result`, with the fix; any other path
/// (`Result<T, E>`, an alias named anything, a struct named `SearchResult`) is left to the
/// type checker: `__private::run` requires `__private::TxResult`, whose message says why.
fn result(ty: Type) -> Result<Type> {
    if let Some(output) = future_output(&ty) {
        let message = format!(
            "`#[transactional]` needs an `async fn`: write `async fn` and return `{}` \
             instead of `impl Future<..>`",
            pretty(&output)
        );
        return Err(Error::new_spanned(ty, message));
    }
    if maybe_result(&ty) {
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

/// `-> impl Future<..>`, which gets its own message (write `async fn`) from [`result`].
fn returns_future(sig: &syn::Signature) -> bool {
    matches!(&sig.output, ReturnType::Type(_, ty) if future_output(ty).is_some())
}

/// `T` of `impl Future<Output = T>`.
fn future_output(ty: &Type) -> Option<Type> {
    let Type::ImplTrait(impl_trait) = ty else {
        return None;
    };
    impl_trait.bounds.iter().find_map(|bound| {
        let syn::TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let future = bound.path.segments.last().filter(|s| s.ident == "Future")?;
        let syn::PathArguments::AngleBracketed(args) = &future.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            syn::GenericArgument::AssocType(assoc) if assoc.ident == "Output" => {
                Some(assoc.ty.clone())
            }
            _ => None,
        })
    })
}

/// A type the name of which could be a `Result` or an alias of one: a path that is not a
/// primitive or a well-known non-`Result` std type. Tuples, references, arrays, `impl Trait`
/// and the like cannot be.
pub fn maybe_result(ty: &Type) -> bool {
    match ty {
        Type::Group(group) => maybe_result(&group.elem),
        Type::Paren(paren) => maybe_result(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return false;
            };
            const NOT_RESULTS: &[&str] = &[
                "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16",
                "i32", "i64", "i128", "isize", "f32", "f64", "String", "Vec", "Option", "Box",
                "Arc", "Rc", "HashMap", "BTreeMap", "HashSet", "BTreeSet",
            ];
            !NOT_RESULTS.iter().any(|name| last.ident == name)
        }
        Type::Path(_) => true,
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

/// With `retries`, the body runs again on each attempt, and what it changed in an argument
/// during a failed attempt would carry over into the next: refuse the changes the tokens
/// show, on the argument. A `mut` binding (`mut x`, also inside a pattern) is there to be
/// changed, so it is refused when the body mentions it; a `&mut self` or `&mut T` argument
/// only when the body visibly writes through it (`x.f = ..`, `*x += ..`, `&mut x.f`), since
/// a trait may require `&mut self` of a method that only reads. A change through a method
/// (`x.push(1)`) cannot be told from a read here; it compiles, and repeats on each attempt.
pub fn retries(args: &Args, item: &ItemFn) -> Result<()> {
    if args.retries.is_none() {
        return Ok(());
    }
    let body = item.block.to_token_stream();
    let mut errors = Errors::default();
    for input in &item.sig.inputs {
        for (name, tokens, fix, by_ref) in mutable_arguments(input) {
            let refused = match by_ref {
                false => mentions(&body, &name),
                true => writes(&body, &name),
            };
            if refused {
                let message = format!(
                    "with `retries` the body runs again on each attempt, and a change it made \
                     to an argument in a failed attempt would carry over into the next; {fix}, \
                     or remove `retries`"
                );
                errors.push(Error::new_spanned(tokens, message));
            }
        }
    }
    errors.finish(())
}

const COPY: &str = "remove `mut` and make a mutable copy in the body";

/// The bindings of an argument that the body could change: name, the tokens that make it
/// mutable, how to fix it, and whether it is a `&mut` (rather than a `mut` binding).
fn mutable_arguments(input: &FnArg) -> Vec<(String, TokenStream, &'static str, bool)> {
    match input {
        // `ty` is `&mut Self` for `&mut self` too.
        FnArg::Receiver(receiver) if is_mut_ref(&receiver.ty) => {
            let fix = "take `&self` instead of `&mut self`";
            vec![("self".into(), receiver.to_token_stream(), fix, true)]
        }
        FnArg::Receiver(receiver) => receiver
            .mutability
            .map(|mutability| ("self".into(), mutability.to_token_stream(), COPY, false))
            .into_iter()
            .collect(),
        FnArg::Typed(typed) => {
            if let (Pat::Ident(pat), true) = (&*typed.pat, is_mut_ref(&typed.ty)) {
                let fix = "take a shared reference instead";
                return vec![(pat.ident.to_string(), typed.ty.to_token_stream(), fix, true)];
            }
            let mut found = Vec::new();
            mut_bindings(&typed.pat, &mut found);
            found
        }
    }
}

/// Every `mut x` in a pattern, `(mut a, b)` and `Point { mut x, .. }` included.
fn mut_bindings(pat: &Pat, found: &mut Vec<(String, TokenStream, &'static str, bool)>) {
    match pat {
        Pat::Ident(ident) => {
            if let Some(mutability) = ident.mutability {
                found.push((
                    ident.ident.to_string(),
                    mutability.to_token_stream(),
                    COPY,
                    false,
                ));
            }
            if let Some((_, sub)) = &ident.subpat {
                mut_bindings(sub, found);
            }
        }
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| mut_bindings(p, found)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| mut_bindings(p, found)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| mut_bindings(&f.pat, found)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|p| mut_bindings(p, found)),
        Pat::Reference(reference) => mut_bindings(&reference.pat, found),
        Pat::Paren(paren) => mut_bindings(&paren.pat, found),
        Pat::Type(typed) => mut_bindings(&typed.pat, found),
        _ => {}
    }
}

/// Whether `tokens` visibly write through `name`: `&mut name..`, or `name`, `*name` or
/// `name.field..` followed by an assignment (`=`, `+=`, …).
fn writes(tokens: &TokenStream, name: &str) -> bool {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Group(group) if writes(&group.stream(), name) => return true,
            TokenTree::Ident(ident) if ident == name => {
                let borrowed_mut = i >= 2
                    && matches!(&trees[i - 1], TokenTree::Ident(m) if m == "mut")
                    && matches!(&trees[i - 2], TokenTree::Punct(p) if p.as_char() == '&');
                if borrowed_mut || assigned(&trees[i + 1..]) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether a place expression's rest (`.a.b[0]`) is followed by an assignment operator.
fn assigned(rest: &[TokenTree]) -> bool {
    let mut i = 0;
    loop {
        match rest.get(i) {
            Some(TokenTree::Punct(p)) if p.as_char() == '.' => i += 2,
            Some(TokenTree::Group(g)) if g.delimiter() == proc_macro2::Delimiter::Bracket => {
                i += 1;
            }
            Some(TokenTree::Punct(_)) => {
                let mut op = String::new();
                for tree in &rest[i..] {
                    match tree {
                        TokenTree::Punct(p) => {
                            op.push(p.as_char());
                            if p.spacing() == proc_macro2::Spacing::Alone {
                                break;
                            }
                        }
                        _ => break,
                    }
                }
                return op == "="
                    || (op.len() >= 2
                        && op.ends_with('=')
                        && !matches!(op.as_str(), "==" | "!=" | "<=" | ">=" | "=>"));
            }
            _ => return false,
        }
    }
}

fn is_mut_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(reference) if reference.mutability.is_some())
}

/// Whether the identifier `name` occurs anywhere in `tokens`.
pub fn mentions(tokens: &TokenStream, name: &str) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == name,
        TokenTree::Group(group) => mentions(&group.stream(), name),
        _ => false,
    })
}
