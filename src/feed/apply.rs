//! From the rows a feed reports changed to the tags the cache bumps: the same tags an ORM
//! write of those rows bumps (`model:<table>`, the row tags, `#bulk` when the rows are not
//! known), so that entries cannot tell a write seen by the feed from one seen by the ORM.

use std::collections::{BTreeMap, BTreeSet};

use crate::tags::{Tag, table_key, write_tags};

/// The most rows of one table a transaction's changes name before they count as a write
/// to the whole table (`#bulk`): a bulk update bumps two tags, not a million.
const MAX_ROWS_PER_TABLE: usize = 1024;

/// What one transaction (or notification) changed, by table.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    tables: BTreeMap<String, Rows>,
}

#[derive(Debug)]
enum Rows {
    /// These rows, by key (rendered as the ORM integrations render a row id); `by_id`:
    /// the key is the one column `id`.
    Keys { keys: BTreeSet<String>, by_id: bool },
    /// Rows not known: the whole table.
    All,
}

impl Changes {
    /// A change to the row of `table` (in `schema`) whose key columns `columns` hold
    /// `values` (as text, in key order); `None` when the key cannot be read (no key, a
    /// value not sent or of a type whose text form the ORM side may not share): the whole
    /// table.
    pub(crate) fn row(
        &mut self,
        schema: &str,
        table: &str,
        columns: &[&str],
        values: Option<Vec<String>>,
    ) {
        let name = table_key(Some(schema), table);
        let entry = self.tables.entry(name).or_insert_with(|| Rows::Keys {
            keys: BTreeSet::new(),
            by_id: matches!(columns, [only] if *only == "id"),
        });
        let Some(values) = values.filter(|v| !v.is_empty() && v.len() == columns.len()) else {
            *entry = Rows::All;
            return;
        };
        if let Rows::Keys { keys, .. } = entry {
            keys.insert(querycache_sql::row_id(&values));
            if keys.len() > MAX_ROWS_PER_TABLE {
                *entry = Rows::All;
            }
        }
    }

    /// A change to every row of `table` (a TRUNCATE, a table without a key).
    pub(crate) fn table(&mut self, schema: &str, table: &str) {
        self.tables
            .insert(table_key(Some(schema), table), Rows::All);
    }

    /// The tags these changes bump.
    pub(crate) fn tags(&self) -> Vec<Tag> {
        let mut tags = Vec::new();
        for (table, rows) in &self.tables {
            match rows {
                Rows::Keys { keys, by_id } => {
                    let ids: Vec<String> = keys.iter().cloned().collect();
                    tags.extend(write_tags(table, Some(&ids)));
                    // Rows pinned by a key other than `id`: reads that guessed `id` (see
                    // `orm::catalog`) meet them through `#guess`.
                    if !by_id {
                        tags.push(Tag::guessed_key(table));
                    }
                }
                Rows::All => tags.extend(write_tags(table, None)),
            }
        }
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(changes: &Changes) -> Vec<String> {
        changes
            .tags()
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect()
    }

    #[test]
    fn rows_become_the_tags_an_orm_write_bumps() {
        let mut c = Changes::default();
        c.row("public", "songs", &["id"], Some(vec!["7".into()]));
        c.row("public", "songs", &["id"], Some(vec!["8".into()]));
        c.row(
            "app",
            "Members",
            &["org", "user"],
            Some(vec!["1".into(), "a\"b".into()]),
        );
        assert_eq!(
            tags(&c),
            [
                "model:app.members",
                r#"model:app.members:["1","a\"b"]"#,
                "model:app.members#guess",
                "model:songs",
                "model:songs:7",
                "model:songs:8",
            ]
        );
    }

    #[test]
    fn unknown_rows_and_big_changes_are_the_whole_table() {
        let mut c = Changes::default();
        c.row("public", "songs", &["id"], Some(vec!["7".into()]));
        c.row("public", "songs", &["id"], None);
        c.row("public", "songs", &["id"], Some(vec!["9".into()]));
        assert_eq!(tags(&c), ["model:songs", "model:songs#bulk"]);

        let mut c = Changes::default();
        for i in 0..=MAX_ROWS_PER_TABLE {
            c.row("public", "listens", &["id"], Some(vec![i.to_string()]));
        }
        assert_eq!(tags(&c), ["model:listens", "model:listens#bulk"]);

        let mut c = Changes::default();
        c.table("public", "songs");
        c.row("public", "songs", &["id"], Some(vec!["1".into()]));
        assert_eq!(tags(&c), ["model:songs", "model:songs#bulk"]);
        assert!(Changes::default().tags().is_empty());
    }
}
