//! The arguments of `#[cached_query(..)]`, `#[cache_model_query(..)]` and
//! `#[cache_count_query(..)]`: parsed into [`Args`] (syntax), then checked into
//! [`Options`] (meaning). Checks that need the function's signature live in `expand.rs`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitStr, Token, Type, UnOp, bracketed};

use crate::Errors;
use crate::fresh::{self, Freshness};
use crate::template::Template;

/// Which macro is being expanded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Flavor {
    /// `#[cached_query(..)]`: options only.
    Query,
    /// `#[cache_model_query(Model, ..)]`: a model first, then options.
    Model,
    /// `#[cache_count_query(Model, ..)]`: as `Model`, plus the count-query marker.
    Count,
}

impl Flavor {
    /// The macro's name, as users write it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Flavor::Query => "cached_query",
            Flavor::Model => "cache_model_query",
            Flavor::Count => "cache_count_query",
        }
    }

    fn takes_model_first(self) -> bool {
        self != Flavor::Query
    }
}

/// Every option `#[cached_query]` knows, in the order its docs list them.
const OPTIONS: &[&str] = &[
    "ttl",
    "models",
    "row",
    "tags",
    "key",
    "namespace",
    "error_ttl",
    "cache_errors",
    "jitter",
    "swr",
    "early_refresh",
    "fail_safe",
    "fail_safe_throttle",
    "soft_timeout",
    "hard_timeout",
    "cache",
    "invalidate",
];

/// The arguments as written: an optional leading model type, then `name = value` options.
#[derive(Default)]
pub(crate) struct Args {
    /// A leading type path (`song::Entity`), for the model-first macros.
    positional: Option<Type>,
    options: Vec<Opt>,
    /// Syntax errors; parsing goes on after each so that all of them are reported.
    errors: Errors,
}

/// One `name = value` option, or the bare flag `cache_errors`.
struct Opt {
    name: Ident,
    value: Value,
}

enum Value {
    /// `cache_errors`.
    Flag,
    /// `ttl = ..`, `error_ttl = ..`, `swr = ..`, `fail_safe = ..`, `fail_safe_throttle = ..`:
    /// whole seconds or a duration string, checked later.
    Duration(Expr),
    /// `soft_timeout = ..`, `hard_timeout = ..`: as `Duration`, milliseconds allowed.
    Millis(Expr),
    /// `early_refresh = 1.0`: XFetch's beta, checked later.
    Beta(Expr),
    /// `models = [..]`.
    Types(Vec<Type>, Span),
    /// `row = id`.
    Ident(Ident),
    /// `tags = [..]`.
    Strs(Vec<LitStr>),
    /// `key = ".."`, `namespace = ".."`.
    Str(LitStr),
    /// `jitter = 10`: a percentage, checked later.
    Percent(Expr),
    /// `cache = <expr>`.
    Expr(Expr),
    /// `invalidate = false`.
    Bool(syn::LitBool),
    /// An unknown option; its value was skipped.
    Unknown,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut first = true;
        while !input.is_empty() {
            let parsed = if first && starts_with_type(input) {
                input.parse().map(|ty| args.positional = Some(ty))
            } else {
                parse_option(input).map(|opt| args.options.push(opt))
            };
            first = false;
            if let Err(error) = parsed {
                args.errors.push(error);
                skip_to_comma(input);
            }
            if input.is_empty() {
                break;
            }
            if let Err(error) = input.parse::<Token![,]>() {
                args.errors.push(syn::Error::new(
                    error.span(),
                    "expected `,` between options: `ttl = 60, models = [song::Entity]`",
                ));
                skip_to_comma(input);
                // Either a comma or the end.
                let _ = input.parse::<Option<Token![,]>>()?;
            }
        }
        Ok(args)
    }
}

/// Whether the input starts with something other than an option: a model type such as
/// `song::Entity` or `Song`.
fn starts_with_type(input: ParseStream<'_>) -> bool {
    let fork = input.fork();
    let Ok(ident) = fork.call(Ident::parse_any) else {
        // `<X as Trait>::Entity`, or something that is no option at all.
        return true;
    };
    if fork.peek(Token![=]) {
        return false;
    }
    let ends_here = fork.is_empty() || fork.peek(Token![,]);
    // A bare known option (`cache_errors`, or `ttl` missing its value) is an option; any
    // other bare identifier may be a model type in scope (`Song`).
    !(ends_here && OPTIONS.contains(&ident.unraw().to_string().as_str()))
}

fn parse_option(input: ParseStream<'_>) -> syn::Result<Opt> {
    let name = input.call(Ident::parse_any)?;
    let option = name.to_string();
    if !OPTIONS.contains(&option.as_str()) {
        skip_to_comma(input);
        return Ok(Opt {
            name,
            value: Value::Unknown,
        });
    }
    if option == "cache_errors" {
        if input.peek(Token![=]) {
            return Err(syn::Error::new_spanned(
                &name,
                "`cache_errors` is a flag and takes no value: write `cache_errors` to cache \
                 errors for the configured error TTL, or `error_ttl = \"5m\"` to choose it",
            ));
        }
        return Ok(Opt {
            name,
            value: Value::Flag,
        });
    }
    if !input.peek(Token![=]) {
        return Err(syn::Error::new_spanned(
            &name,
            format!("`{option}` needs a value: {}", example(&option)),
        ));
    }
    input.parse::<Token![=]>()?;
    let value = match option.as_str() {
        "ttl" | "error_ttl" | "swr" | "fail_safe" | "fail_safe_throttle" => {
            Value::Duration(input.parse()?)
        }
        "soft_timeout" | "hard_timeout" => Value::Millis(input.parse()?),
        "early_refresh" => Value::Beta(input.parse()?),
        "jitter" => Value::Percent(input.parse()?),
        "models" => {
            let (content, span) = bracketed_list(input, &option)?;
            let types = Punctuated::<Type, Token![,]>::parse_terminated.parse2(content)?;
            Value::Types(types.into_iter().collect(), span)
        }
        "row" => Value::Ident(input.parse().map_err(|error| {
            syn::Error::new(error.span(), format!("expected {}", example(&option)))
        })?),
        "tags" => {
            let (content, _) = bracketed_list(input, &option)?;
            let tags = Punctuated::<LitStr, Token![,]>::parse_terminated
                .parse2(content)
                .map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        format!("expected a string literal: {}", example(&option)),
                    )
                })?;
            Value::Strs(tags.into_iter().collect())
        }
        "key" | "namespace" => Value::Str(input.parse().map_err(|error| {
            syn::Error::new(error.span(), format!("expected {}", example(&option)))
        })?),
        "invalidate" => Value::Bool(input.parse().map_err(|error| {
            syn::Error::new(error.span(), format!("expected {}", example(&option)))
        })?),
        _ => Value::Expr(input.parse()?),
    };
    Ok(Opt { name, value })
}

/// The tokens inside `[..]` after `option =`, and the brackets' span; an error showing the
/// list syntax when there are no brackets. The contents are returned unparsed, so that a
/// mistake inside is reported without cutting short the options that follow.
fn bracketed_list(input: ParseStream<'_>, option: &str) -> syn::Result<(TokenStream, Span)> {
    if !input.peek(syn::token::Bracket) {
        return Err(input.error(format!(
            "`{option}` takes a list in brackets: {}",
            example(option)
        )));
    }
    let content;
    let brackets = bracketed!(content in input);
    Ok((content.parse()?, brackets.span.join()))
}

/// An example of an option, for error messages.
fn example(option: &str) -> &'static str {
    match option {
        "ttl" => "`ttl = 3600` (seconds) or `ttl = \"1h\"`",
        "error_ttl" => "`error_ttl = 300` (seconds) or `error_ttl = \"5m\"`",
        "models" => "`models = [song::Entity, user::Entity]`",
        "row" => "an argument name: `row = id`",
        "tags" => "`tags = [\"user:{user_id}\", \"songs\"]`",
        "key" => "a string literal: `key = \"songs:popular:{limit}\"`",
        "namespace" => "a string literal: `namespace = \"songs\"`",
        "jitter" => "a percentage from 0 to 100: `jitter = 10`",
        "swr" => "`swr = 30` (seconds) or `swr = \"5m\"`",
        "early_refresh" => "a number above 0 and at most 100: `early_refresh = 1.0`",
        "fail_safe" => "`fail_safe = 3600` (seconds) or `fail_safe = \"1h\"`",
        "fail_safe_throttle" => {
            "`fail_safe_throttle = 30` (seconds) or `fail_safe_throttle = \"30s\"`"
        }
        "soft_timeout" => "`soft_timeout = \"250ms\"` or `soft_timeout = 1` (seconds)",
        "hard_timeout" => "`hard_timeout = \"2s\"` or `hard_timeout = 2` (seconds)",
        "cache" => "`cache = self.cache` (a `Cache`, `&Cache` or `Arc<Cache>`)",
        "invalidate" => "`invalidate = false` (no `<fn>_invalidate` companion)",
        _ => "`cache_errors`",
    }
}

/// Skips tokens up to (not including) the next top-level comma.
fn skip_to_comma(input: ParseStream<'_>) {
    while !input.is_empty() && !input.peek(Token![,]) {
        if input.parse::<TokenTree>().is_err() {
            break;
        }
    }
}

/// A duration option's value in whole seconds, with where it was written.
pub(crate) struct Secs {
    pub(crate) secs: u64,
    pub(crate) span: Span,
}

/// What to do with `Err` values.
pub(crate) enum ErrorCaching {
    /// `error_ttl = ..`.
    Ttl(Ident, Secs),
    /// `cache_errors`.
    Default(Ident),
}

impl ErrorCaching {
    /// The option's name, where it was written.
    pub(crate) fn option(&self) -> &Ident {
        match self {
            ErrorCaching::Ttl(name, _) | ErrorCaching::Default(name) => name,
        }
    }
}

/// The checked options.
pub(crate) struct Options {
    pub(crate) flavor: Flavor,
    pub(crate) ttl: Option<Secs>,
    /// The first one may carry the row dependency.
    pub(crate) models: Vec<Type>,
    pub(crate) row: Option<Ident>,
    pub(crate) tags: Vec<Template>,
    pub(crate) key: Option<Template>,
    pub(crate) namespace: Option<LitStr>,
    pub(crate) errors: Option<ErrorCaching>,
    /// `jitter = ..`: the percentage, where it was written.
    pub(crate) jitter: Option<(u8, Span)>,
    /// `swr`, `early_refresh`, `fail_safe`, `fail_safe_throttle` and the timeouts.
    pub(crate) fresh: Freshness,
    pub(crate) cache: Option<Expr>,
    /// `invalidate = false`: no `<fn>_invalidate` companion.
    pub(crate) no_companion: bool,
}

impl Options {
    /// Checks `args` for `flavor`, reporting every mistake into `errors`. What is returned
    /// holds the options that were valid.
    pub(crate) fn check(args: Args, flavor: Flavor, errors: &mut Errors) -> Options {
        errors.extend(args.errors);
        let mut options = Options {
            flavor,
            ttl: None,
            models: Vec::new(),
            row: None,
            tags: Vec::new(),
            key: None,
            namespace: None,
            errors: None,
            jitter: None,
            fresh: Freshness::default(),
            cache: None,
            no_companion: false,
        };
        let macro_name = flavor.name();
        let mut seen: Vec<String> = Vec::new();
        let mut models_given = false;
        match (args.positional, flavor.takes_model_first()) {
            (Some(model), true) => options.models.push(model),
            (None, true) => errors.push(syn::Error::new(
                Span::call_site(),
                format!(
                    "#[{macro_name}] needs the model it reads as its first argument: \
                     `#[{macro_name}(song::Entity, ttl = 60)]`"
                ),
            )),
            (Some(Type::Path(path)), false)
                if path.qself.is_none() && path.path.get_ident().is_some() =>
            {
                let name = path
                    .path
                    .get_ident()
                    .map(Ident::to_string)
                    .unwrap_or_default();
                errors.push(unknown_option(&path, &name, flavor));
            }
            (Some(ty), false) => errors.push(syn::Error::new_spanned(
                ty,
                "#[cached_query] takes `name = value` options: write \
                 `models = [song::Entity]`, or use `#[cache_model_query(song::Entity)]`",
            )),
            (None, false) => {}
        }
        for Opt { name, value } in args.options {
            let option = name.to_string();
            if seen.contains(&option) {
                errors.push(syn::Error::new_spanned(
                    &name,
                    format!("`{option}` is given twice; keep one"),
                ));
                continue;
            }
            seen.push(option.clone());
            match value {
                Value::Unknown => errors.push(unknown_option(&name, &option, flavor)),
                Value::Flag => match (&options.errors, options.fresh.fail_safe_option()) {
                    (Some(other), _) => errors.push(exclusive_error_options(&name, other)),
                    (None, Some(fail_safe)) => errors.push(fail_safe_and_errors(&name, fail_safe)),
                    (None, None) => options.errors = Some(ErrorCaching::Default(name)),
                },
                Value::Duration(expr) => match (duration_secs(&option, &expr), option.as_str()) {
                    (Err(error), _) => errors.push(error),
                    (Ok(secs), "ttl") => options.ttl = Some(secs),
                    (Ok(secs), "swr") => options.fresh.swr = Some((name, secs)),
                    (Ok(secs), "fail_safe" | "fail_safe_throttle") => match &options.errors {
                        Some(other) => errors.push(fail_safe_and_errors(&name, other.option())),
                        None if option == "fail_safe" => {
                            options.fresh.fail_safe = Some((name, secs));
                        }
                        None => options.fresh.fail_safe_throttle = Some((name, secs)),
                    },
                    (Ok(secs), _) => match (&options.errors, options.fresh.fail_safe_option()) {
                        (Some(other), _) => errors.push(exclusive_error_options(&name, other)),
                        (None, Some(fail_safe)) => {
                            errors.push(fail_safe_and_errors(&name, fail_safe));
                        }
                        (None, None) => options.errors = Some(ErrorCaching::Ttl(name, secs)),
                    },
                },
                Value::Millis(expr) => match fresh::duration_ms(&option, &expr, example(&option)) {
                    Err(error) => errors.push(error),
                    Ok(ms) if option == "soft_timeout" => {
                        options.fresh.soft_timeout = Some((name, ms));
                    }
                    Ok(ms) => options.fresh.hard_timeout = Some((name, ms)),
                },
                Value::Beta(expr) => match fresh::beta(&expr) {
                    Ok(beta) => options.fresh.early_refresh = Some((name, beta, expr.span())),
                    Err(error) => errors.push(error),
                },
                Value::Types(types, span) => {
                    models_given = true;
                    if flavor.takes_model_first() {
                        errors.push(syn::Error::new_spanned(
                            &name,
                            format!(
                                "#[{macro_name}] takes its model as the first argument, not \
                                 `models = [..]`; for several models write \
                                 `#[cached_query(models = [song::Entity, user::Entity])]`"
                            ),
                        ));
                    } else if types.is_empty() {
                        errors.push(syn::Error::new(
                            span,
                            "`models` is empty: name the models this query reads \
                             (`models = [song::Entity]`), or remove the option",
                        ));
                    }
                    for ty in types {
                        match &ty {
                            Type::Path(_) => options.models.push(ty),
                            _ => errors.push(syn::Error::new_spanned(
                                ty,
                                "expected a model type path such as `song::Entity` (a \
                                 SeaORM entity or a type implementing `querycache::CacheModel`)",
                            )),
                        }
                    }
                }
                Value::Ident(row) => options.row = Some(row),
                Value::Strs(tags) => {
                    for tag in tags {
                        match Template::parse(&tag, "tag") {
                            Ok(tag) => options.tags.push(tag),
                            Err(error) => errors.push(error),
                        }
                    }
                }
                Value::Str(lit) if option == "key" => match Template::parse(&lit, "key") {
                    Ok(key) => options.key = Some(key),
                    Err(error) => errors.push(error),
                },
                Value::Str(lit) => match check_namespace(&lit) {
                    Ok(()) => options.namespace = Some(lit),
                    Err(error) => errors.push(error),
                },
                Value::Percent(expr) => match percent(&expr) {
                    Ok(value) => options.jitter = Some((value, expr.span())),
                    Err(error) => errors.push(error),
                },
                Value::Expr(expr) => options.cache = Some(expr),
                Value::Bool(on) => options.no_companion = !on.value,
            }
        }
        // A `fail_safe` with an invalid value is reported as such, not as missing.
        options
            .fresh
            .check_together(seen.iter().any(|name| name == "fail_safe"), errors);
        if let Some(row) = &options.row
            && options.models.is_empty()
            && !models_given
            && !flavor.takes_model_first()
        {
            errors.push(syn::Error::new_spanned(
                row,
                "`row` names the row of the first model this query reads, so it needs \
                 `models`: `models = [song::Entity], row = id`",
            ));
        }
        options
    }
}

fn unknown_option(token: impl quote::ToTokens, option: &str, flavor: Flavor) -> syn::Error {
    let valid = OPTIONS
        .iter()
        .filter(|name| flavor == Flavor::Query || **name != "models")
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let what = if option.is_empty() {
        "unknown option".to_owned()
    } else {
        format!("unknown option `{option}`")
    };
    syn::Error::new_spanned(
        token,
        format!("{what} for #[{}]; the options are {valid}", flavor.name()),
    )
}

fn exclusive_error_options(second: &Ident, first: &ErrorCaching) -> syn::Error {
    syn::Error::new_spanned(
        second,
        format!(
            "`error_ttl` and `cache_errors` cannot be combined (`{}` is already given): \
             keep `error_ttl = ..` to choose how long errors are cached, or `cache_errors` \
             for the configured default",
            first.option()
        ),
    )
}

/// Fail-safe and error caching together: the error goes on the option written second
/// (either may come first).
fn fail_safe_and_errors(second: &Ident, first: &Ident) -> syn::Error {
    syn::Error::new_spanned(
        second,
        format!(
            "`{second}` cannot be combined with `{first}`: fail-safe answers a failed \
             computation with the last good value, while caching the error would answer it \
             with the error; keep `{first}` or `{second}`"
        ),
    )
}

/// A namespace is a non-empty string literal without whitespace or control characters.
fn check_namespace(lit: &LitStr) -> syn::Result<()> {
    let value = lit.value();
    if value.is_empty() {
        return Err(syn::Error::new_spanned(
            lit,
            "the namespace is empty: write a name such as `namespace = \"songs\"`, or remove \
             the option to use the function's name",
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(syn::Error::new_spanned(
            lit,
            "a namespace cannot contain whitespace: write `namespace = \"user_songs\"`",
        ));
    }
    Ok(())
}

/// The value of `jitter = ..`: an integer literal from 0 to 100.
fn percent(expr: &Expr) -> syn::Result<u8> {
    let wrong = || {
        syn::Error::new_spanned(
            expr,
            "`jitter` is a percentage of the TTL, an integer from 0 to 100: `jitter = 10` \
             lets each entry expire up to 10% early",
        )
    };
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => match int.base10_parse::<u8>() {
            Ok(value) if value <= 100 => Ok(value),
            _ => Err(wrong()),
        },
        _ => Err(wrong()),
    }
}

/// The value of `ttl = ..`, `error_ttl = ..`, `swr`, `fail_safe` or `fail_safe_throttle` in
/// seconds: an integer, or a duration string such as `"90s"`, `"30m"`, `"2h"`, `"1d"`,
/// `"1h30m"`. At least one second.
fn duration_secs(option: &str, expr: &Expr) -> syn::Result<Secs> {
    let span = expr.span();
    let secs = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u64>().map_err(|_| {
            syn::Error::new_spanned(
                int,
                format!("`{option}` is too large: the limit is {} seconds", u64::MAX),
            )
        })?,
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => parse_duration(&lit.value())
            .map_err(|why| syn::Error::new_spanned(lit, format!("{why} {}", example(option))))?,
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => {
            return Err(syn::Error::new_spanned(
                expr,
                format!("`{option}` cannot be negative: write {}", example(option)),
            ));
        }
        _ => {
            return Err(syn::Error::new_spanned(
                expr,
                format!(
                    "`{option}` takes a whole number of seconds or a duration string, \
                     written in the attribute: {}",
                    example(option)
                ),
            ));
        }
    };
    if secs == 0 {
        let hint = match option {
            "ttl" | "error_ttl" => " (to not cache at all, remove the attribute)",
            _ => ", or be left out",
        };
        return Err(syn::Error::new_spanned(
            expr,
            format!(
                "`{option}` must be at least 1 second{hint}: write {}",
                example(option)
            ),
        ));
    }
    Ok(Secs { secs, span })
}

/// Parses `"1h30m"` into seconds with querycache's one duration parser
/// (`querycache-duration`, which the configuration's `CACHE_*` variables use too). The error
/// says what is wrong; the caller appends an example.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    querycache_duration::parse_secs(text).map_err(|err| message(&err))
}

/// A duration error as the attribute reports it: what is wrong, then `; write` for the
/// caller's example. A bare number in quotes gets the hint to drop the quotes.
pub(crate) fn message(err: &querycache_duration::Error) -> String {
    match err.kind() {
        querycache_duration::ErrorKind::MissingUnit => {
            format!("{err}; for seconds, write an integer without quotes; write")
        }
        _ => format!("{err}; write"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    /// The parser is `querycache-duration`'s (tested there); the attribute's wording is
    /// this crate's: `; write` for the caller's example, and the hint on a quoted number.
    #[test]
    fn messages() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        assert_eq!(
            parse_duration("3600"),
            Err(
                "invalid duration \"3600\": a number needs a unit (`s`, `m`, `h` or `d`); for \
                 seconds, write an integer without quotes; write"
                    .to_owned()
            )
        );
        assert_eq!(
            parse_duration("30m1h"),
            Err(
                "invalid duration \"30m1h\": each unit may appear once, largest first \
                 (\"1d2h30m15s\"); write"
                    .to_owned()
            )
        );
    }
}
