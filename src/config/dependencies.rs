//! Writes the database makes on its own: "a write to table X also writes tables Y, Z".
//!
//! Querycache sees the text of each statement and reads views and cascading foreign keys
//! from the catalog (`orm::catalog`), so it cannot see what a trigger or a rule does behind
//! a statement. An application that knows declares it
//! ([`CacheConfigBuilder::table_also_writes`](super::CacheConfigBuilder::table_also_writes)
//! or `CACHE_TABLE_DEPENDENCIES`), and every ORM write to X then also invalidates
//! `model:Y` and `model:Y#bulk` (the rows written behind the statement's back are unknown).
//! Declarations are followed transitively: a trigger's write may fire another trigger.
//!
//! Tables are named the way model tags name them ([`table_key`]): `songs`, or `app.songs`
//! outside the default schema (`public.songs` is `songs`), folded to lower case (`Songs` is
//! `songs`).
//!
//! A table may be declared to write itself (`songs=songs`): a trigger on a table that writes
//! other rows of that table, SQLite's `UNIQUE .. ON CONFLICT REPLACE`. A write naming row 7
//! then changes rows it does not name, so every write to that table also bumps its bulk tag
//! (`model:songs#bulk`): by-id entries of every row are invalidated. A cycle of declarations
//! (`songs=stats; stats=songs`) makes a table write itself the same way.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::Error;
use crate::tags::{Tag, table_key};

/// The environment variable holding the declarations.
pub(crate) const VARIABLE: &str = "CACHE_TABLE_DEPENDENCIES";

/// What `CACHE_TABLE_DEPENDENCIES` looks like, for error messages.
const EXPECTED: &str = "expected table=other_table[,other_table...] entries separated by ';', \
                        e.g. songs=song_counts,audit_log;users=user_stats";

/// The declared table dependencies of a cache, and their transitive closure.
#[derive(Debug, Clone, Default)]
pub(crate) struct TableDependencies {
    /// As declared: a table → the tables a write to it also writes.
    declared: BTreeMap<String, BTreeSet<String>>,
    /// Everything a write to a table also writes, following declarations transitively
    /// (the table itself when it is declared to write itself, directly or by a cycle),
    /// sorted.
    closure: HashMap<String, Vec<String>>,
}

impl TableDependencies {
    /// Adds "a write to `table` also writes `also`" (names already checked).
    pub(crate) fn declare(&mut self, table: String, also: Vec<String>) {
        self.declared.entry(table).or_default().extend(also);
        self.closure = self
            .declared
            .keys()
            .map(|table| (table.clone(), self.reachable_from(table)))
            .collect();
    }

    fn reachable_from(&self, table: &str) -> Vec<String> {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut queue: Vec<&str> = vec![table];
        while let Some(next) = queue.pop() {
            for also in self.declared.get(next).into_iter().flatten() {
                if seen.insert(also) {
                    queue.push(also);
                }
            }
        }
        seen.into_iter().map(str::to_owned).collect()
    }

    /// The tables a write to `table` also writes (`public.songs` is `songs`, `Songs` is
    /// `songs`).
    pub(crate) fn also_written(&self, table: &str) -> &[String] {
        let key = match table.split_once('.') {
            Some((schema, name)) => table_key(Some(schema), name),
            None => table_key(None, table),
        };
        self.closure.get(&key).map_or(&[], Vec::as_slice)
    }

    /// `tags` (a write's tags) plus, for every table they name, the table and bulk tags of
    /// the tables it also writes — its own bulk tag too, for a table that writes itself.
    #[cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]
    pub(crate) fn expand(&self, mut tags: Vec<Tag>) -> Vec<Tag> {
        if self.closure.is_empty() {
            return tags;
        }
        let mut present: HashSet<Tag> = tags.iter().cloned().collect();
        let mut extra = Vec::new();
        for tag in &tags {
            let Some(also) = tag.table().and_then(|table| self.closure.get(table)) else {
                continue;
            };
            for table in also {
                for tag in Tag::table_write(table) {
                    if present.insert(tag.clone()) {
                        extra.push(tag);
                    }
                }
            }
        }
        tags.extend(extra);
        tags
    }
}

/// Checks one declaration and names its tables as tags do. The error names
/// `CACHE_TABLE_DEPENDENCIES` and the declaration.
pub(crate) fn checked<I>(table: &str, also: I) -> Result<(String, Vec<String>), Error>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let also: Vec<String> = also.into_iter().map(|t| t.as_ref().to_owned()).collect();
    let declaration = format!("{table}={}", also.join(","));
    let bad = |reason: String| Error::config(VARIABLE, &declaration, reason);
    let table = table_name(table).map_err(bad)?;
    if also.is_empty() {
        return Err(bad(format!("{table} is declared to write no other table")));
    }
    let names = also
        .iter()
        .map(|name| table_name(name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    Ok((table, names))
}

/// Parses `CACHE_TABLE_DEPENDENCIES`: `songs=song_counts,audit_log;users=user_stats`. Spaces
/// around names and empty entries (a trailing `;`) are ignored.
pub(crate) fn parse(value: &str) -> Result<Vec<(String, Vec<String>)>, Error> {
    let bad = |reason: String| Error::config(VARIABLE, value, format!("{reason}; {EXPECTED}"));
    let mut declarations = Vec::new();
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((table, also)) = entry.split_once('=') else {
            return Err(bad(format!("entry {entry:?} has no '='")));
        };
        let also: Vec<&str> = also.split(',').map(str::trim).collect();
        if also.iter().any(|name| name.is_empty()) {
            return Err(bad(format!("entry {entry:?} has an empty table name")));
        }
        let (table, also) = checked(table.trim(), also).map_err(|err| bad(config_reason(err)))?;
        declarations.push((table, also));
    }
    Ok(declarations)
}

fn config_reason(err: Error) -> String {
    match err {
        Error::Config { reason, value, .. } => format!("{value}: {reason}"),
        other => other.to_string(),
    }
}

/// A table name as model tags write it: `songs`, `app.songs` (`public.songs` is `songs`).
fn table_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let invalid = |c: char| {
        c.is_whitespace() || c.is_control() || matches!(c, ':' | '#' | '=' | ',' | ';' | '"')
    };
    if name.is_empty() {
        return Err("a table name is empty".to_owned());
    }
    if let Some(c) = name.chars().find(|&c| invalid(c)) {
        return Err(format!("table name {name:?} contains {c:?}"));
    }
    let (schema, table) = match name.split_once('.') {
        Some((schema, table)) => (Some(schema), table),
        None => (None, name),
    };
    if schema == Some("") || table.is_empty() || table.contains('.') {
        return Err(format!(
            "table name {name:?} is not `table` or `schema.table`"
        ));
    }
    Ok(table_key(schema, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(declarations: &[(&str, &[&str])]) -> TableDependencies {
        let mut deps = TableDependencies::default();
        for (table, also) in declarations {
            let (table, also) = checked(table, *also).unwrap();
            deps.declare(table, also);
        }
        deps
    }

    #[test]
    fn parses_the_documented_form() {
        let parsed = parse("songs=song_counts,audit_log;users=user_stats").unwrap();
        assert_eq!(
            parsed,
            [
                (
                    "songs".to_owned(),
                    vec!["song_counts".to_owned(), "audit_log".to_owned()]
                ),
                ("users".to_owned(), vec!["user_stats".to_owned()]),
            ]
        );
        let parsed =
            parse(" songs = song_counts , app.stats ; ;public.users=user_stats; ").unwrap();
        assert_eq!(parsed[0].1, ["song_counts", "app.stats"]);
        assert_eq!(
            parsed[1],
            ("users".to_owned(), vec!["user_stats".to_owned()])
        );
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn malformed_values_name_the_variable_the_value_and_what_is_wrong() {
        for (value, wrong) in [
            ("songs", "has no '='"),
            ("songs=", "empty table name"),
            ("=song_counts", "a table name is empty"),
            ("songs=a,,b", "empty table name"),
            ("songs=song counts", "contains ' '"),
            ("songs=a.b.c", "is not `table` or `schema.table`"),
            ("songs=.counts", "is not `table` or `schema.table`"),
            ("songs=model:x", "contains ':'"),
            ("songs=a=b", "contains '='"),
        ] {
            let msg = parse(value).unwrap_err().to_string();
            assert!(msg.contains(VARIABLE), "{value}: {msg}");
            assert!(msg.contains(&format!("{value:?}")), "{value}: {msg}");
            assert!(msg.contains(wrong), "{value}: {msg}");
            assert!(msg.contains("e.g. songs=song_counts"), "{value}: {msg}");
        }
    }

    #[test]
    fn declarations_are_followed_transitively_and_cycles_end() {
        let d = deps(&[
            ("songs", &["song_counts", "audit_log"]),
            ("song_counts", &["stats"]),
            ("stats", &["songs"]),
            ("app.users", &["app.user_stats"]),
        ]);
        // songs → song_counts → stats → songs: a trigger chain back to songs may write
        // any of its rows.
        assert_eq!(
            d.also_written("songs"),
            ["audit_log", "song_counts", "songs", "stats"]
        );
        assert_eq!(d.also_written("public.songs"), d.also_written("songs"));
        assert_eq!(
            d.also_written("stats"),
            ["audit_log", "song_counts", "songs", "stats"]
        );
        assert_eq!(d.also_written("app.users"), ["app.user_stats"]);
        assert!(d.also_written("users").is_empty());
        assert!(d.also_written("audit_log").is_empty());
    }

    /// A self-referencing cascade changes rows the statement does not name: a table may
    /// be declared to write itself, and its writes then bump its bulk tag.
    #[test]
    fn a_table_may_write_itself_and_then_every_write_to_it_is_bulk() {
        let parsed = parse("songs=songs;Users=public.USERS,stats").unwrap();
        assert_eq!(parsed[0], ("songs".to_owned(), vec!["songs".to_owned()]));
        assert_eq!(
            parsed[1],
            (
                "users".to_owned(),
                vec!["users".to_owned(), "stats".to_owned()]
            )
        );
        let d = deps(&[("songs", &["songs"]), ("a", &["b"]), ("b", &["a"])]);
        assert_eq!(d.also_written("songs"), ["songs"]);
        assert_eq!(d.also_written("Songs"), ["songs"]);
        assert_eq!(d.also_written("a"), ["a", "b"], "a cycle writes itself too");
        assert_eq!(
            d.expand(vec![Tag::model("songs"), Tag::row("songs", 7)]),
            [
                Tag::model("songs"),
                Tag::row("songs", 7),
                Tag::bulk("songs")
            ]
        );
    }

    #[test]
    fn expand_adds_table_and_bulk_tags_once() {
        let d = deps(&[("songs", &["song_counts"]), ("users", &["song_counts"])]);
        let tags = d.expand(vec![
            Tag::model("songs"),
            Tag::row("songs", 7),
            Tag::model("users"),
            Tag::bulk("users"),
        ]);
        assert_eq!(
            tags,
            [
                Tag::model("songs"),
                Tag::row("songs", 7),
                Tag::model("users"),
                Tag::bulk("users"),
                Tag::model("song_counts"),
                Tag::bulk("song_counts"),
            ]
        );
        let untouched = vec![Tag::model("albums"), Tag::all_models()];
        assert_eq!(d.expand(untouched.clone()), untouched);
        assert_eq!(
            TableDependencies::default().expand(vec![Tag::model("songs")]),
            [Tag::model("songs")]
        );
    }
}
