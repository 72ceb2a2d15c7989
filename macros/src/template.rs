//! `key = ".."` and `tags = [".."]` templates: text with `{argument}` placeholders.

use proc_macro2::TokenStream;
use quote::quote_spanned;
use syn::{Ident, LitStr};

/// A parsed template such as `"user:{user_id}:songs"`.
pub(crate) struct Template {
    pub(crate) lit: LitStr,
    parts: Vec<Part>,
}

enum Part {
    /// Text, with `{{` and `}}` already unescaped.
    Text(String),
    /// `{name}`.
    Arg(String),
}

impl Template {
    /// Parses `lit`; `what` (`"key"` or `"tag"`) names it in error messages.
    pub(crate) fn parse(lit: &LitStr, what: &str) -> syn::Result<Template> {
        let value = lit.value();
        let error = |why: String| syn::Error::new_spanned(lit, why);
        if value.is_empty() {
            return Err(error(format!(
                "the {what} is empty: write something like \"user:{{user_id}}\""
            )));
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => {
                    return Err(error(format!(
                        "unmatched `}}` in this {what}: write `}}}}` for a literal brace"
                    )));
                }
                '{' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return Err(error(format!(
                            "unclosed `{{` in this {what}: write `{{argument}}` for a \
                             placeholder, or `{{{{` for a literal brace"
                        )));
                    }
                    check_placeholder(&inner, what).map_err(error)?;
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Arg(inner));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            lit: lit.clone(),
            parts,
        })
    }

    /// The names of the arguments the placeholders refer to, in order, with repeats.
    pub(crate) fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Arg(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// An expression of type `String`: the template with each placeholder replaced by its
    /// argument's `Display` output. `arg` maps a placeholder to the argument's identifier;
    /// every placeholder must have been checked to name an argument.
    pub(crate) fn to_string_expr<'a>(
        &self,
        arg: impl Fn(&str) -> Option<&'a Ident>,
    ) -> TokenStream {
        let span = self.lit.span();
        let mut format = String::new();
        let mut values = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => format.push_str(&text.replace('{', "{{").replace('}', "}}")),
                Part::Arg(name) => {
                    format.push_str("{}");
                    if let Some(ident) = arg(name) {
                        // The argument, but spanned at the template: a missing `Display`
                        // impl is then reported on the template that asked for it.
                        let mut ident = ident.clone();
                        ident.set_span(span);
                        values.push(ident);
                    }
                }
            }
        }
        if values.is_empty() {
            let text = LitStr::new(&self.lit.value(), span);
            return quote_spanned!(span=> ::std::string::String::from(#text));
        }
        let format = LitStr::new(&format, span);
        quote_spanned!(span=> ::std::format!(#format, #(#values),*))
    }
}

/// A placeholder is the name of an argument: an identifier, nothing more.
fn check_placeholder(inner: &str, what: &str) -> Result<(), String> {
    let name = inner.trim();
    if name.is_empty() {
        return Err(format!(
            "empty placeholder `{{}}` in this {what}: name an argument, as in `{{user_id}}`"
        ));
    }
    if let Some((name, _)) = name.split_once(':') {
        return Err(format!(
            "placeholder `{{{inner}}}` has a format spec, which is not supported in a {what}: \
             write `{{{}}}` (the argument's `Display` output is used)",
            name.trim()
        ));
    }
    let is_ident = name
        .chars()
        .next()
        .is_some_and(|c| c == '_' || c.is_alphabetic())
        && name.chars().all(|c| c == '_' || c.is_alphanumeric());
    if !is_ident || name == "_" {
        return Err(format!(
            "placeholder `{{{inner}}}` is not an argument name: placeholders name an \
             argument of the function (`{{user_id}}`), not an expression; compute the \
             value into an argument, or use `{{{{`/`}}}}` for literal braces"
        ));
    }
    if name != inner {
        return Err(format!(
            "placeholder `{{{inner}}}` has spaces: write `{{{name}}}`"
        ));
    }
    if name == "self" {
        return Err(format!(
            "`{{self}}` cannot be used in a {what}: name an argument of the function"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> syn::Result<Template> {
        Template::parse(&LitStr::new(text, proc_macro2::Span::call_site()), "tag")
    }

    #[test]
    fn placeholders_and_escapes() {
        let t = parse("user:{user_id}:{{literal}}:{page}").unwrap();
        assert_eq!(t.placeholders().collect::<Vec<_>>(), ["user_id", "page"]);
        let t = parse("global").unwrap();
        assert_eq!(t.placeholders().count(), 0);
    }

    #[test]
    fn rejects_bad_placeholders() {
        for bad in [
            "",
            "{}",
            "{0}",
            "{x:?}",
            "{x.len()}",
            "{a + 1}",
            "{ x }",
            "{self}",
            "{_}",
            "open {x",
            "close }",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
