//! Reading a statement back from Diesel's instrumentation: its SQL and its bound values.
//!
//! An instrumentation event carries the statement as `&dyn DebugQuery`, which offers only
//! `Debug` and `Display`. In diesel 2.3 a query's `Debug` is
//! `Query { sql: "<sql>", binds: [<value>, ...] }` (each value in its own `Debug` form) and
//! a raw `batch_execute` text's is the string literal itself. Both are read here. Any other
//! shape (a later Diesel, another crate's `DebugQuery`) falls back to `Display`, whose
//! `-- binds: [..]` suffix is a SQL comment to the classifier: the statement is still
//! classified, only without bound values (so writes are table-wide rather than per row).

use std::fmt::Write as _;

use querycache_sql::Bound;

/// A statement read back: its SQL, and its bound values where they can be row ids
/// (integers and strings; `None` for any other value). The values are read only
/// when asked for: most statements are reads, which need none.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Statement {
    pub(super) sql: String,
    /// The `Debug` text of the bind list, `[..]`.
    binds: Option<String>,
}

impl Statement {
    /// Reads `query` back.
    pub(super) fn read(query: &dyn diesel::connection::DebugQuery) -> Statement {
        let mut debug = String::new();
        if write!(debug, "{query:?}").is_ok()
            && let Some(statement) = parse_debug(&debug)
        {
            return statement;
        }
        Statement {
            sql: query.to_string(),
            binds: None,
        }
    }

    /// The bound values that can be row ids. Values that cannot be read leave the
    /// statement classified without them. Strings stay text: the classifier decides whether
    /// a database could read them as another number (`"05"` selects row 5 on SQLite).
    pub(super) fn binds(&self) -> Vec<Option<Bound>> {
        self.binds
            .as_deref()
            .and_then(bind_list)
            .unwrap_or_default()
    }
}

/// Parses diesel 2.3's two `Debug` shapes; `None` for anything else.
fn parse_debug(debug: &str) -> Option<Statement> {
    if debug.starts_with('"') {
        let (sql, rest) = string_literal(debug)?;
        return rest.is_empty().then_some(Statement { sql, binds: None });
    }
    let rest = debug.strip_prefix("Query { sql: ")?;
    let (sql, rest) = string_literal(rest)?;
    let rest = rest.strip_prefix(", binds: ")?;
    let binds = rest.strip_suffix(" }").map(str::to_owned);
    Some(Statement { sql, binds })
}

/// A Rust string literal in `Debug` form at the start of `s`: its value and what follows.
fn string_literal(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let body = &s[1..];
    let mut value = String::new();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[at + 1..])),
            '\\' => {
                let (_, escaped) = chars.next()?;
                match escaped {
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    't' => value.push('\t'),
                    '0' => value.push('\0'),
                    '\\' | '"' | '\'' => value.push(escaped),
                    'u' => {
                        if chars.next()?.1 != '{' {
                            return None;
                        }
                        let mut code = 0_u32;
                        loop {
                            let (_, digit) = chars.next()?;
                            if digit == '}' {
                                break;
                            }
                            code = code.checked_mul(16)?.checked_add(digit.to_digit(16)?)?;
                        }
                        value.push(char::from_u32(code)?);
                    }
                    _ => return None,
                }
            }
            c => value.push(c),
        }
    }
    None
}

/// `[a, b, ...]` of `Debug`-formatted values: each an integer, text, or `None`.
fn bind_list(s: &str) -> Option<Vec<Option<Bound>>> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let mut binds = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (value, after) = if rest.starts_with('"') {
            let (text, after) = string_literal(rest)?;
            (Some(Bound::Text(text)), after)
        } else {
            let end = item_end(rest)?;
            let item = &rest[..end];
            let value = integer(item)
                .or_else(|| wrapped(item))
                .or_else(|| array(item))
                .or_else(|| uuid(item));
            (value, &rest[end..])
        };
        binds.push(value);
        rest = match after.strip_prefix(", ") {
            Some(next) => next,
            None if after.is_empty() => after,
            None => return None,
        };
    }
    Some(binds)
}

/// Where a non-string item ends: the first `, ` outside brackets and string literals.
fn item_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0_usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.checked_sub(1)?,
            b'"' => {
                let (_, after) = string_literal(&s[i..])?;
                i = s.len() - after.len();
                continue;
            }
            b',' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    (depth == 0).then_some(s.len())
}

/// A value in the `Debug` form of the bind value enums of diesel-async's
/// `SyncConnectionWrapper` (SQLite's `I32(7)`, `I64(7)`, `String("x")`): the integer or text
/// inside; `None` for any other variant (floats, blobs, `Null`).
fn wrapped(item: &str) -> Option<Bound> {
    let (variant, inner) = item.strip_suffix(')')?.split_once('(')?;
    match variant {
        "I16" | "I32" | "I64" => integer(inner),
        "String" | "BorrowedString" => match string_literal(inner)? {
            (text, "") => Some(Bound::Text(text)),
            _ => None,
        },
        _ => None,
    }
}

/// An array bind (`[1, 2]`, `["a", "b"]`: PostgreSQL's `= ANY($1)`, as Diesel sends
/// `eq_any`) whose every element is an integer or text; `None` for anything else.
fn array(item: &str) -> Option<Bound> {
    if !item.starts_with('[') {
        return None;
    }
    let items = bind_list(item)?
        .into_iter()
        .map(|value| value.filter(|v| !matches!(v, Bound::List(_))))
        .collect::<Option<Vec<Bound>>>()?;
    Some(Bound::List(items))
}

/// A UUID as `uuid::Uuid`'s `Debug` renders it (hyphenated, lower case), as text: the
/// classifier renders it as it renders a UUID bound as text or written as a literal.
fn uuid(item: &str) -> Option<Bound> {
    let is_uuid = item.len() == 36
        && item.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    is_uuid.then(|| Bound::Text(item.to_owned()))
}

/// An integer as `Debug` renders it (canonical decimal); `None` for anything else.
fn integer(item: &str) -> Option<Bound> {
    let digits = item.strip_prefix('-').unwrap_or(item);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && item != "-0";
    canonical
        .then(|| item.parse().ok())
        .flatten()
        .map(Bound::Integer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_query_with_binds() {
        let debug = r#"Query { sql: "UPDATE \"songs\" SET \"title\" = $1 WHERE (\"songs\".\"id\" = $2)", binds: ["it's \"x\", [y]", 42, Some(3), 1.5, -7, Foo { a: [1, 2] }, "\u{e9}\n"] }"#;
        let statement = parse_debug(debug).unwrap();
        assert_eq!(
            statement.sql,
            r#"UPDATE "songs" SET "title" = $1 WHERE ("songs"."id" = $2)"#
        );
        assert_eq!(
            statement.binds(),
            [
                Some(Bound::Text("it's \"x\", [y]".to_owned())),
                Some(Bound::Integer(42)),
                None,
                None,
                Some(Bound::Integer(-7)),
                None,
                Some(Bound::Text("é\n".to_owned())),
            ]
        );
    }

    #[test]
    fn reads_the_bind_values_of_diesel_asyncs_sqlite_wrapper() {
        let debug = r#"Query { sql: "UPDATE `songs` SET `title` = ? WHERE (`songs`.`id` = ?)", binds: [String("B2"), I32(2), I64(-3), BorrowedString("a\"b"), F64(1.0), Null, I32(007), Foo(1)] }"#;
        assert_eq!(
            parse_debug(debug).unwrap().binds(),
            [
                Some(Bound::Text("B2".to_owned())),
                Some(Bound::Integer(2)),
                Some(Bound::Integer(-3)),
                Some(Bound::Text("a\"b".to_owned())),
                None,
                None,
                None,
                None,
            ]
        );
    }

    #[test]
    fn reads_an_array_bind_of_ids() {
        let debug = r#"Query { sql: "SELECT 1 WHERE 1 = ANY($1)", binds: [[1, 2], ["a", "b"], [1, 1.5], [[1]], 3] }"#;
        assert_eq!(
            parse_debug(debug).unwrap().binds(),
            [
                Some(Bound::List(vec![Bound::Integer(1), Bound::Integer(2)])),
                Some(Bound::List(vec![
                    Bound::Text("a".to_owned()),
                    Bound::Text("b".to_owned())
                ])),
                None,
                None,
                Some(Bound::Integer(3)),
            ]
        );
    }

    #[test]
    fn reads_a_raw_text_and_an_empty_bind_list() {
        let statement = parse_debug(r#""DELETE FROM songs; -- \"quoted\"""#).unwrap();
        assert_eq!(statement.sql, r#"DELETE FROM songs; -- "quoted""#);
        assert!(statement.binds().is_empty());
        let statement = parse_debug(r#"Query { sql: "SELECT 1", binds: [] }"#).unwrap();
        assert_eq!(statement.sql, "SELECT 1");
        assert!(statement.binds().is_empty());
    }

    #[test]
    fn unreadable_binds_keep_the_sql_and_other_shapes_are_refused() {
        let statement =
            parse_debug(r#"Query { sql: "DELETE FROM t", binds: [unclosed( }"#).unwrap();
        assert_eq!(statement.sql, "DELETE FROM t");
        assert!(statement.binds().is_empty());
        assert_eq!(parse_debug("DELETE FROM t -- binds: []"), None);
        assert_eq!(parse_debug(r#""unterminated"#), None);
        assert_eq!(parse_debug(r#""bad \q escape""#), None);
        assert_eq!(integer("007"), None);
        assert_eq!(integer("-0"), None);
        assert_eq!(integer("0"), Some(Bound::Integer(0)));
        let id = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        assert_eq!(uuid(id), Some(Bound::Text(id.to_owned())));
        assert_eq!(uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"), None);
        assert_eq!(integer("99999999999999999999999999999999999999999"), None);
    }
}
