//! From a statement's SQL to the tags it writes: [`querycache_sql`] classifies (tables as
//! [`TableName`]s, rows as id strings), this module turns that into tags (`table_key`,
//! `write_tags`). Shared by the ORM integrations, which differ only in how they see
//! statements, their bound values and the rows they return.

use querycache_sql::{Bound, Effect, Rows, TableName};

use crate::tags::{Tag, table_key, write_tags};

/// The tags `sql` writes; `None` for a read. `param(i)` gives the i-th bound value (see
/// [`querycache_sql::classify`]). `returned_ids` gives the ids of the rows the statement
/// returned, when the integration can see them: a single `INSERT ... VALUES` that only inserts then
/// touches those rows rather than the whole table in bulk — if every row it inserted came
/// back (SeaORM's `exec_with_returning` reads one row of a multi-row insert).
///
/// A statement that cannot be classified writes `model:#all`, with a warning.
pub(crate) fn written_tags(
    sql: &str,
    param: &dyn Fn(usize) -> Option<Bound>,
    returned_ids: impl FnOnce() -> Option<Vec<String>>,
) -> Option<Vec<Tag>> {
    if is_plain_read(sql) {
        return None;
    }
    let primary_key = |_: &TableName| "id".to_owned();
    match querycache_sql::classify(sql, param, &primary_key) {
        Effect::Read => None,
        Effect::Writes(writes) => {
            let mut returned_ids = Some(returned_ids);
            let mut tags = Vec::new();
            for w in &writes {
                let table = table_key(w.table.schema.as_deref(), &w.table.name);
                let ids = match &w.rows {
                    Rows::Ids(ids) => Some(row_keys(ids.clone())),
                    // Only the rows of the text's one INSERT come back.
                    Rows::Inserted(count) if writes.len() == 1 => returned_ids
                        .take()
                        .and_then(|returned| returned())
                        .filter(|ids| ids.len() == *count),
                    Rows::Inserted(_) | Rows::Unknown => None,
                };
                tags.extend(write_tags(&table, ids.as_deref()));
            }
            Some(tags)
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

/// The keys of the rows a list of ids may select, given that the key column's type is not
/// known: the ids themselves and, when one of them is not an integer, row 0 too — MySQL
/// compares text that does not start with a number (`'abc'`) with an integer key as 0.
/// (Text that does start with one is only an id when canonical: see [`Bound::Text`].)
pub(super) fn row_keys(mut ids: Vec<String>) -> Vec<String> {
    if ids.iter().any(|id| id.parse::<i128>().is_err()) && !ids.iter().any(|id| id == "0") {
        ids.push("0".to_owned());
    }
    ids
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
        // DO NOTHING only skips rows: the returned ones are all it wrote.
        let skip = "INSERT INTO songs (title) VALUES ('a') ON CONFLICT (title) DO NOTHING";
        let tags = written_tags(skip, &none, ids).unwrap();
        assert_eq!(tags, [Tag::model("songs"), Tag::row("songs", "7")]);
        let upsert =
            "INSERT INTO songs (title) VALUES ('a') ON CONFLICT (title) DO UPDATE SET n = 1";
        let tags = written_tags(upsert, &none, ids).unwrap();
        assert!(tags.contains(&Tag::bulk("songs")));
        assert_eq!(written_tags("SELECT 1", &none, ids), None);
        assert_eq!(
            written_tags("CALL x()", &none, ids),
            Some(vec![Tag::all_models()])
        );
    }

    /// SeaORM's `insert_many(..).exec_with_returning` reads one row of a multi-row insert:
    /// the other rows' ids were never seen, so the write is bulk.
    #[test]
    fn returned_ids_narrow_only_when_every_inserted_row_came_back() {
        let none = |_: usize| None;
        let two = r#"INSERT INTO "songs" ("title") VALUES ($1), ($2) RETURNING "id""#;
        let one_back = || Some(vec!["7".to_owned()]);
        let tags = written_tags(two, &none, one_back).unwrap();
        assert_eq!(tags, Tag::table_write("songs"));
        let both_back = || Some(vec!["7".to_owned(), "8".to_owned()]);
        let tags = written_tags(two, &none, both_back).unwrap();
        assert_eq!(
            tags,
            [
                Tag::model("songs"),
                Tag::row("songs", 7),
                Tag::row("songs", 8)
            ]
        );
        // Rows from a query: how many were inserted is not known.
        let select = r#"INSERT INTO "songs" ("title") SELECT "title" FROM "drafts" RETURNING "id""#;
        let tags = written_tags(select, &none, one_back).unwrap();
        assert_eq!(tags, Tag::table_write("songs"));
        let default = r#"INSERT INTO "songs" DEFAULT VALUES RETURNING "id""#;
        let tags = written_tags(default, &none, one_back).unwrap();
        assert_eq!(tags, Tag::table_write("songs"));
    }

    /// `INSERT OR REPLACE` deletes rows conflicting on any unique key: whatever separates
    /// its words, it is no plain insert (the substring check this replaced missed `\n`).
    #[test]
    fn replace_is_read_from_tokens_whatever_separates_its_words() {
        let none = |_: usize| None;
        let ids = || Some(vec!["7".to_owned()]);
        for sql in [
            "INSERT OR REPLACE INTO songs (title) VALUES ('a') RETURNING id",
            "INSERT\nOR REPLACE INTO songs (title) VALUES ('a') RETURNING id",
            "INSERT\tOR\tREPLACE INTO songs (title) VALUES ('a') RETURNING id",
            "INSERT/**/OR/* or */REPLACE INTO songs (title) VALUES ('a') RETURNING id",
            "insert -- upsert\n or replace into songs (title) values ('a') returning id",
            "REPLACE INTO songs (title) VALUES ('a')",
            "INSERT INTO songs (title) VALUES ('a') ON CONFLICT\nDO UPDATE SET n = 1",
            "INSERT INTO songs (title) VALUES ('a') ON\tDUPLICATE KEY UPDATE n = 1",
        ] {
            let tags = written_tags(sql, &none, ids).unwrap();
            assert!(tags.contains(&Tag::bulk("songs")), "{sql:?}: {tags:?}");
        }
    }

    /// MySQL compares text that does not start with a number with an integer key as 0.
    #[test]
    fn a_text_id_also_touches_row_zero() {
        let slug = |_: usize| Some(Bound::Text("abc".to_owned()));
        let tags = written_tags("DELETE FROM songs WHERE id = ?", &slug, || None).unwrap();
        assert_eq!(
            tags,
            [
                Tag::model("songs"),
                Tag::row("songs", "abc"),
                Tag::row("songs", 0)
            ]
        );
        let five = |_: usize| Some(Bound::Integer(5));
        let tags = written_tags("DELETE FROM songs WHERE id = ?", &five, || None).unwrap();
        assert_eq!(tags, [Tag::model("songs"), Tag::row("songs", 5)]);
    }

    /// `"Songs"` is `songs` to SQLite and MySQL: the tag a write bumps names the table in
    /// lower case, as reads name it.
    #[test]
    fn quoted_table_names_fold_to_lower_case() {
        let none = |_: usize| None;
        for sql in [
            r#"UPDATE "Songs" SET title = 'x'"#,
            "UPDATE SONGS SET title = 'x'",
            "UPDATE `Songs` SET title = 'x'",
            "UPDATE [Songs] SET title = 'x'",
            r#"UPDATE "Main"."Songs" SET title = 'x'"#,
        ] {
            let tags = written_tags(sql, &none, || None).unwrap();
            assert_eq!(tags, Tag::table_write("songs"), "{sql}");
        }
        let tags = written_tags(
            r#"DELETE FROM "App"."Songs" WHERE id = 'AbC'"#,
            &none,
            || None,
        );
        assert_eq!(
            tags.unwrap(),
            [
                Tag::model("app.songs"),
                Tag::row("app.songs", "AbC"),
                Tag::row("app.songs", 0)
            ]
        );
    }
}
