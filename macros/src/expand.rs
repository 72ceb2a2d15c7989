//! Code generation: the checked options and the analyzed signature become the new body of
//! the function, which builds a `querycache::__private::Call` and runs the original body
//! through it.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{AttrStyle, Ident, ItemFn, ReturnType};

use crate::args::{FnInfo, Role};
use crate::attr::{ErrorCaching, Flavor, Options};
use crate::template::Template;
use crate::{Errors, fresh};

/// Checks what needs both the options and the signature: argument names in `row` and in
/// placeholders, error caching against the return type, unnamed key arguments.
pub(crate) fn check(options: &Options, info: &FnInfo, errors: &mut Errors) {
    if let Some(row) = &options.row
        && info.find(&row.unraw().to_string()).is_none()
    {
        errors.push(syn::Error::new_spanned(
            row,
            format!(
                "`row = {row}` must name an argument of the function (its value is the row's \
                 primary key); {}",
                info.describe_names()
            ),
        ));
    }
    for template in options.tags.iter().chain(&options.key) {
        check_template(template, info, errors);
    }
    if let Some(caching) = &options.errors
        && !info.returns_result
    {
        let option = caching.option();
        errors.push(syn::Error::new_spanned(
            option,
            format!(
                "`{option}` caches `Err` values, so it needs a function returning \
                 `Result<T, E>`; this one does not return a `Result`: remove `{option}`"
            ),
        ));
    }
    options.fresh.check_signature(info, errors);
    if options.key.is_none() {
        for role in &info.args {
            if let Role::UnnamedKey(pat) = role {
                errors.push(syn::Error::new_spanned(
                    pat,
                    "this argument is part of the cache key, which needs it by name: name \
                     this argument (`point: Point`) and destructure it in the body, or mark \
                     it #[cache_skip]",
                ));
            }
        }
    }
}

fn check_template(template: &Template, info: &FnInfo, errors: &mut Errors) {
    let mut reported: Vec<&str> = Vec::new();
    for name in template.placeholders() {
        if info.find(name).is_none() && !reported.contains(&name) {
            reported.push(name);
            errors.push(syn::Error::new_spanned(
                &template.lit,
                format!(
                    "placeholder `{{{name}}}` does not name an argument of the function; {}",
                    info.describe_names()
                ),
            ));
        }
    }
}

/// The function with its body replaced. `func` has been checked: no errors were found.
pub(crate) fn expand(func: ItemFn, options: &Options, info: &FnInfo) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    let (outer, inner): (Vec<_>, Vec<_>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer));
    let stmts = &block.stmts;
    let ret_ty = match &sig.output {
        ReturnType::Type(_, ty) => ty.to_token_stream(),
        // Rejected by `FnInfo::analyze`; `()` keeps the output well-formed regardless.
        ReturnType::Default => quote!(()),
    };
    let ret_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => Span::call_site(),
    };

    // Hygienic: user code cannot see or shadow it.
    let call = Ident::new("__qc_call", Span::mixed_site());
    let cache = match &options.cache {
        Some(expr) => quote_spanned!(expr.span()=> ::querycache::__private::cache_of(&(#expr))),
        None => quote!(::querycache::__private::global()),
    };
    let fn_name = sig.ident.unraw().to_string();
    let namespace = match &options.namespace {
        Some(lit) => lit.clone(),
        None => syn::LitStr::new(&fn_name, sig.ident.span()),
    };

    // A method's key names its type: two impls in one module may have methods of the same
    // name and arguments, and must not share entries.
    let method_of = if info.args.iter().any(|role| matches!(role, Role::Receiver)) {
        quote!(#call.method_of::<Self>();)
    } else {
        TokenStream::new()
    };

    let mut setup = Vec::new();
    if let Some(ttl) = &options.ttl {
        let secs = Literal::u64_suffixed(ttl.secs);
        setup.push(quote_spanned!(ttl.span=> #call.ttl_secs(#secs);));
    }
    if options.flavor == Flavor::Count {
        setup.push(quote!(#call.count_query();));
    }
    if let Some((percent, span)) = options.jitter {
        setup.push(quote_spanned!(span=> #call.jitter_percent(#percent);));
    }
    match &options.errors {
        Some(ErrorCaching::Ttl(_, ttl)) => {
            let secs = Literal::u64_suffixed(ttl.secs);
            setup.push(quote_spanned!(ttl.span=> #call.error_ttl_secs(#secs);));
        }
        Some(ErrorCaching::Default(name)) => {
            setup.push(quote_spanned!(name.span()=> #call.cache_errors();));
        }
        None => {}
    }
    setup.extend(options.fresh.setup(&call));
    // The tags are built after the hit check: a hit does not need them.
    let mut tags = Vec::new();
    if !options.models.is_empty() {
        tags.push(models(&call, options, info));
    }
    let find = |name: &str| info.find(name);
    for tag in &options.tags {
        let tag = tag.to_string_expr(find);
        tags.push(quote!(#call.tag(#tag);));
    }
    // The connection probes, shared with the `_invalidate` companion: the cache and the
    // database a call reads through are found the same way for both.
    let mut conn_setup = Vec::new();
    for role in &info.args {
        match role {
            // Reborrowed for the probe, which picks the Diesel connection's own state (its
            // instrumentation, its transaction manager) when the type is one, by autoref.
            Role::Connection(conn, true) => {
                conn_setup.push(quote_spanned! {conn.span()=>
                    {
                        use ::querycache::__private::probe_traits::*;
                        let __qc_probe = ::querycache::__private::ConnProbe::new(&mut *#conn);
                        #call.connection_state((&&&&__qc_probe).__querycache_tx_state());
                    }
                });
                // A diesel-async connection learns its database with a query, awaited.
                if info.is_async {
                    conn_setup.push(quote_spanned! {conn.span()=>
                        {
                            // The probe (a `Cell`) is gone before the await: the caller's
                            // future stays `Send`.
                            let __qc_identify = {
                                use ::querycache::__private::probe_traits::*;
                                let __qc_probe =
                                    ::querycache::__private::AsyncConnProbe::new(&mut *#conn);
                                (&&__qc_probe).__querycache_identify()
                            };
                            #call.identified(__qc_identify.await);
                        }
                    });
                }
            }
            Role::Connection(conn, false) => {
                conn_setup.push(quote_spanned!(conn.span()=> #call.connection(&#conn);));
            }
            _ => {}
        }
    }
    setup.extend(conn_setup.iter().cloned());
    let key_setup = match &options.key {
        Some(key) => {
            let key = key.to_string_expr(find);
            quote!(#call.key_template(#key);)
        }
        None => key_args(&call, info, &fn_name, &namespace),
    };
    // The quick hit check, before the call is built, when nothing the call sets up is
    // needed to find the entry: no connection argument, no `key = ".."`, no early refresh,
    // some key argument. It checks what the call's own hit check would, which is then left
    // out; the call takes the arguments' hash it computed. A function whose one connection
    // argument is a shared reference (SeaORM's) has the check too, in the cache that
    // connection names; its call keeps its own hit check, for the connections the quick
    // one cannot tell about (a database other than the cache's default one).
    let connections: Vec<_> = info
        .args
        .iter()
        .filter_map(|role| match role {
            Role::Connection(conn, by_mut) => Some((conn, *by_mut)),
            _ => None,
        })
        .collect();
    let quick_conn = match connections.as_slice() {
        [(conn, false)] => Some(*conn),
        _ => None,
    };
    let quick = (connections.is_empty() || quick_conn.is_some())
        && options.key.is_none()
        && options.fresh.early_refresh.is_none()
        && info.args.iter().any(|role| matches!(role, Role::Key(_)));
    setup.push(if quick {
        quote!(#call.key_hashed(__qc_key);)
    } else {
        key_setup.clone()
    });
    let companion = companion(
        &sig,
        &vis,
        &outer,
        options,
        info,
        Companion {
            call: &call,
            cache: &cache,
            fn_name: &fn_name,
            namespace: &namespace,
            conn_setup: &conn_setup,
            key_setup: &key_setup,
        },
    );

    let run = match (&options.errors, info.returns_result) {
        (Some(_), _) => "run_result_caching_errors",
        (None, true) => "run_result",
        (None, false) => "run",
    };
    // A computation that may outlive its caller owns its arguments: `&T` ones are cloned
    // before it, and borrowed back at its start.
    let background = options.fresh.in_background(info);
    let (to_owned, borrow_back) = if background {
        fresh::owned_arguments(&mut sig, info)
    } else {
        (Vec::new(), Vec::new())
    };
    let run = match (background, options.fresh.has_hard_timeout()) {
        (false, _) => run.to_owned(),
        (true, false) => run.replacen("run", "run_fresh", 1),
        (true, true) => format!("{}_timeout", run.replacen("run", "run_fresh", 1)),
    };
    // Spanned at the return type: a type that cannot be cached is reported there.
    let run_call = Ident::new("__qc_call", Span::mixed_site().located_at(ret_span));
    let hit = match (&options.errors, info.returns_result) {
        (None, true) => "hit_ok",
        _ => "hit",
    };
    let quick_hit = if quick {
        let quick = Ident::new(&format!("quick_{hit}"), ret_span);
        let cache_ref = match &options.cache {
            Some(expr) => {
                quote_spanned!(expr.span()=> ::querycache::__private::cache_ref(&(#expr)))
            }
            None => quote!(::querycache::__private::global_ref()),
        };
        let (owner, path_id) = if info.args.iter().any(|role| matches!(role, Role::Receiver)) {
            (
                quote!(::core::option::Option::Some(
                    ::core::any::type_name::<Self>()
                )),
                quote!(::core::option::Option::None),
            )
        } else {
            (
                quote!(::core::option::Option::None),
                quote!(::core::option::Option::Some({
                    static __QC_PATH_ID: ::querycache::__private::PathId =
                        ::querycache::__private::PathId::new();
                    &__QC_PATH_ID
                })),
            )
        };
        let args = key_tuple(info);
        // The arguments' hash at the attribute, as the call's own `key_args` was: a key
        // argument that does not serialize is reported there (and on the argument).
        let key_hash = quote! {
            let __qc_site = ::querycache::__private::Site {
                path: ::core::concat!(::core::module_path!(), "::", #fn_name),
                owner: #owner,
                namespace: #namespace,
                path_id: #path_id,
            };
            let __qc_key = ::querycache::__private::key_hash(&__qc_site, &#args);
        };
        let check = match quick_conn {
            Some(conn) => {
                let quick = Ident::new(&format!("quick_conn_{hit}"), ret_span);
                let named = match &options.cache {
                    Some(_) => quote!(::core::option::Option::Some(#cache_ref)),
                    None => quote!(::core::option::Option::None),
                };
                quote_spanned! {ret_span=>
                    ::querycache::__private::#quick::<#ret_ty, _>(
                        &#conn, #named, &__qc_site, &__qc_key,
                    )
                }
            }
            None => quote_spanned! {ret_span=>
                ::querycache::__private::#quick::<#ret_ty>(#cache_ref, &__qc_site, &__qc_key)
            },
        };
        quote_spanned! {ret_span=>
            #key_hash
            if let ::core::option::Option::Some(__qc_hit) = #check {
                return __qc_hit;
            }
        }
    } else {
        TokenStream::new()
    };
    // With `cache = ..`, the hit reads the named cache in place (no clone of its `Arc`);
    // the call is given its own handle only when it goes on.
    let (fn_cache, hit) = match &options.cache {
        Some(expr) if quick && quick_conn.is_none() => (
            quote!(::querycache::__private::named_later()),
            quote_spanned!(ret_span=> #run_call.named(&(#expr));),
        ),
        Some(expr) => {
            let hit = Ident::new(&format!("{hit}_in"), ret_span);
            (
                quote!(::querycache::__private::named_later()),
                quote_spanned! {ret_span=>
                    if let ::core::option::Option::Some(__qc_hit) =
                        #run_call.#hit::<#ret_ty, _>(&(#expr))
                    {
                        return __qc_hit;
                    }
                    #run_call.named(&(#expr));
                },
            )
        }
        None if quick && quick_conn.is_none() => (cache.clone(), TokenStream::new()),
        None => {
            let hit = Ident::new(hit, ret_span);
            (
                cache.clone(),
                quote_spanned! {ret_span=>
                    if let ::core::option::Option::Some(__qc_hit) = #run_call.#hit::<#ret_ty>() {
                        return __qc_hit;
                    }
                },
            )
        }
    };
    let run = if info.is_async {
        let run = Ident::new(&run, ret_span);
        quote_spanned! {ret_span=>
            #(#to_owned)*
            #run_call.#run(::querycache::__private::typed::<#ret_ty, _>(async move {
                #(#borrow_back)*
                #(#stmts)*
            }))
            .await
        }
    } else {
        // A plain fn: the body becomes a closure run on the calling thread.
        let run = Ident::new(&format!("{run}_sync"), ret_span);
        quote_spanned! {ret_span=>
            #run_call.#run(::querycache::__private::typed_fn::<#ret_ty, _>(move || {
                #(#stmts)*
            }))
        }
    };

    let rest = quote! {
        let mut #call = ::querycache::__private::Call::new(
            #fn_cache,
            ::core::concat!(::core::module_path!(), "::", #fn_name),
            #namespace,
        );
        #method_of
        #(#setup)*
        #hit
        #(#tags)*
        #run
    };
    // An async function with the quick hit check runs the rest (the call, the
    // computation) as a boxed future of its own: its own future then holds the arguments
    // and a pointer, not the kilobytes of the call's machinery, which every hit would
    // otherwise carry and copy wherever its caller moves the future. Only a miss boxes.
    let rest = if quick && info.is_async {
        quote! {
            ::std::boxed::Box::pin(async move { #rest }).await
        }
    } else {
        rest
    };

    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #quick_hit
            #rest
        }
        #companion
    }
}

/// The parts of the expansion the `_invalidate` companion shares with the function.
struct Companion<'a> {
    call: &'a Ident,
    cache: &'a TokenStream,
    fn_name: &'a str,
    namespace: &'a syn::LitStr,
    conn_setup: &'a [TokenStream],
    key_setup: &'a TokenStream,
}

/// `<fn>_invalidate`: removes the entry one call would read. Its arguments are the
/// function's connection arguments and the arguments its key is made of (the key arguments,
/// or the placeholders of `key = ".."`), in order; it finds the cache and the key exactly as
/// the call does, and returns whether an entry was removed. `async` when the function is.
/// None for a method (`self`), nor with `invalidate = false`.
fn companion(
    sig: &syn::Signature,
    vis: &syn::Visibility,
    outer: &[syn::Attribute],
    options: &Options,
    info: &FnInfo,
    parts: Companion<'_>,
) -> TokenStream {
    let Companion {
        call,
        cache,
        fn_name,
        namespace,
        conn_setup,
        key_setup,
    } = parts;
    if options.no_companion || info.args.iter().any(|role| matches!(role, Role::Receiver)) {
        return TokenStream::new();
    }
    let in_key = |name: &Ident| match &options.key {
        Some(key) => key.placeholders().any(|p| name.unraw() == p),
        None => true,
    };
    // `cache = <expr>` may name arguments (`#[cache_skip] cache: &Cache`): the companion
    // takes those too, to find the same cache.
    let mut cache_names = Vec::new();
    if let Some(expr) = &options.cache {
        idents_in(expr.to_token_stream(), &mut cache_names);
    }
    let in_cache = |name: &Ident| cache_names.iter().any(|n| n == &name.unraw().to_string());
    let inputs = sig
        .inputs
        .iter()
        .zip(&info.args)
        .filter_map(|(input, role)| {
            let syn::FnArg::Typed(arg) = input else {
                return None;
            };
            let name = match role {
                Role::Connection(name, _) => name,
                Role::Key(name) if in_key(name) || in_cache(name) => name,
                Role::Skipped(Some(name))
                    if (options.key.is_some() && in_key(name)) || in_cache(name) =>
                {
                    name
                }
                _ => return None,
            };
            let ty = &arg.ty;
            Some(quote!(#name: #ty))
        });
    let name = Ident::new(&format!("{fn_name}_invalidate"), sig.ident.span());
    let generics = &sig.generics;
    let where_clause = &sig.generics.where_clause;
    let cfgs = outer.iter().filter(|attr| attr.path().is_ident("cfg"));
    let doc = format!(
        " Removes the cached entry of `{fn_name}` for these arguments, from the cache and \
         under the key a call of `{fn_name}` with them reads (generated by `#[cached_query]`); \
         returns whether there was one. A computation of it in flight will not store its \
         result."
    );
    let (asyncness, finish) = if info.is_async {
        (quote!(async), quote!(#call.invalidate().await))
    } else {
        (TokenStream::new(), quote!(#call.invalidate_sync()))
    };
    quote! {
        #(#cfgs)*
        #[doc = #doc]
        #[allow(dead_code, clippy::needless_lifetimes)]
        #vis #asyncness fn #name #generics (#(#inputs),*) -> bool #where_clause {
            let mut #call = ::querycache::__private::Call::new(
                #cache,
                ::core::concat!(::core::module_path!(), "::", #fn_name),
                #namespace,
            );
            #(#conn_setup)*
            #key_setup
            #finish
        }
    }
}

/// Every identifier in `tokens`, groups included, into `names`.
fn idents_in(tokens: TokenStream, names: &mut Vec<String>) {
    for tree in tokens {
        match tree {
            proc_macro2::TokenTree::Ident(ident) => names.push(ident.unraw().to_string()),
            proc_macro2::TokenTree::Group(group) => idents_in(group.stream(), names),
            _ => {}
        }
    }
}

/// `__qc_call.model(..)` per model, `model_row(..)` for the first one with `row = id`.
///
/// The table comes from `ModelProbe`'s autoref resolution (a `CacheModel` impl first, then
/// a SeaORM entity), whose traits are imported in a block of their own: the user's body
/// does not see them.
fn models(call: &Ident, options: &Options, info: &FnInfo) -> TokenStream {
    let statements = options.models.iter().enumerate().map(|(index, model)| {
        let span = model.span();
        let table = quote_spanned! {span=>
            (&&::querycache::__private::ModelProbe::<#model>::new()).__querycache_table()
        };
        let row = (index == 0)
            .then_some(options.row.as_ref())
            .flatten()
            .and_then(|row| info.find(&row.unraw().to_string()).map(|arg| (row, arg)));
        match row {
            Some((row, arg)) => {
                let mut arg = arg.clone();
                arg.set_span(row.span());
                quote_spanned!(row.span()=> #call.model_row(#table, &#arg);)
            }
            None => quote_spanned!(span=> #call.model(#table);),
        }
    });
    quote! {
        {
            use ::querycache::__private::probe_traits::*;
            #(#statements)*
        }
    }
}

/// `__qc_call.key_hashed(key_hash(&site, &(a, b,)))`, the default key: the same hashing,
/// with the same bound at the same place, as the quick hit check's (a key argument that
/// does not serialize is then reported once for the tuple, not once per use of it).
///
/// Each argument goes through `__private::key_argument`, whose bound (`KeyArgument`, with a
/// `#[diagnostic::on_unimplemented]` message) exists only for `Serialize` types. One that is
/// not serializable is then reported once, on the argument itself, saying what to do,
/// instead of on the whole tuple. The JSON, and so the key, is the same as that of
/// `&(&a, &b,)`.
fn key_args(call: &Ident, info: &FnInfo, fn_name: &str, namespace: &syn::LitStr) -> TokenStream {
    let args = key_tuple(info);
    let owner = if info.args.iter().any(|role| matches!(role, Role::Receiver)) {
        quote!(::core::option::Option::Some(
            ::core::any::type_name::<Self>()
        ))
    } else {
        quote!(::core::option::Option::None)
    };
    quote! {
        #call.key_hashed(::querycache::__private::key_hash(
            &::querycache::__private::Site {
                path: ::core::concat!(::core::module_path!(), "::", #fn_name),
                owner: #owner,
                namespace: #namespace,
                path_id: ::core::option::Option::None,
            },
            &#args,
        ));
    }
}

/// `(a, b,)` of the key arguments, each through `__private::key_argument` (see
/// [`key_args`]); `()` without any.
fn key_tuple(info: &FnInfo) -> TokenStream {
    let args: Vec<_> = info
        .args
        .iter()
        .filter_map(|role| match role {
            Role::Key(arg) => {
                let span = arg.span();
                Some(quote_spanned!(span=> ::querycache::__private::key_argument(&#arg),))
            }
            _ => None,
        })
        .collect();
    if args.is_empty() {
        return quote!(());
    }
    quote!((#(#args)*))
}
