//! From a statement's SQL to the tags it reads: [`querycache_sql::reads`] finds the tables
//! (and the rows, where the statement pins them by primary key), this module turns them into
//! the tags a computation that sent the statement depends on — the same tags the write side
//! bumps (`written`), so that a write to anything the statement read invalidates it.

// Only the SeaORM and Diesel integrations report reads.
#![cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]

use querycache_sql::{Bound, ReadEffect, Rows};

use super::catalog::CatalogView;
use super::written::{pinned_by, row_keys};
use crate::tags::Tag;

/// What a statement reads, as tags; `Err` with the reason when it cannot be read (a
/// function or statement whose effect is not known, unparsable text, a view that calls
/// such a function): the computation that sent it must not be cached. A view read also
/// depends on its base tables (see `orm::catalog`).
pub(crate) fn read_tags(
    sql: &str,
    param: &dyn Fn(usize) -> Option<Bound>,
    keys: &CatalogView<'_>,
) -> Result<Vec<Tag>, String> {
    let primary_key = |table: &querycache_sql::TableName| keys.key(table).columns();
    match querycache_sql::reads(sql, param, &primary_key) {
        ReadEffect::Reads(tables) => {
            let mut tags = Vec::with_capacity(tables.len() * 2);
            let numeric = keys.text_reads_as_number();
            for read in tables {
                let table = keys.table_key(&read.table);
                // A view reads its base tables (see `orm::catalog`). Before the catalog
                // answered, a view read depends on its name only: a write by a connection
                // that knows the catalog bumps the views over what it writes, and one by a
                // connection that does not, every model tag.
                if let Some(relations) = keys.relations(&read.table, &table) {
                    let bases = relations.read_through(&table)?;
                    tags.extend(bases.iter().map(|base| Tag::model(base)));
                }
                let key = keys.key(&read.table);
                let ids = match read.rows {
                    Rows::Ids(ids) => row_keys(ids, key.columns().len(), numeric),
                    Rows::Inserted(_) | Rows::Unknown => None,
                };
                match ids {
                    Some(ids) => {
                        tags.extend(ids.iter().map(|id| Tag::row(&table, id)));
                        tags.push(Tag::bulk(&table));
                        tags.extend(pinned_by(&key, &table, true));
                    }
                    None => tags.push(Tag::model(&table)),
                }
            }
            Ok(tags)
        }
        ReadEffect::Unknown(why) => Err(why.to_string()),
    }
}

/// The reason a computation's value is not stored when it sent `sql`, which cannot be read
/// for `why`; logged at warn level the first time each statement text is seen (up to 1024
/// texts), naming it.
pub(crate) fn unreadable(why: &str, sql: &str) -> String {
    static SEEN: std::sync::LazyLock<parking_lot::Mutex<std::collections::HashSet<String>>> =
        std::sync::LazyLock::new(Default::default);
    let head: String = sql.chars().take(200).collect();
    let mut seen = SEEN.lock();
    if seen.len() < 1024 && seen.insert(head.clone()) {
        tracing::warn!(
            sql = %head,
            reason = %why,
            "a cached computation sent a read whose dependencies cannot be known; its value is not cached"
        );
    }
    format!("it sent a read that {why}: {head}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(sql: &str, id: Option<i128>) -> Vec<String> {
        let param = |i: usize| (i == 0).then_some(id.map(Bound::Integer)).flatten();
        read_tags(sql, &param, &CatalogView::guessed())
            .unwrap()
            .into_iter()
            .map(|t| t.as_str().to_owned())
            .collect()
    }

    #[test]
    fn a_by_id_read_depends_on_its_row_and_the_tables_bulk_writes() {
        let sql =
            r#"SELECT "songs"."id", "songs"."title" FROM "songs" WHERE "songs"."id" = $1 LIMIT $2"#;
        assert_eq!(
            tags(sql, Some(7)),
            ["model:songs:7", "model:songs#bulk", "model:songs#guess"]
        );
    }

    #[test]
    fn a_join_depends_on_every_table_it_read() {
        let sql = r#"SELECT s.title, u.name FROM songs s JOIN users u ON u.id = s.user_id"#;
        assert_eq!(tags(sql, None), ["model:songs", "model:users"]);
    }

    #[test]
    fn a_read_that_cannot_be_understood_is_an_error_naming_why() {
        let err =
            read_tags("SELECT my_function(1)", &|_| None, &CatalogView::guessed()).unwrap_err();
        assert!(err.contains("my_function"), "{err}");
    }

    /// A connection that knows a table's key and one that guesses `id` pin rows by
    /// different columns: each side's by-row entries are invalidated by the other side's
    /// by-row writes (more than needed, never less); two sides that agree stay precise.
    #[test]
    fn a_guessed_key_and_a_known_one_never_miss_each_other() {
        use crate::orm::catalog::{Catalog, CatalogSlot};
        use crate::orm::written::written_tags;

        let known = CatalogSlot::default();
        let row = "k\u{1f}main\u{1f}tracks\u{1f}1\u{1f}1\u{1f}song_id".to_owned();
        known.install(Catalog::from_rows(
            crate::orm::identity::Dialect::Sqlite,
            [row],
        ));
        let known = known.view();
        let guessed = CatalogView::guessed();
        let none = |_: usize| None;
        let read = |sql: &str, keys: &CatalogView<'_>| read_tags(sql, &none, keys).unwrap();
        let write = |sql: &str, keys: &CatalogView<'_>| {
            written_tags(sql, &none, keys, |_: &[String], _: bool| None).unwrap()
        };
        let meets = |read: &[Tag], written: &[Tag]| read.iter().any(|t| written.contains(t));

        let by_key = "SELECT * FROM tracks WHERE song_id = 1";
        let by_id = "SELECT * FROM tracks WHERE id = 1";
        let write_key = "UPDATE tracks SET title = 'x' WHERE song_id = 2";
        let write_id = "UPDATE tracks SET title = 'x' WHERE id = 2";
        // Known on both sides: another row stays.
        assert!(!meets(&read(by_key, &known), &write(write_key, &known)));
        // Guessed on both sides: the same column, another value stays.
        assert!(!meets(&read(by_id, &guessed), &write(write_id, &guessed)));
        // Mixed: every by-row write reaches the other rule's by-row reads.
        assert!(meets(&read(by_key, &known), &write(write_id, &guessed)));
        assert!(meets(&read(by_id, &guessed), &write(write_key, &known)));
        // The guessed view cannot pin `song_id`: a whole-table read and a bulk write.
        assert_eq!(read(by_key, &guessed), [Tag::model("tracks")]);
        assert!(write(write_key, &guessed).contains(&Tag::bulk("tracks")));
    }
}

#[cfg(test)]
mod relation_tests {
    use super::*;
    use crate::orm::catalog::Catalog;
    use crate::orm::identity::Dialect;
    use crate::orm::written::written_tags;

    fn catalog() -> CatalogView<'static> {
        let rows = [
            "k\u{1f}main\u{1f}songs\u{1f}1\u{1f}1\u{1f}id",
            "k\u{1f}main\u{1f}users\u{1f}1\u{1f}1\u{1f}id",
            "k\u{1f}main\u{1f}listens\u{1f}1\u{1f}1\u{1f}id",
            "k\u{1f}main\u{1f}albums\u{1f}1\u{1f}1\u{1f}id",
            "s\u{1f}main\u{1f}cards\u{1f}CREATE VIEW cards AS SELECT s.id, u.name FROM songs s \
             JOIN users u ON u.id = s.user_id",
            "f\u{1f}main\u{1f}listens\u{1f}main\u{1f}songs\u{1f}NO ACTION\u{1f}CASCADE",
        ];
        CatalogView::of(Catalog::from_rows(Dialect::Sqlite, rows.map(str::to_owned)))
    }

    fn strings(tags: Vec<Tag>) -> Vec<String> {
        tags.into_iter().map(|t| t.as_str().to_owned()).collect()
    }

    fn read(sql: &str, view: &CatalogView<'_>) -> Vec<String> {
        strings(read_tags(sql, &|_| None, view).unwrap())
    }

    fn write(sql: &str, view: &CatalogView<'_>) -> Vec<String> {
        strings(written_tags(sql, &|_| None, view, |_: &[String], _: bool| None).unwrap())
    }

    #[test]
    fn a_view_read_depends_on_its_tables() {
        let tags = read("SELECT * FROM cards WHERE id = 3", &catalog());
        for tag in ["model:songs", "model:users", "model:cards:3"] {
            assert!(tags.contains(&tag.to_owned()), "{tag} in {tags:?}");
        }
        // A table no relation reaches needs no more than before.
        assert_eq!(read("SELECT * FROM albums", &catalog()), ["model:albums"]);
    }

    #[test]
    fn a_write_reaches_views_and_cascades_and_an_insert_only_views() {
        let tags = write("DELETE FROM songs WHERE id = 3", &catalog());
        for tag in [
            "model:songs:3",
            "model:listens",
            "model:listens#bulk",
            "model:cards#bulk",
        ] {
            assert!(tags.contains(&tag.to_owned()), "{tag} in {tags:?}");
        }
        let tags = write("INSERT INTO songs (title) VALUES ('x')", &catalog());
        assert!(tags.contains(&"model:cards".to_owned()), "{tags:?}");
        assert!(!tags.contains(&"model:listens".to_owned()), "{tags:?}");
        assert!(!tags.contains(&"model:#all".to_owned()), "{tags:?}");
        assert!(!write("UPDATE albums SET x = 1", &catalog()).contains(&"model:songs".to_owned()));
    }

    #[test]
    fn before_the_catalog_answered_a_write_invalidates_every_model_tag() {
        let unknown = CatalogView::default();
        assert_eq!(read("SELECT * FROM albums", &unknown), ["model:albums"]);
        assert!(write("UPDATE albums SET x = 1", &unknown).contains(&"model:#all".to_owned()));
    }

    #[test]
    fn a_view_calling_an_unknown_function_cannot_be_read() {
        let rows = ["s\u{1f}main\u{1f}fv\u{1f}CREATE VIEW fv AS SELECT my_f(id) FROM songs"];
        let view = CatalogView::of(Catalog::from_rows(Dialect::Sqlite, rows.map(str::to_owned)));
        let why = read_tags("SELECT * FROM fv", &|_| None, &view).unwrap_err();
        assert!(why.contains("fv") && why.contains("my_f"), "{why}");
    }
}
