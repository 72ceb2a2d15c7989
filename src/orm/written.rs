//! From a statement's SQL to the tags it writes: [`querycache_sql`] classifies (tables as
//! [`TableName`]s, rows as id strings), this module turns that into tags (`table_key`,
//! `write_tags`). Shared by the ORM integrations, which differ only in how they see
//! statements, their bound values and the rows they return.

use querycache_sql::{Bound, Effect, Rows};

use super::catalog::{CatalogView, Fires, Key};
use crate::tags::{Tag, write_tags};

/// The tags `sql` writes; `None` for a read. `param(i)` gives the i-th bound value (see
/// [`querycache_sql::classify`]); `keys` the tables' primary keys and relations (see
/// `orm::catalog`): a write also writes the views and cascades it reaches; one classified
/// before the catalog answered, which cannot know them, invalidates every model tag
/// (`model:#all`, with a warning the first time).
/// `returned_ids(columns, generated)` gives the ids of the rows the statement inserted (the
/// values of the key `columns`, rendered as [`querycache_sql::row_id`] renders them), when
/// the integration can see them: the rows it returned, or on MySQL the id `AUTO_INCREMENT`
/// generated for a one-row insert, which is the row's key when `generated` (the key is the
/// table's one `AUTO_INCREMENT` column, as the catalog answered). A single `INSERT ...
/// VALUES` that only inserts then touches those rows rather than the whole table in bulk —
/// if every row it inserted is accounted for (SeaORM's `exec_with_returning` reads one row
/// of a multi-row insert).
///
/// A statement that cannot be classified writes `model:#all`, with a warning.
pub(crate) fn written_tags(
    sql: &str,
    param: &dyn Fn(usize) -> Option<Bound>,
    keys: &CatalogView<'_>,
    returned_ids: impl FnOnce(&[String], bool) -> Option<Vec<String>>,
) -> Option<Vec<Tag>> {
    if is_plain_read(sql) {
        return None;
    }
    let primary_key = |table: &querycache_sql::TableName| keys.key(table).columns();
    match querycache_sql::classify(sql, param, &primary_key) {
        Effect::Read => None,
        Effect::Writes(writes) => {
            let mut returned_ids = Some(returned_ids);
            let mut tags = Vec::new();
            let mut uncharted = false;
            let mut fires = None;
            let numeric = keys.text_reads_as_number();
            for w in &writes {
                let table = keys.table_key(&w.table);
                // What the catalog says the write reaches beyond the table: views over it,
                // cascades (see `orm::catalog`).
                match keys.relations(&w.table, &table) {
                    Some(relations) => {
                        let fires = match w.rows {
                            Rows::Inserted(_) => Fires::default(),
                            _ => *fires.get_or_insert_with(|| Fires::of_text(sql)),
                        };
                        for also in relations.also_written(&table, fires) {
                            tags.extend(Tag::table_write(also));
                        }
                    }
                    None => uncharted = true,
                }
                let key = keys.key(&w.table);
                let columns = key.columns();
                let ids = match &w.rows {
                    // MySQL gives an AUTO_INCREMENT column given 0 a new key: not row 0.
                    Rows::Ids(ids) if numeric && names_zero(ids, columns.len()) && inserts(sql) => {
                        None
                    }
                    Rows::Ids(ids) => row_keys(ids.clone(), columns.len(), numeric),
                    // Only the rows of the text's one INSERT come back.
                    Rows::Inserted(count) if writes.len() == 1 => returned_ids
                        .take()
                        .and_then(|returned| returned(&columns, keys.key_is_generated(&w.table)))
                        .filter(|ids| ids.len() == *count)
                        .and_then(|ids| row_keys(ids, columns.len(), numeric)),
                    Rows::Inserted(_) | Rows::Unknown => None,
                };
                tags.extend(write_tags(&table, ids.as_deref()));
                if ids.is_some() {
                    tags.extend(pinned_by(&key, &table, false));
                }
            }
            if uncharted {
                uncharted_write(sql);
                tags.push(Tag::all_models());
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

/// Whether one of `ids` (of a `columns`-column key) has a 0 in it.
fn names_zero(ids: &[String], columns: usize) -> bool {
    ids.iter().any(|id| {
        if columns <= 1 {
            return id == "0";
        }
        querycache_sql::row_id_parts(id).is_none_or(|parts| parts.iter().any(|p| p == "0"))
    })
}

/// Whether `sql` may insert rows, by its words (`INSERT`, `REPLACE`); a word inside a
/// literal or a comment only makes a write less precise.
fn inserts(sql: &str) -> bool {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w.eq_ignore_ascii_case("INSERT") || w.eq_ignore_ascii_case("REPLACE"))
}

/// A write classified before its connection read the database's catalog: what views and
/// cascading foreign keys it reaches is not known, so it invalidates every model tag; said
/// at warn level once per process, naming the statement.
fn uncharted_write(sql: &str) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        let head: String = sql.chars().take(120).collect();
        tracing::warn!(
            sql = %head,
            "a write was sent through a connection that has not read its database's catalog \
             (views, cascading foreign keys) yet: it invalidates every cached entry. Diesel: \
             call querycache::orm::diesel::identify(&mut conn) once at startup (said once)"
        );
    }
}

/// The tag that makes rows pinned under `key` meet rows pinned under the other rule (see
/// `orm::catalog`): for a read (`read`), the tag it depends on; for a write, the tag it bumps.
/// None for a known key `id`: it pins the same rows as the guess, and no connection can
/// know another key for the table.
pub(super) fn pinned_by(key: &Key, table: &str, read: bool) -> Option<Tag> {
    match (key, read) {
        (Key::Known(_), _) if key.is_guess_like() => None,
        (Key::Guessed, true) | (Key::Known(_), false) => Some(Tag::guessed_key(table)),
        (Key::Guessed, false) | (Key::Known(_), true) => Some(Tag::known_key(table)),
    }
}

/// The most keys one row id of a composite key may stand for (see [`row_keys`]); beyond,
/// the rows are not known.
const MAX_ROW_KEYS: usize = 64;

/// The keys of the rows a list of ids of a `columns`-column key may select, given that the
/// key columns' types are not known: the ids themselves and, when `numeric` (the database
/// may be MySQL), for each value that is not an integer, the integers MySQL compares it as
/// with an integer column — 0 for text that does not start with a number (`'abc'`), the
/// leading digits for text that does (a UUID `'12345678-…'`). (Other text that starts like
/// a number is no id: see [`Bound::Text`].) `None` when an id cannot be read back or stands
/// for too many keys: the rows are not known.
///
/// MySQL also compares text with a text key under the column's collation: the default ones
/// ignore case and trailing spaces (`'ABC ' = 'abc'`), and accents (`'é' = 'e'`). So where
/// the database may be MySQL a text value is keyed in lower case without trailing spaces
/// (reads and writes alike, so `'ABC'` and `'abc'` meet), and a value with a character
/// outside printable ASCII, whose equals a collation decides, pins no row.
pub(super) fn row_keys(ids: Vec<String>, columns: usize, numeric: bool) -> Option<Vec<String>> {
    let mut keys = Vec::with_capacity(ids.len() + 1);
    let mut seen = std::collections::HashSet::new();
    let mut push = |key: String, keys: &mut Vec<String>| {
        if seen.insert(key.clone()) {
            keys.push(key);
        }
    };
    for id in ids {
        if columns <= 1 {
            for key in alternatives(&id, numeric)? {
                push(key, &mut keys);
            }
            continue;
        }
        let parts = querycache_sql::row_id_parts(&id)?;
        if parts.len() != columns {
            return None;
        }
        let mut rows: Vec<Vec<String>> = vec![Vec::new()];
        for part in &parts {
            let options = alternatives(part, numeric)?;
            if rows.len() * options.len() > MAX_ROW_KEYS {
                return None;
            }
            rows = rows
                .iter()
                .flat_map(|row| {
                    options.iter().map(move |option| {
                        let mut row = row.clone();
                        row.push(option.clone());
                        row
                    })
                })
                .collect();
        }
        for row in rows {
            push(querycache_sql::row_id(&row), &mut keys);
        }
    }
    Some(keys)
}

/// One key value, as MySQL's collations and conversions may match it (see [`row_keys`]):
/// its folded text and the integers it compares as; `None` when a collation decides what
/// it equals.
fn alternatives(value: &str, numeric: bool) -> Option<Vec<String>> {
    if !numeric || value.parse::<i128>().is_ok() {
        return Some(vec![value.to_owned()]);
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let folded = value.trim_end_matches(' ').to_ascii_lowercase();
    let rest = value.trim_start_matches(|c: char| c.is_ascii_digit());
    let digits = value.get(..value.len() - rest.len()).unwrap_or_default();
    let leading = match digits.trim_start_matches('0') {
        "" => "0",
        trimmed => trimmed,
    };
    // The classifier's text ids start with a letter (0 to MySQL) or are UUIDs led by
    // digits (their number): one integer each.
    Some(vec![folded, leading.to_owned()])
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
        let ids = |_: &[String], _: bool| Some(vec!["7".to_owned()]);
        let tags = written_tags(
            "INSERT INTO songs (title) VALUES ('a')",
            &none,
            &CatalogView::guessed(),
            ids,
        )
        .unwrap();
        assert!(tags.contains(&Tag::row("songs", "7")));
        assert!(!tags.contains(&Tag::bulk("songs")));
        // DO NOTHING only skips rows: the returned ones are all it wrote.
        let skip = "INSERT INTO songs (title) VALUES ('a') ON CONFLICT (title) DO NOTHING";
        let tags = written_tags(skip, &none, &CatalogView::guessed(), ids).unwrap();
        assert_eq!(
            tags,
            [
                Tag::model("songs"),
                Tag::row("songs", "7"),
                Tag::known_key("songs")
            ]
        );
        let upsert =
            "INSERT INTO songs (title) VALUES ('a') ON CONFLICT (title) DO UPDATE SET n = 1";
        let tags = written_tags(upsert, &none, &CatalogView::guessed(), ids).unwrap();
        assert!(tags.contains(&Tag::bulk("songs")));
        assert_eq!(
            written_tags("SELECT 1", &none, &CatalogView::guessed(), ids),
            None
        );
        assert_eq!(
            written_tags("CALL x()", &none, &CatalogView::guessed(), ids),
            Some(vec![Tag::all_models()])
        );
    }

    /// MySQL generates a key for an `AUTO_INCREMENT` column given 0 or NULL: such an insert
    /// wrote a row whose key the text does not say, so it is bulk where the database may be
    /// MySQL, and row 0 elsewhere.
    #[test]
    fn an_insert_of_key_zero_or_null_is_bulk_where_mysql_generates_one() {
        let none = |_: usize| None;
        let no_ids = |_: &[String], _: bool| None;
        for sql in [
            "INSERT INTO songs (id, title) VALUES (0, 'a')",
            "INSERT INTO songs (id, title) VALUES (NULL, 'a')",
            "INSERT INTO songs (id, title) VALUES (5, 'a'), (0, 'b')",
        ] {
            let tags = written_tags(sql, &none, &CatalogView::guessed(), no_ids).unwrap();
            assert!(tags.contains(&Tag::bulk("songs")), "{sql}: {tags:?}");
        }
        let zero = |_: usize| Some(Bound::Integer(0));
        let tags = written_tags(
            "INSERT INTO songs (id, title) VALUES (?, 'a')",
            &zero,
            &CatalogView::guessed(),
            no_ids,
        )
        .unwrap();
        assert!(tags.contains(&Tag::bulk("songs")), "{tags:?}");
        // An update of row 0 is row 0.
        let tags = written_tags(
            "UPDATE songs SET title = 'a' WHERE id = 0",
            &none,
            &CatalogView::guessed(),
            no_ids,
        )
        .unwrap();
        assert!(!tags.contains(&Tag::bulk("songs")), "{tags:?}");
    }

    /// SeaORM's `insert_many(..).exec_with_returning` reads one row of a multi-row insert:
    /// the other rows' ids were never seen, so the write is bulk.
    #[test]
    fn returned_ids_narrow_only_when_every_inserted_row_came_back() {
        let none = |_: usize| None;
        let two = r#"INSERT INTO "songs" ("title") VALUES ($1), ($2) RETURNING "id""#;
        let one_back = |_: &[String], _: bool| Some(vec!["7".to_owned()]);
        let tags = written_tags(two, &none, &CatalogView::guessed(), one_back).unwrap();
        assert_eq!(tags, Tag::table_write("songs"));
        let both_back = |_: &[String], _: bool| Some(vec!["7".to_owned(), "8".to_owned()]);
        let tags = written_tags(two, &none, &CatalogView::guessed(), both_back).unwrap();
        assert_eq!(
            tags,
            [
                Tag::model("songs"),
                Tag::row("songs", 7),
                Tag::row("songs", 8),
                Tag::known_key("songs")
            ]
        );
        // Rows from a query: how many were inserted is not known.
        let select = r#"INSERT INTO "songs" ("title") SELECT "title" FROM "drafts" RETURNING "id""#;
        let tags = written_tags(select, &none, &CatalogView::guessed(), one_back).unwrap();
        assert_eq!(tags, Tag::table_write("songs"));
        let default = r#"INSERT INTO "songs" DEFAULT VALUES RETURNING "id""#;
        let tags = written_tags(default, &none, &CatalogView::guessed(), one_back).unwrap();
        assert_eq!(tags, Tag::table_write("songs"));
    }

    /// `INSERT OR REPLACE` deletes rows conflicting on any unique key: whatever separates
    /// its words, it is no plain insert (the substring check this replaced missed `\n`).
    #[test]
    fn replace_is_read_from_tokens_whatever_separates_its_words() {
        let none = |_: usize| None;
        let ids = |_: &[String], _: bool| Some(vec!["7".to_owned()]);
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
            let tags = written_tags(sql, &none, &CatalogView::guessed(), ids).unwrap();
            assert!(tags.contains(&Tag::bulk("songs")), "{sql:?}: {tags:?}");
        }
    }

    /// MySQL compares text that does not start with a number with an integer key as 0.
    #[test]
    fn a_text_id_also_touches_row_zero() {
        let slug = |_: usize| Some(Bound::Text("abc".to_owned()));
        let tags = written_tags(
            "DELETE FROM songs WHERE id = ?",
            &slug,
            &CatalogView::guessed(),
            |_: &[String], _: bool| None,
        )
        .unwrap();
        assert_eq!(
            tags,
            [
                Tag::model("songs"),
                Tag::row("songs", "abc"),
                Tag::row("songs", 0),
                Tag::known_key("songs")
            ]
        );
        let five = |_: usize| Some(Bound::Integer(5));
        let tags = written_tags(
            "DELETE FROM songs WHERE id = ?",
            &five,
            &CatalogView::guessed(),
            |_: &[String], _: bool| None,
        )
        .unwrap();
        assert_eq!(
            tags,
            [
                Tag::model("songs"),
                Tag::row("songs", 5),
                Tag::known_key("songs")
            ]
        );
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
            let tags = written_tags(
                sql,
                &none,
                &CatalogView::guessed(),
                |_: &[String], _: bool| None,
            )
            .unwrap();
            assert_eq!(tags, Tag::table_write("songs"), "{sql}");
        }
        let tags = written_tags(
            r#"DELETE FROM "App"."Songs" WHERE id = 'AbC'"#,
            &none,
            &CatalogView::guessed(),
            |_: &[String], _: bool| None,
        );
        assert_eq!(
            tags.unwrap(),
            [
                Tag::model("app.songs"),
                Tag::row("app.songs", "abc"),
                Tag::row("app.songs", 0),
                Tag::known_key("app.songs")
            ]
        );
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    /// A composite id stands for each combination of the integers MySQL may compare its
    /// text values as; a UUID starting with digits also for its leading number.
    #[test]
    fn row_keys_of_composite_and_uuid_ids() {
        let id = querycache_sql::row_id(&["7".into(), "ab".into()]);
        assert_eq!(
            row_keys(vec![id.clone()], 2, true).unwrap(),
            [r#"["7","ab"]"#, r#"["7","0"]"#]
        );
        let uuid = "12345678-9c0b-4ef8-bb6d-6bb9bd380a11".to_owned();
        assert_eq!(
            row_keys(vec![uuid.clone()], 1, true).unwrap(),
            [uuid.as_str(), "12345678"]
        );
        assert_eq!(
            row_keys(vec!["7".into()], 2, true),
            None,
            "not a composite id"
        );
        // Long id lists keep every id (once), in order.
        let many: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        assert_eq!(row_keys(many.clone(), 1, true).unwrap(), many);
        // PostgreSQL and SQLite compare text with an integer key strictly.
        assert_eq!(
            row_keys(vec![uuid.clone()], 1, false).unwrap(),
            [uuid.as_str()]
        );
        assert_eq!(row_keys(vec![id.clone()], 2, false).unwrap(), [id.as_str()]);
    }

    /// Where the database may be MySQL, text keys meet as its default collations compare
    /// them: without case or trailing spaces; beyond printable ASCII, no row is pinned.
    #[test]
    fn text_keys_fold_as_mysql_collations_compare() {
        for id in ["ABC", "abc", "Abc  "] {
            assert_eq!(
                row_keys(vec![id.into()], 1, true).unwrap(),
                ["abc", "0"],
                "{id}"
            );
        }
        assert_eq!(row_keys(vec!["café".into()], 1, true), None);
        let composite = querycache_sql::row_id(&["7".into(), "Zoë".into()]);
        assert_eq!(row_keys(vec![composite], 2, true), None);
        // PostgreSQL and SQLite compare text exactly.
        assert_eq!(row_keys(vec!["ABC".into()], 1, false).unwrap(), ["ABC"]);
        assert_eq!(row_keys(vec!["café".into()], 1, false).unwrap(), ["café"]);
    }
}
