//! `#[derive(CacheModel)]`: a model type names its table for `models = [..]`.
//!
//! The table comes from `#[cache_model(table = "..", schema = "..")]` when given, else from
//! Diesel's `#[diesel(table_name = path::to::table)]`, whose SQL name the generated code reads
//! from the `table!` declaration itself (so `#[sql_name]` is honoured).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, LitStr, Path};

/// What the attributes say.
enum Source {
    Explicit {
        table: LitStr,
        schema: Option<LitStr>,
    },
    Diesel(Path),
}

pub(crate) fn derive(input: DeriveInput) -> TokenStream {
    match source(&input) {
        Ok(source) => implement(&input, source),
        Err(error) => error.to_compile_error(),
    }
}

fn source(input: &DeriveInput) -> syn::Result<Source> {
    let mut explicit: Option<(LitStr, Option<LitStr>)> = None;
    let mut diesel: Option<Path> = None;
    for attr in &input.attrs {
        if attr.path().is_ident("cache_model") {
            let (mut table, mut schema) = (None, None);
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("table") {
                    table = Some(meta.value()?.parse::<LitStr>()?);
                    Ok(())
                } else if meta.path.is_ident("schema") {
                    schema = Some(meta.value()?.parse::<LitStr>()?);
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown `cache_model` option; the options are `table = \"..\"` and \
                         `schema = \"..\"`",
                    ))
                }
            })?;
            let Some(table) = table else {
                return Err(syn::Error::new_spanned(
                    attr,
                    "`#[cache_model(..)]` needs `table = \"..\"`, the table's SQL name",
                ));
            };
            if table.value().is_empty() {
                return Err(syn::Error::new_spanned(&table, "the table name is empty"));
            }
            explicit = Some((table, schema));
        } else if attr.path().is_ident("diesel") {
            // Other Diesel options (`check_for_backend`, `primary_key`...) are Diesel's.
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("table_name") {
                    diesel = Some(meta.value()?.parse::<Path>()?);
                } else if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                } else if meta.input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let _: TokenStream = content.parse()?;
                }
                Ok(())
            });
        }
    }
    match (explicit, diesel) {
        (Some((table, schema)), _) => Ok(Source::Explicit { table, schema }),
        (None, Some(path)) => Ok(Source::Diesel(path)),
        (None, None) => Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(CacheModel)] needs the table: `#[cache_model(table = \"songs\")]` (and \
             `schema = \"..\"` outside the default schema), or Diesel's \
             `#[diesel(table_name = songs)]`",
        )),
    }
}

fn implement(input: &DeriveInput, source: Source) -> TokenStream {
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let consts = match source {
        Source::Explicit { table, schema } => {
            let schema = match schema {
                Some(schema) => quote!(::core::option::Option::Some(#schema)),
                None => quote!(::core::option::Option::None),
            };
            quote! {
                const TABLE: &'static str = #table;
                const SCHEMA: ::core::option::Option<&'static str> = #schema;
            }
        }
        Source::Diesel(path) => quote! {
            const TABLE: &'static str =
                <#path::table as ::querycache::__private::DieselTableName>::NAME;
        },
    };
    quote! {
        impl #impl_generics ::querycache::CacheModel for #name #ty_generics #where_clause {
            #consts
        }
    }
}
