//! Tag templates: `model:songs:{id}`, filled from the route's path parameters.

use crate::{Error, Tag};

/// A parsed tag template. `{name}` is a path parameter; `{{` and `}}` are literal braces
/// (the same syntax as `#[cached_query(tags = [..])]`).
#[derive(Debug, Clone)]
pub(crate) struct TagTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Param(String),
}

impl TagTemplate {
    /// Parses and validates `source`: braces balanced, parameter names non-empty, and the
    /// tag valid once filled.
    ///
    /// # Errors
    /// [`Error::InvalidName`] (`what` = `"tag template"`) saying what is wrong.
    pub(crate) fn parse(source: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::invalid_name("tag template", source, reason);
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().peekable();
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
                '}' => return Err(bad("unmatched `}`: write `}}` for a literal brace")),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(bad(
                            "unclosed `{`: write `{param}` for a path parameter, `{{` for a literal brace",
                        ));
                    }
                    let name = name.trim();
                    if name.is_empty() || name.contains(['{', '/']) {
                        return Err(bad(
                            "`{..}` must name a path parameter of the route, as in `model:songs:{id}`",
                        ));
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Param(name.to_owned()));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        let template = TagTemplate {
            source: source.to_owned(),
            parts,
        };
        // Filled with a plausible value, it must be a valid tag.
        Tag::new(template.render(|_| Some("0")).unwrap_or_default())?;
        Ok(template)
    }

    /// The template as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The parameters it names.
    pub(crate) fn params(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Param(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The tags of a request whose path parameters `param` looks up: one tag, or two when
    /// a value is an integer written unusually (`07`, `+7`): the tag as written and the
    /// tag with the integer as the ORM writes it (`7`), so a write to row 7 invalidates the
    /// answer to `/songs/07` too.
    ///
    /// # Errors
    /// The name of the first parameter `param` does not know, or an [`Error`] when a
    /// value makes an invalid tag (a control character).
    pub(crate) fn fill<'p>(
        &self,
        param: impl Fn(&str) -> Option<&'p str>,
    ) -> Result<Vec<Tag>, FillError<'_>> {
        let raw = self.render(&param).map_err(FillError::MissingParam)?;
        let canonical = self
            .render(|name| param(name).map(canonical_integer))
            .map_err(FillError::MissingParam)?;
        let mut tags = vec![Tag::new(&raw).map_err(FillError::Invalid)?];
        if canonical != raw {
            tags.push(Tag::new(&canonical).map_err(FillError::Invalid)?);
        }
        Ok(tags)
    }

    fn render<V: AsRef<str>>(&self, param: impl Fn(&str) -> Option<V>) -> Result<String, &str> {
        let mut out = String::with_capacity(self.source.len() + 8);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Param(name) => out.push_str(param(name).ok_or(name.as_str())?.as_ref()),
            }
        }
        Ok(out)
    }
}

/// Why a template could not be filled.
#[derive(Debug)]
pub(crate) enum FillError<'a> {
    /// The route has no parameter of this name.
    MissingParam(&'a str),
    /// The filled tag is not valid.
    Invalid(Error),
}

/// `value` as the ORM would print the integer it parses as (`07` → `7`), or unchanged.
fn canonical_integer(value: &str) -> std::borrow::Cow<'_, str> {
    match value.parse::<i128>() {
        Ok(n) => std::borrow::Cow::Owned(n.to_string()),
        Err(_) => std::borrow::Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    #[test]
    fn fills_parameters_and_keeps_literal_braces() {
        let t = TagTemplate::parse("model:songs:{id}").unwrap();
        assert_eq!(t.params().collect::<Vec<_>>(), ["id"]);
        let tags = t.fill(params(&[("id", "7")])).unwrap();
        assert_eq!(tags, [Tag::row("songs", 7)]);
        let t = TagTemplate::parse("x{{{a}}}").unwrap();
        assert_eq!(t.fill(params(&[("a", "1")])).unwrap()[0].as_str(), "x{1}");
        let t = TagTemplate::parse("model:songs#bulk").unwrap();
        assert_eq!(t.fill(params(&[])).unwrap(), [Tag::bulk("songs")]);
    }

    #[test]
    fn unusual_integers_give_both_tags() {
        let t = TagTemplate::parse("model:songs:{id}").unwrap();
        let tags = t.fill(params(&[("id", "07")])).unwrap();
        assert_eq!(tags[1], Tag::row("songs", 7));
        assert_eq!(tags[0].as_str(), "model:songs:07");
        assert_eq!(t.fill(params(&[("id", "abc")])).unwrap().len(), 1);
    }

    #[test]
    fn bad_templates_and_missing_parameters() {
        for bad in ["a{", "a}", "a{}", "", "a\nb{x}"] {
            assert!(TagTemplate::parse(bad).is_err(), "{bad:?}");
        }
        let t = TagTemplate::parse("model:songs:{id}").unwrap();
        assert!(matches!(
            t.fill(params(&[("song_id", "7")])),
            Err(FillError::MissingParam("id"))
        ));
    }
}
