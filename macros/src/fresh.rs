//! The freshness options: `swr`, `early_refresh`, `fail_safe`, `fail_safe_throttle`,
//! `soft_timeout` and `hard_timeout`. Their values are checked here (the syntax is parsed
//! in `attr.rs`), and so is what they need of the signature; here too are the generated
//! setters, and the arguments' conversion for a computation that may outlive its caller.
//!
//! Every option travels in the call's `EntryOptions`. An async fn with `swr`,
//! `early_refresh`, `soft_timeout` or `hard_timeout` also runs its body as a computation
//! that owns its arguments (`run_fresh*`), so that a refresh can run in the background and
//! a computation its caller stopped waiting for can finish; `&T` arguments are cloned into
//! it. Without timeouts, a function whose arguments cannot be owned (`&mut`, `&self`)
//! falls back to the refreshing caller waiting for its own computation.

use proc_macro2::{Literal, Span, TokenStream};
use quote::quote_spanned;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, ExprUnary, FnArg, Ident, Lit, Pat, Signature, UnOp};

use crate::Errors;
use crate::args::{Borrowed, FnInfo, Unownable};
use crate::attr::Secs;

/// A timeout in milliseconds, with where it was written.
pub(crate) struct Millis {
    pub(crate) ms: u64,
    pub(crate) span: Span,
}

/// The checked freshness options. Each remembers its name as written, for errors that
/// involve another option or the signature.
#[derive(Default)]
pub(crate) struct Freshness {
    pub(crate) swr: Option<(Ident, Secs)>,
    pub(crate) early_refresh: Option<(Ident, f64, Span)>,
    pub(crate) fail_safe: Option<(Ident, Secs)>,
    pub(crate) fail_safe_throttle: Option<(Ident, Secs)>,
    pub(crate) soft_timeout: Option<(Ident, Millis)>,
    pub(crate) hard_timeout: Option<(Ident, Millis)>,
}

impl Freshness {
    /// The fail-safe option given (`fail_safe` when both are), if any: it excludes error
    /// caching.
    pub(crate) fn fail_safe_option(&self) -> Option<&Ident> {
        self.fail_safe
            .as_ref()
            .or(self.fail_safe_throttle.as_ref())
            .map(|(name, _)| name)
    }

    /// The timeout options given.
    fn timeouts(&self) -> impl Iterator<Item = &Ident> {
        let soft = self.soft_timeout.as_ref().map(|(name, _)| name);
        let hard = self.hard_timeout.as_ref().map(|(name, _)| name);
        soft.into_iter().chain(hard)
    }

    /// `soft_timeout`, `hard_timeout`, or both, for messages.
    fn describe_timeouts(&self) -> String {
        let names: Vec<String> = self.timeouts().map(|name| format!("`{name}`")).collect();
        names.join(" and ")
    }

    /// Whether an async fn's computation should be one that may outlive its caller.
    fn wants_background(&self) -> bool {
        self.swr.is_some() || self.early_refresh.is_some() || self.timeouts().next().is_some()
    }

    /// Checks between freshness options, once all are known: the throttle needs
    /// `fail_safe` (`fail_safe_written`, valid or not), a hard timeout must be longer than
    /// the soft one.
    pub(crate) fn check_together(&self, fail_safe_written: bool, errors: &mut Errors) {
        if let Some((throttle, _)) = &self.fail_safe_throttle
            && !fail_safe_written
        {
            errors.push(syn::Error::new_spanned(
                throttle,
                "`fail_safe_throttle` says how long fail-safe keeps serving the last good \
                 value after a failure before trying the computation again, so it needs \
                 `fail_safe`: `fail_safe = \"1h\", fail_safe_throttle = \"30s\"`",
            ));
        }
        if let (Some((_, soft)), Some((hard_name, hard))) = (&self.soft_timeout, &self.hard_timeout)
            && hard.ms <= soft.ms
        {
            errors.push(syn::Error::new_spanned(
                hard_name,
                format!(
                    "`hard_timeout` ({}) must be longer than `soft_timeout` ({}): after the \
                     soft timeout a stale value is served while the computation goes on, \
                     after the hard one the caller stops waiting altogether",
                    show_ms(hard.ms),
                    show_ms(soft.ms)
                ),
            ));
        }
    }

    /// Checks what the options need of the signature: timeouts need an async fn whose
    /// arguments can be owned, a hard timeout a `Result`.
    pub(crate) fn check_signature(&self, info: &FnInfo, errors: &mut Errors) {
        if self.timeouts().next().is_none() {
            return;
        }
        if !info.is_async {
            for name in self.timeouts() {
                errors.push(syn::Error::new_spanned(
                    name,
                    format!(
                        "`{name}` needs an `async fn`: a thread running a synchronous query \
                         cannot be interrupted or detached, so nothing could stop waiting \
                         for it; make the function `async` (diesel-async, SeaORM) or remove \
                         `{name}`"
                    ),
                ));
            }
        } else {
            let options = self.describe_timeouts();
            for borrowed in &info.borrowed {
                if let Borrowed::Unownable(tokens, why) = borrowed {
                    errors.push(syn::Error::new_spanned(
                        tokens,
                        format!(
                            "with {options} the computation may be finished in the \
                             background after its caller has stopped waiting, so it must own \
                             its arguments: {}",
                            explain(*why)
                        ),
                    ));
                }
            }
        }
        if let Some((name, _)) = &self.hard_timeout
            && !info.returns_result
        {
            errors.push(syn::Error::new_spanned(
                name,
                "`hard_timeout` gives up with an error, so the function must return \
                 `Result<T, E>` with `E: From<querycache::TimedOut>`",
            ));
        }
    }

    /// Whether this function's computation runs through a `run_fresh*` method: an async fn
    /// with an option that may finish it after its caller, whose arguments can be owned.
    /// (With timeouts, arguments that cannot be owned are errors: see
    /// [`check_signature`](Self::check_signature).)
    pub(crate) fn in_background(&self, info: &FnInfo) -> bool {
        info.is_async
            && self.wants_background()
            && info
                .borrowed
                .iter()
                .all(|borrowed| matches!(borrowed, Borrowed::Shared { .. }))
    }

    /// Whether the run method is a `_timeout` one (its error type converts a `TimedOut`).
    pub(crate) fn has_hard_timeout(&self) -> bool {
        self.hard_timeout.is_some()
    }

    /// The setters of the given options.
    pub(crate) fn setup(&self, call: &Ident) -> Vec<TokenStream> {
        let mut setup = Vec::new();
        let mut secs = |option: &Option<(Ident, Secs)>, setter: &str| {
            if let Some((_, value)) = option {
                let setter = Ident::new(setter, Span::call_site());
                let secs = Literal::u64_suffixed(value.secs);
                setup.push(quote_spanned!(value.span=> #call.#setter(#secs);));
            }
        };
        secs(&self.swr, "swr_secs");
        secs(&self.fail_safe, "fail_safe_secs");
        secs(&self.fail_safe_throttle, "fail_safe_throttle_secs");
        if let Some((_, beta, span)) = &self.early_refresh {
            let beta = Literal::f64_suffixed(*beta);
            setup.push(quote_spanned!(*span=> #call.early_refresh(#beta);));
        }
        for (option, setter) in [
            (&self.soft_timeout, "soft_timeout_ms"),
            (&self.hard_timeout, "hard_timeout_ms"),
        ] {
            if let Some((_, value)) = option {
                let setter = Ident::new(setter, Span::call_site());
                let ms = Literal::u64_suffixed(value.ms);
                setup.push(quote_spanned!(value.span=> #call.#setter(#ms);));
            }
        }
        setup
    }
}

fn explain(why: Unownable) -> &'static str {
    match why {
        Unownable::Receiver => {
            "`&self` is borrowed from the caller; take `self` by value (`self: Arc<Self>`), \
             or make this an associated function taking owned or `&T` arguments"
        }
        Unownable::Mutable => {
            "a `&mut` argument is borrowed from the caller for the call only; take it by \
             value, or by shared reference (`&T` with `T: Clone`: it is cloned)"
        }
        Unownable::ImplTrait => {
            "a `&T` argument is cloned into the computation, which needs to name `T`; use a \
             type parameter instead of `impl Trait` (`fn f<C: ConnectionTrait + Clone>(db: &C)`)"
        }
        Unownable::Pattern => {
            "a `&T` argument is cloned into the computation, which needs its name; name it \
             (`pair: &(u32, u32)`) and destructure it in the body"
        }
    }
}

/// `1500` as `"1500ms"`, `2000` as `"2s"`: for messages.
fn show_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// For a computation that may outlive its caller: the statements before it that clone each
/// `&T` argument into a `T::Owned` (`let name = <T as ToOwned>::to_owned(name);`), and those
/// that begin it, borrowing each back (`let name: &T = Borrow::borrow(&name);`) so the body
/// reads as written. A `mut` on such an argument moves from the signature to the inner
/// binding (the argument itself is no longer mutated).
pub(crate) fn owned_arguments(
    sig: &mut Signature,
    info: &FnInfo,
) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut before = Vec::new();
    let mut inside = Vec::new();
    for borrowed in &info.borrowed {
        let Borrowed::Shared {
            name,
            mutability,
            ty,
        } = borrowed
        else {
            continue;
        };
        // Spanned at the type: a `T` that is not `Clone` is reported there.
        let span = ty.span();
        before.push(quote_spanned! {span=>
            let #name = <#ty as ::std::borrow::ToOwned>::to_owned(#name);
        });
        inside.push(quote_spanned! {span=>
            let #mutability #name: &#ty = ::std::borrow::Borrow::borrow(&#name);
        });
        if mutability.is_some() {
            strip_mut(sig, name);
        }
    }
    (before, inside)
}

/// Removes `mut` from the argument `name` of `sig`.
fn strip_mut(sig: &mut Signature, name: &Ident) {
    for input in &mut sig.inputs {
        if let FnArg::Typed(arg) = input
            && let Pat::Ident(pat) = &mut *arg.pat
            && pat.ident == *name
        {
            pat.mutability = None;
        }
    }
}

/// The value of `early_refresh = ..`: XFetch's beta, a float or integer literal, finite,
/// above 0 and at most 100.
pub(crate) fn beta(expr: &Expr) -> syn::Result<f64> {
    let value = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Float(float),
            ..
        }) => float.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<f64>().ok(),
        _ => None,
    };
    match value {
        Some(beta) if beta.is_finite() && beta > 0.0 && beta <= 100.0 => Ok(beta),
        _ => Err(syn::Error::new_spanned(
            expr,
            "`early_refresh` is XFetch's beta, a number above 0 and at most 100 written in \
             the attribute: each read may recompute the entry a little before it expires, \
             more readily as expiry nears and the longer the last computation took; 1.0 is \
             the paper's default (`early_refresh = 1.0`), a larger beta refreshes earlier",
        )),
    }
}

/// The value of `soft_timeout = ..` or `hard_timeout = ..` in milliseconds: an integer (in
/// seconds), or a duration string: `"250ms"`, or units as in `ttl` (`"2s"`, `"1m30s"`). At
/// least one millisecond.
pub(crate) fn duration_ms(option: &str, expr: &Expr, example: &str) -> syn::Result<Millis> {
    let span = expr.span();
    let too_large = || format!("`{option}` is too large");
    let ms = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int
            .base10_parse::<u64>()
            .ok()
            .and_then(|secs| secs.checked_mul(1000))
            .ok_or_else(|| syn::Error::new_spanned(int, too_large()))?,
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => parse_duration_ms(&lit.value())
            .map_err(|why| syn::Error::new_spanned(lit, format!("{why} {example}")))?,
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => {
            return Err(syn::Error::new_spanned(
                expr,
                format!("`{option}` cannot be negative: write {example}"),
            ));
        }
        _ => {
            return Err(syn::Error::new_spanned(
                expr,
                format!(
                    "`{option}` takes a whole number of seconds or a duration string, \
                     written in the attribute: {example}"
                ),
            ));
        }
    };
    if ms == 0 {
        return Err(syn::Error::new_spanned(
            expr,
            format!("`{option}` must be at least 1 millisecond, or be left out: write {example}"),
        ));
    }
    Ok(Millis { ms, span })
}

/// Parses a timeout: `"250ms"` (milliseconds alone), or a duration as `parse_duration`
/// reads it, with querycache's one duration parser (`querycache-duration`). The error says
/// what is wrong; the caller appends an example.
pub(crate) fn parse_duration_ms(text: &str) -> Result<u64, String> {
    querycache_duration::parse_millis(text).map_err(|err| crate::attr::message(&err))
}
