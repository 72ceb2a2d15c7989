//! From a statement's SQL to the tags it writes: `orm::sql` classifies, this module names
//! the tags. Shared by the ORM integrations, which differ only in how they see statements,
//! their bound values and the rows they return.

use crate::orm::sql::{self, Effect, Rows, TableName};
use crate::tags::{Tag, table_key, write_tags};

/// The tags `sql` writes; `None` for a read. `param(i)` renders the i-th bound value as a
/// row id (see `sql::classify`). `returned_ids` gives the ids of the rows the statement
/// returned, when the integration can see them: a plain single-statement `INSERT` then
/// touches those rows rather than the whole table in bulk.
///
/// A statement that cannot be classified writes `model:#all`, with a warning.
pub(crate) fn written_tags(
    sql: &str,
    param: &dyn Fn(usize) -> Option<String>,
    returned_ids: impl FnOnce() -> Option<Vec<String>>,
) -> Option<Vec<Tag>> {
    if is_plain_read(sql) {
        return None;
    }
    let primary_key = |_: &TableName| "id".to_owned();
    match sql::classify(sql, param, &primary_key) {
        Effect::Read => None,
        Effect::Writes(writes) => {
            let returned = if writes.len() == 1 && is_plain_insert(sql) {
                returned_ids()
            } else {
                None
            };
            Some(
                writes
                    .iter()
                    .flat_map(|w| {
                        let table = table_key(w.table.schema.as_deref(), &w.table.name);
                        match (&w.rows, &returned) {
                            (Rows::Ids(ids), _) => write_tags(&table, Some(ids)),
                            (Rows::Unknown, Some(ids)) => write_tags(&table, Some(ids)),
                            (Rows::Unknown, None) => write_tags(&table, None),
                        }
                    })
                    .collect(),
            )
        }
        Effect::Unknown => {
            let head: String = sql.chars().take(120).collect();
            tracing::warn!(
                sql = %head,
                "statement not understood; invalidating every model tag to stay safe"
            );
            Some(vec![Tag::all_models()])
        }
    }
}

/// A single-statement `INSERT` that is not an upsert: the rows it returns are exactly the
/// rows it wrote (an upsert may update a row it does not name; an UPDATE may move a row to
/// another id).
fn is_plain_insert(sql: &str) -> bool {
    let sql = sql.trim_start();
    sql.get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case("insert"))
        && !sql.trim_end().trim_end_matches(';').contains(';')
        && !contains_ignore_case(sql, "on conflict")
        && !contains_ignore_case(sql, "on duplicate")
        && !contains_ignore_case(sql, " or replace")
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A fast pass for the common case: a SELECT in which no word that could write appears
/// as a whole word (`updated_at` does not count as `update`). Anything else goes through the
/// full classifier; a false "maybe" costs time, never correctness.
fn is_plain_read(sql: &str) -> bool {
    let bytes = sql.trim_start().as_bytes();
    if !bytes
        .get(..6)
        .is_some_and(|h| h.eq_ignore_ascii_case(b"select"))
    {
        return false;
    }
    const WRITE_WORDS: [&[u8]; 9] = [
        b"insert",
        b"update",
        b"delete",
        b"replace",
        b"truncate",
        b"merge",
        b"copy",
        b"drop",
        b"alter",
    ];
    // Several statements: the ones after the first may be anything (CALL, DO ...).
    if bytes
        .iter()
        .position(|&b| b == b';')
        .is_some_and(|at| bytes[at + 1..].iter().any(|b| !b.is_ascii_whitespace()))
    {
        return false;
    }
    let is_word_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !is_word_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_word_byte(bytes[i]) {
            i += 1;
        }
        let word = &bytes[start..i];
        if WRITE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_read_prefilter() {
        assert!(is_plain_read(
            r#"SELECT "songs"."id" FROM "songs" WHERE "songs"."id" = ?"#
        ));
        assert!(!is_plain_read("SELECT 1; DELETE FROM songs"));
        assert!(!is_plain_read(
            "WITH x AS (DELETE FROM a RETURNING *) SELECT * FROM x"
        ));
        assert!(!is_plain_read("UPDATE songs SET title = 'x'"));
        assert!(is_plain_read(r#"SELECT "songs"."updated_at" FROM "songs""#));
        assert!(!is_plain_read("SELECT 1 FROM t; UPDATE t SET a = 1"));
        assert!(!is_plain_read("select * from t for update"));
        assert!(!is_plain_read("SELECT 1; CALL archive_all()"));
        assert!(is_plain_read("SELECT 1;  "));
    }

    #[test]
    fn returned_ids_narrow_only_a_plain_insert() {
        let none = |_: usize| None;
        let ids = || Some(vec!["7".to_owned()]);
        let tags = written_tags("INSERT INTO songs (title) VALUES ('a')", &none, ids).unwrap();
        assert!(tags.contains(&Tag::row("songs", "7")));
        assert!(!tags.contains(&Tag::bulk("songs")));
        let upsert = "INSERT INTO songs (title) VALUES ('a') ON CONFLICT (id) DO NOTHING";
        let tags = written_tags(upsert, &none, ids).unwrap();
        assert!(tags.contains(&Tag::bulk("songs")));
        assert_eq!(written_tags("SELECT 1", &none, ids), None);
        assert_eq!(
            written_tags("CALL x()", &none, ids),
            Some(vec![Tag::all_models()])
        );
    }
}
