//! `#[derive(FromRow)]`: decodes a row into a struct, each named field from the column of its
//! name (`#[from_row(rename = "col")]` for another), a tuple struct's fields by position.
//!
//! ```text
//! // Input
//! #[derive(FromRow)]
//! struct Account { id: i64, #[from_row(rename = "owner_name")] owner: String }
//! // Output
//! impl ::transactional::FromRow for Account {
//!     fn from_row(row: &::transactional::Row) -> ::transactional::Result<Self> {
//!         ::core::result::Result::Ok(Self { id: row.get("id")?, owner: row.get("owner_name")? })
//!     }
//! }
//! ```

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Fields, LitStr, Path, Result};

pub fn derive(input: TokenStream) -> TokenStream {
    match syn::parse2::<DeriveInput>(input).and_then(|input| expand(&input)) {
        Ok(tokens) => tokens,
        Err(error) => error.into_compile_error(),
    }
}

fn expand(input: &DeriveInput) -> Result<TokenStream> {
    let krate = crate_path(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(Error::new(
            input.ident.span(),
            "`#[derive(FromRow)]` needs a struct: a row decodes into its fields (for an enum, \
             decode a tuple and match on it)",
        ));
    };
    let body =
        match &data.fields {
            Fields::Named(fields) => {
                let mut inits = Vec::new();
                for field in &fields.named {
                    let ident = field.ident.as_ref().expect("named fields have names");
                    let column = match rename(&field.attrs)? {
                        Some(name) => name,
                        None => LitStr::new(&ident.unraw_string(), ident.span()),
                    };
                    let ty = &field.ty;
                    // Spanned on the field's type, so a type that is not `FromValue` is reported
                    // there.
                    inits.push(quote_spanned!(ty.span()=> #ident: row.get::<#ty>(#column)?));
                }
                quote!(::core::result::Result::Ok(Self { #(#inits),* }))
            }
            Fields::Unnamed(fields) => {
                for field in &fields.unnamed {
                    if let Some(name) = rename(&field.attrs)? {
                        return Err(Error::new(
                            name.span(),
                            "`rename` names a column for a named field; a tuple struct takes its \
                         columns by position",
                        ));
                    }
                }
                let count = fields.unnamed.len();
                let gets = fields.unnamed.iter().enumerate().map(|(i, field)| {
                    let ty = &field.ty;
                    quote_spanned!(ty.span()=> row.get::<#ty>(#i)?)
                });
                quote! {
                    row.expect_columns(#count)?;
                    ::core::result::Result::Ok(Self(#(#gets),*))
                }
            }
            Fields::Unit => return Err(Error::new(
                input.ident.span(),
                "`#[derive(FromRow)]` on a unit struct: it has no fields to decode the row into",
            )),
        };
    let name = &input.ident;
    // Each type parameter is decoded from a column (as serde bounds its parameters).
    let mut generics = input.generics.clone();
    let params: Vec<_> = generics.type_params().map(|p| p.ident.clone()).collect();
    let where_clause = generics.make_where_clause();
    for param in params {
        where_clause
            .predicates
            .push(syn::parse_quote!(#param: #krate::FromValue));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics #krate::FromRow for #name #ty_generics #where_clause {
            fn from_row(row: &#krate::Row) -> #krate::Result<Self> {
                #body
            }
        }
    })
}

trait UnrawString {
    fn unraw_string(&self) -> String;
}

impl UnrawString for syn::Ident {
    /// `r#type` names the column `type`.
    fn unraw_string(&self) -> String {
        let name = self.to_string();
        name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
    }
}

/// `#[from_row(rename = "col")]` on a field.
fn rename(attrs: &[syn::Attribute]) -> Result<Option<LitStr>> {
    let mut renamed = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("from_row")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                if renamed.is_some() {
                    return Err(meta.error("`rename` is given twice"));
                }
                renamed = Some(meta.value()?.parse::<LitStr>()?);
                Ok(())
            } else {
                Err(meta
                    .error("unknown `from_row` option on a field: expected `rename = \"column\"`"))
            }
        })?;
    }
    Ok(renamed)
}

/// `#[from_row(crate = "path")]` on the struct, for a re-exported `transactional`.
fn crate_path(input: &DeriveInput) -> Result<TokenStream> {
    let mut krate = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("from_row")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let path: LitStr = meta.value()?.parse()?;
                krate = Some(path.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta
                    .error("unknown `from_row` option on a struct: expected `crate = \"path\"`"))
            }
        })?;
    }
    Ok(match krate {
        Some(path) => quote!(#path),
        None => quote!(::transactional),
    })
}
