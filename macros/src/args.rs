//! The cached function's signature: which arguments make the key, which are connections,
//! which are skipped, and whether it returns a `Result`.

use quote::ToTokens as _;
use syn::ext::IdentExt as _;
use syn::{
    Attribute, FnArg, GenericParam, Generics, Ident, Pat, PatIdent, ReturnType, Signature, Token,
    Type, TypeParamBound, WherePredicate,
};

use crate::Errors;

/// Types that are database connections (the last segment of their path, after `&`/`&mut`),
/// besides every type whose name ends with `Connection`.
const CONNECTION_TYPES: &[&str] = &[
    "DatabaseConnection",
    "DatabaseTransaction",
    "DbConn",
    "CachedConnection",
    "CachedTransaction",
    "PgConnection",
    "SqliteConnection",
    "MysqlConnection",
    "PooledConnection",
    "Pool",
    "AsyncPgConnection",
    "AsyncMysqlConnection",
    // diesel-async's wrapper of a synchronous connection (its way to SQLite).
    "SyncConnectionWrapper",
];

/// Traits whose implementors are database connections (`impl ConnectionTrait`, `C:
/// ConnectionTrait`).
const CONNECTION_TRAITS: &[&str] = &[
    "ConnectionTrait",
    "TransactionTrait",
    "Connection",
    "StreamTrait",
];

/// What an argument is to the cache.
pub(crate) enum Role {
    /// `self`, `&self`, `&mut self`, `self: Arc<Self>`...: never part of the key.
    Receiver,
    /// Part of the default key.
    Key(Ident),
    /// Part of the default key, but its pattern is not a plain name.
    UnnamedKey(Box<Pat>),
    /// A connection: not part of the key, probed for its transaction state. `true` when its
    /// type is `&mut _` (Diesel's connections), which the probe reborrows.
    Connection(Ident, bool),
    /// `#[cache_skip]`, or the pattern `_`: not part of the key.
    Skipped(Option<Ident>),
}

/// An argument that a computation outliving the call (a background refresh, a computation
/// its caller stopped waiting for) cannot simply take by move.
pub(crate) enum Borrowed {
    /// `name: &T`: cloned into a `T::Owned` that the computation owns, and borrowed back as
    /// `&T` inside it. `mut` is the pattern's, which goes to that inner binding.
    Shared {
        name: Ident,
        mutability: Option<Token![mut]>,
        ty: Box<Type>,
    },
    /// An argument that cannot be owned that way, with what is wrong with it.
    Unownable(proc_macro2::TokenStream, Unownable),
}

/// Why an argument cannot be moved into a computation that outlives the call.
#[derive(Clone, Copy)]
pub(crate) enum Unownable {
    /// `&self`, `&mut self`, `self: &Self`...
    Receiver,
    /// `&mut T`.
    Mutable,
    /// `&T` whose `T` is written with `impl Trait`, which the generated code cannot name.
    ImplTrait,
    /// `&T` bound to a pattern rather than a name.
    Pattern,
}

/// What the macro needs to know about the function's signature.
pub(crate) struct FnInfo {
    /// One per argument, in order.
    pub(crate) args: Vec<Role>,
    /// The arguments that borrow, in order (see [`Borrowed`]).
    pub(crate) borrowed: Vec<Borrowed>,
    /// Whether the return type is `Result<..>` (or `some::path::Result<..>`, or an alias
    /// whose name ends with `Result`, such as `QueryResult<..>`).
    pub(crate) returns_result: bool,
    /// `async fn`, or a plain `fn` (Diesel's synchronous API).
    pub(crate) is_async: bool,
}

impl FnInfo {
    /// Analyzes `sig`, removing `#[cache_skip]` from its arguments and reporting every
    /// problem into `errors`.
    pub(crate) fn analyze(sig: &mut Signature, macro_name: &str, errors: &mut Errors) -> FnInfo {
        check_qualifiers(sig, macro_name, errors);
        let returns_result = check_output(&sig.output, macro_name, errors);
        let connection_params = connection_type_params(&sig.generics);
        let mut args = Vec::new();
        let mut borrowed = Vec::new();
        for input in &mut sig.inputs {
            borrowed.extend(borrowing(input));
            let role = match input {
                FnArg::Receiver(receiver) => {
                    if let Some(attr) = take_cache_skip(&mut receiver.attrs, errors) {
                        errors.push(syn::Error::new_spanned(
                            attr,
                            "`self` is never part of the key: remove this #[cache_skip]",
                        ));
                    }
                    Role::Receiver
                }
                FnArg::Typed(arg) => {
                    let skip = take_cache_skip(&mut arg.attrs, errors).is_some();
                    let name = match &*arg.pat {
                        Pat::Ident(PatIdent {
                            by_ref: None,
                            subpat: None,
                            ident,
                            ..
                        }) => Some(ident.clone()),
                        _ => None,
                    };
                    if is_connection(&arg.ty, &connection_params) {
                        // Even under #[cache_skip]: telling the cache about a transaction
                        // costs nothing and keeps reads inside it correct.
                        match (name, &*arg.pat) {
                            (Some(name), _) => Role::Connection(name, is_mut_reference(&arg.ty)),
                            (None, Pat::Wild(_)) => Role::Skipped(None),
                            (None, _) if skip => Role::Skipped(None),
                            (None, pat) => {
                                errors.push(syn::Error::new_spanned(
                                    pat,
                                    "name this connection argument (`db: &DatabaseConnection`) \
                                     so the cache can tell whether the call runs in a \
                                     transaction, or mark it #[cache_skip]",
                                ));
                                Role::Skipped(None)
                            }
                        }
                    } else if skip || matches!(&*arg.pat, Pat::Wild(_)) {
                        Role::Skipped(name)
                    } else {
                        match name {
                            Some(name) => Role::Key(name),
                            None => Role::UnnamedKey(arg.pat.clone()),
                        }
                    }
                }
            };
            args.push(role);
        }
        FnInfo {
            args,
            borrowed,
            returns_result,
            is_async: sig.asyncness.is_some(),
        }
    }

    /// The named arguments (not `self`), for placeholders and `row`.
    pub(crate) fn names(&self) -> impl Iterator<Item = &Ident> {
        self.args.iter().filter_map(|role| match role {
            Role::Key(name) | Role::Connection(name, _) | Role::Skipped(Some(name)) => Some(name),
            _ => None,
        })
    }

    /// The argument called `name`.
    pub(crate) fn find(&self, name: &str) -> Option<&Ident> {
        self.names().find(|ident| ident.unraw() == name)
    }

    /// `"`a`, `b`"`, or a note that there are none: for error messages.
    pub(crate) fn describe_names(&self) -> String {
        let names: Vec<String> = self
            .names()
            .map(|name| format!("`{}`", name.unraw()))
            .collect();
        if names.is_empty() {
            "the function has no named arguments".to_owned()
        } else {
            format!("the arguments are {}", names.join(", "))
        }
    }
}

/// How `input` borrows, if it does: see [`Borrowed`].
fn borrowing(input: &FnArg) -> Option<Borrowed> {
    let unownable = |tokens: &dyn quote::ToTokens, why| {
        Some(Borrowed::Unownable(tokens.to_token_stream(), why))
    };
    match input {
        FnArg::Receiver(receiver) => match strip_groups(&receiver.ty) {
            Type::Reference(_) => unownable(receiver, Unownable::Receiver),
            _ => None,
        },
        FnArg::Typed(arg) => {
            let Type::Reference(reference) = strip_groups(&arg.ty) else {
                return None;
            };
            if reference.mutability.is_some() {
                return unownable(&arg.ty, Unownable::Mutable);
            }
            match &*arg.pat {
                // Never bound: nothing to move.
                Pat::Wild(_) => None,
                Pat::Ident(PatIdent {
                    by_ref: None,
                    subpat: None,
                    ident,
                    mutability,
                    ..
                }) => {
                    if names_impl_trait(reference.elem.to_token_stream()) {
                        return unownable(&arg.ty, Unownable::ImplTrait);
                    }
                    Some(Borrowed::Shared {
                        name: ident.clone(),
                        mutability: *mutability,
                        ty: reference.elem.clone(),
                    })
                }
                pat => unownable(pat, Unownable::Pattern),
            }
        }
    }
}

/// Whether a type's tokens contain `impl` (`impl Trait`, at any depth).
fn names_impl_trait(tokens: proc_macro2::TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        proc_macro2::TokenTree::Ident(ident) => ident == "impl",
        proc_macro2::TokenTree::Group(group) => names_impl_trait(group.stream()),
        _ => false,
    })
}

/// Rejects what `#[cached_query]` cannot wrap: `const`, `unsafe`, `extern` fns.
fn check_qualifiers(sig: &Signature, macro_name: &str, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            format!("#[{macro_name}] cannot cache a `const fn`: remove `const`"),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            format!(
                "#[{macro_name}] does not support `unsafe fn`: make the function safe and \
                 put the unsafe code in an `unsafe {{ .. }}` block inside it"
            ),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            format!("#[{macro_name}] does not support `extern` functions: remove the ABI"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            format!("#[{macro_name}] does not support variadic functions"),
        ));
    }
}

/// Checks the return type; `true` when it is a `Result`.
fn check_output(output: &ReturnType, macro_name: &str, errors: &mut Errors) -> bool {
    let ty = match output {
        ReturnType::Default => {
            errors.push(syn::Error::new_spanned(
                output,
                format!(
                    "a cached function must return a value: add `-> T` where `T` is what \
                     #[{macro_name}] stores (serializable and `Clone`)"
                ),
            ));
            return false;
        }
        ReturnType::Type(_, ty) => ty,
    };
    match strip_groups(ty) {
        Type::ImplTrait(impl_trait) => {
            errors.push(syn::Error::new_spanned(
                impl_trait,
                format!(
                    "#[{macro_name}] cannot cache an `impl Trait` return type: name the \
                     concrete type, which must be serializable and `Clone`"
                ),
            ));
            false
        }
        Type::Path(path) => {
            path.qself.is_none()
                && path.path.segments.last().is_some_and(|last| {
                    // `Result<T, E>`, `io::Result<T>`, and aliases named like Diesel's
                    // `QueryResult<T>`.
                    last.ident.to_string().ends_with("Result")
                        && matches!(last.arguments, syn::PathArguments::AngleBracketed(_))
                })
        }
        _ => false,
    }
}

/// Removes `#[cache_skip]` (or `#[querycache::cache_skip]`) from `attrs`; returns it.
fn take_cache_skip(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Option<Attribute> {
    let mut found = None;
    attrs.retain(|attr| {
        let is_skip = attr
            .path()
            .segments
            .last()
            .is_some_and(|last| last.ident == "cache_skip");
        if !is_skip {
            return true;
        }
        if attr.meta.require_path_only().is_err() {
            errors.push(syn::Error::new_spanned(
                attr,
                "#[cache_skip] takes no arguments: write `#[cache_skip] name: Type`",
            ));
        }
        found = Some(attr.clone());
        false
    });
    found
}

/// The type parameters bounded by a connection trait, in the parameter list or the where
/// clause.
fn connection_type_params(generics: &Generics) -> Vec<Ident> {
    let mut params: Vec<Ident> = generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(param) if has_connection_bound(param.bounds.iter()) => {
                Some(param.ident.clone())
            }
            _ => None,
        })
        .collect();
    if let Some(where_clause) = &generics.where_clause {
        for predicate in &where_clause.predicates {
            if let WherePredicate::Type(predicate) = predicate
                && has_connection_bound(predicate.bounds.iter())
                && let Type::Path(path) = strip_groups(&predicate.bounded_ty)
                && path.qself.is_none()
                && let Some(ident) = path.path.get_ident()
            {
                params.push(ident.clone());
            }
        }
    }
    params
}

fn has_connection_bound<'a>(mut bounds: impl Iterator<Item = &'a TypeParamBound>) -> bool {
    bounds.any(|bound| match bound {
        TypeParamBound::Trait(bound) => bound
            .path
            .segments
            .last()
            .is_some_and(|last| CONNECTION_TRAITS.iter().any(|name| last.ident == name)),
        _ => false,
    })
}

/// Whether an argument of type `ty` is a database connection.
fn is_connection(ty: &Type, connection_params: &[Ident]) -> bool {
    let mut ty = strip_groups(ty);
    while let Type::Reference(reference) = ty {
        ty = strip_groups(&reference.elem);
    }
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return false;
            };
            CONNECTION_TYPES.iter().any(|name| last.ident == name)
                // An application's own connection types: `AnyConnection` (Diesel's
                // `MultiConnection`), `AppConnection`...
                || last.ident.to_string().ends_with("Connection")
                || path
                    .path
                    .get_ident()
                    .is_some_and(|ident| connection_params.contains(ident))
        }
        Type::ImplTrait(impl_trait) => has_connection_bound(impl_trait.bounds.iter()),
        Type::TraitObject(object) => has_connection_bound(object.bounds.iter()),
        _ => false,
    }
}

/// Whether `ty` is `&mut _`.
fn is_mut_reference(ty: &Type) -> bool {
    matches!(strip_groups(ty), Type::Reference(reference) if reference.mutability.is_some())
}

/// `ty` without invisible groups and parentheses.
fn strip_groups(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return ty,
        }
    }
}
