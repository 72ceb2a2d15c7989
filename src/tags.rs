//! Tags and tag versions: what an entry depends on, and how invalidation finds it in O(1).
//!
//! Every entry records, when its computation *starts*, the current version of each tag it
//! depends on (its snapshot). Invalidating a tag replaces the tag's version with a fresh,
//! never-before-used token. An entry is served only while every tag's version still equals
//! its snapshot, so:
//!
//! * invalidation touches one version per tag, however many entries depend on it;
//! * a reader that loaded old rows while a writer committed stores an entry whose snapshot is
//!   already outdated: it is never served (no stale set);
//! * a version that is lost (reclaimed here, evicted from Redis) comes back as a fresh token,
//!   which matches no old snapshot (no resurrection).
//!
//! # Model tags
//!
//! ORM writes and `#[cached_query(models = [..])]` speak in *model tags* derived from table
//! names (the one name SeaORM, Diesel and raw SQL share):
//!
//! | tag | bumped by | depended on by |
//! | --- | --- | --- |
//! | `model:songs` | every write to `songs` | list, count and aggregate queries |
//! | `model:songs:7` | a write to the row with primary key 7 | by-id queries for song 7 (`row = id`) |
//! | `model:members:["1","7"]` | a write to the row with the composite key `(1, 7)` | reads pinning that row |
//! | `model:songs#bulk` | a write whose rows are not known (`update_many`, raw SQL) | every by-id query on `songs` |
//! | `model:songs#guess` | a write to rows pinned by a known primary key other than `id` | by-row reads pinned by a guessed key (`id`, before the catalog answered) |
//! | `model:songs#keyed` | a write to rows pinned by a guessed key (`id`) | by-row reads pinned by a known primary key other than `id` |
//! | `model:#all` | a statement that could not be classified, a write sent before its connection read the catalog | every entry with a model tag |
//!
//! A cache serving several databases keeps these names for its first (default) database;
//! another database's model tags carry its namespace before the table,
//! `model:@tenant_42/songs:7` (`@` and `/` never appear in an unquoted table name, and
//! [`Tag::table`] reads `@tenant_42/songs`).
//!
//! The table part of a model tag is folded to ASCII lower case, whoever builds the tag
//! ([`Tag::model`], [`Tag::row`], [`Tag::bulk`], [`Tag::new`], [`table_key`]): SQLite and
//! MySQL (on case-insensitive file systems, and always for SQLite) find `songs` under
//! `"Songs"`, `SONGS` and `` `Songs` ``, so a write naming the table in any case must meet a
//! read declared on `songs`. On PostgreSQL `"Songs"` and `songs` are two tables: they then
//! share tags, which only invalidates more than needed. The row id keeps its case
//! (`model:songs:AbC` is not `model:songs:abc`).

use std::fmt;
use std::sync::Arc;

use crate::Error;
use crate::key::validate_name;

/// The longest tag accepted, in bytes.
pub const MAX_TAG_LEN: usize = 1024;

/// A name for something entries depend on: `model:songs`, `model:songs:42`, `user:123`.
/// Cheap to clone.
///
/// ```
/// use querycache::Tag;
///
/// assert_eq!(Tag::model("songs").as_str(), "model:songs");
/// assert_eq!(Tag::row("songs", 42).as_str(), "model:songs:42");
/// assert_eq!(Tag::bulk("songs").as_str(), "model:songs#bulk");
/// assert_eq!(Tag::new("user:123").unwrap().as_str(), "user:123");
/// assert_eq!(Tag::row("songs", 42).table(), Some("songs"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Arc<str>);

/// Prefix of every model tag.
const MODEL_PREFIX: &str = "model:";
/// Prefix of namespace tags.
const NAMESPACE_PREFIX: &str = "ns:";

/// Text built by `write` with one allocation: written into a reusable buffer of this thread
/// first, then copied into the `Arc` (tags are built on every cached call).
fn shared_text(write: impl Fn(&mut String)) -> Arc<str> {
    thread_local! {
        static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    BUF.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            write(&mut buf);
            Arc::from(buf.as_str())
        }
        // Re-entered (an id whose `Display` builds a tag): a buffer of its own.
        Err(_) => {
            let mut own = String::new();
            write(&mut own);
            Arc::from(own)
        }
    })
}

/// A model tag's text, `model:<table><rest>`, with the table folded to ASCII lower case (see
/// the module docs).
fn model_text(table: &str, rest: std::fmt::Arguments<'_>) -> Arc<str> {
    use std::fmt::Write as _;
    shared_text(|buf| {
        buf.push_str(MODEL_PREFIX);
        let start = buf.len();
        buf.push_str(table);
        if let Some(name) = buf.get_mut(start..) {
            name.make_ascii_lowercase();
        }
        // Writing into a `String` only fails if a `Display` impl does; the text is then
        // what was written, as `format!` would have panicked instead.
        let _ = buf.write_fmt(rest);
    })
}

impl Tag {
    /// Validates and wraps an application-defined tag such as `user:123`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] when the tag is empty, longer than [`MAX_TAG_LEN`] bytes, or
    /// contains a control character.
    ///
    /// A model tag's table part is folded to ASCII lower case, as [`Tag::model`] folds it:
    ///
    /// ```
    /// use querycache::Tag;
    ///
    /// assert_eq!(Tag::new("model:Songs:AbC").unwrap(), Tag::row("songs", "AbC"));
    /// assert_eq!(Tag::new("User:AbC").unwrap().as_str(), "User:AbC");
    /// ```
    pub fn new(tag: impl AsRef<str>) -> Result<Self, Error> {
        let tag = tag.as_ref();
        validate_name("tag", tag, MAX_TAG_LEN)?;
        if let Some(rest) = tag.strip_prefix(MODEL_PREFIX) {
            let end = rest.find([':', '#']).unwrap_or(rest.len());
            if rest[..end].bytes().any(|b| b.is_ascii_uppercase()) {
                let (table, after) = rest.split_at(end);
                return Ok(Tag(model_text(table, format_args!("{after}"))));
            }
        }
        Ok(Tag(Arc::from(tag)))
    }

    /// The table tag `model:<table>`: bumped by every write to the table. The table name is
    /// folded to ASCII lower case (see the [module docs](self)).
    ///
    /// ```
    /// use querycache::Tag;
    ///
    /// assert_eq!(Tag::model("Songs"), Tag::model("songs"));
    /// ```
    pub fn model(table: &str) -> Self {
        Tag(model_text(table, format_args!("")))
    }

    /// The row tag `model:<table>:<id>`: bumped by a write known to touch that row. The
    /// table name is folded to ASCII lower case; the id is kept as `Display` renders it.
    ///
    /// ```
    /// use querycache::Tag;
    ///
    /// assert_eq!(Tag::row("SONGS", "Ab").as_str(), "model:songs:Ab");
    /// ```
    pub fn row(table: &str, id: impl fmt::Display) -> Self {
        Tag(model_text(table, format_args!(":{id}")))
    }

    /// The bulk tag `model:<table>#bulk`: bumped by a write to rows that are not known. The
    /// table name is folded to ASCII lower case.
    pub fn bulk(table: &str) -> Self {
        Tag(model_text(table, format_args!("#bulk")))
    }

    /// `model:<table>#guess`: depended on by reads pinned to rows by a guessed key (`id`),
    /// bumped by writes pinned to rows by a known key other than `id` (see `orm::catalog`).
    #[cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]
    pub(crate) fn guessed_key(table: &str) -> Self {
        Tag(model_text(table, format_args!("#guess")))
    }

    /// `model:<table>#keyed`: depended on by reads pinned to rows by a known key other than
    /// `id`, bumped by writes pinned to rows by a guessed key (see `orm::catalog`).
    #[cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]
    pub(crate) fn known_key(table: &str) -> Self {
        Tag(model_text(table, format_args!("#keyed")))
    }

    /// What a write to unknown rows of `table` bumps: its table tag and its bulk tag.
    /// Invalidating these makes every entry that depends on the table a miss, by-id entries
    /// included — the manual counterpart of a write the ORM integration could not see.
    ///
    /// ```
    /// use querycache::Tag;
    ///
    /// assert_eq!(Tag::table_write("songs"), [Tag::model("songs"), Tag::bulk("songs")]);
    /// ```
    pub fn table_write(table: &str) -> [Self; 2] {
        [Tag::model(table), Tag::bulk(table)]
    }

    /// A model tag of `table` in the database namespace `ns` (`model:@ab12/songs` plus
    /// `rest`, `:7` or `#bulk`): see [`Cache`](crate::Cache)'s multi-database rule.
    pub(crate) fn model_in(ns: &str, table: &str, rest: &str) -> Self {
        Tag(model_text(ns, format_args!("/{table}{rest}")))
    }

    /// The table tag of `table` in every database but the default one (`model:@*/songs`):
    /// the entries of `#[cached_query]` calls on another database depend on it, and a write
    /// through a connection whose database is not known bumps it (see
    /// `cache::databases`).
    pub(crate) fn other_databases(table: &str) -> Self {
        Tag::model_in("@*", table, "")
    }

    /// The tag bumped by a statement that could not be classified; every entry that
    /// depends on any model tag also depends on this one.
    pub fn all_models() -> Self {
        Tag(Arc::from("model:#all"))
    }

    /// The tag every entry of a namespace depends on.
    pub(crate) fn namespace(namespace: &str) -> Self {
        Tag(shared_text(|buf| {
            buf.push_str(NAMESPACE_PREFIX);
            buf.push_str(namespace);
        }))
    }

    /// The tag as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For a model tag, the table it names (`songs` for `model:songs:7`); `None` for other
    /// tags and for `model:#all`.
    pub fn table(&self) -> Option<&str> {
        let rest = self.0.strip_prefix(MODEL_PREFIX)?;
        let end = rest.find([':', '#']).unwrap_or(rest.len());
        let table = &rest[..end];
        (!table.is_empty()).then_some(table)
    }

    /// Whether this is a model tag (`model:...`), including `model:#all`.
    pub fn is_model(&self) -> bool {
        self.0.starts_with(MODEL_PREFIX)
    }
}

/// The tags a write to `table` bumps: the table tag, plus the row tags of `ids` when the
/// written rows are known, or the bulk tag when they are not.
///
/// ```
/// use querycache::{Tag, tags::write_tags};
///
/// let tags = write_tags("songs", Some(&["8".to_string()]));
/// assert_eq!(tags, vec![Tag::model("songs"), Tag::row("songs", 8)]);
/// let tags = write_tags("songs", None);
/// assert_eq!(tags, vec![Tag::model("songs"), Tag::bulk("songs")]);
/// ```
pub fn write_tags(table: &str, ids: Option<&[String]>) -> Vec<Tag> {
    match ids {
        Some(ids) => std::iter::once(Tag::model(table))
            .chain(ids.iter().map(|id| Tag::row(table, id)))
            .collect(),
        None => Tag::table_write(table).to_vec(),
    }
}

/// The name model tags use for a table: `table`, or `schema.table` outside the default
/// schema (`public` on PostgreSQL, `main` on SQLite).
///
/// The same rule names the tables of reads (entities, [`CacheModel`]) and of writes (the SQL
/// classifier), so `public.songs`, `"public"."songs"` and `songs` are one tag, and
/// `app.songs` another. An unqualified name always means the default schema: querycache
/// cannot see a session's `search_path` (nor SQLite's `temp` tables shadowing `main`). An
/// application whose search_path puts another schema first, and that writes `app.songs`
/// as plain `songs`, must either qualify the names it writes the way its entities name
/// them, or declare the dependency:
/// [`table_also_writes("songs", ["app.songs"])`](crate::config::CacheConfigBuilder::table_also_writes).
/// The rule errs towards invalidating too much, never too little, in two cases: both
/// `public` and `main` are taken as the default, so on PostgreSQL a schema named `main`
/// shares its tables' tags with `public`; and names are folded to ASCII lower case (see the
/// [module docs](self)), so on PostgreSQL `"Songs"` shares its tags with `songs`.
///
/// ```
/// use querycache::tags::table_key;
///
/// assert_eq!(table_key(None, "songs"), "songs");
/// assert_eq!(table_key(Some("public"), "songs"), "songs");
/// assert_eq!(table_key(Some("music"), "songs"), "music.songs");
/// assert_eq!(table_key(Some("Music"), "Songs"), "music.songs");
/// assert_eq!(table_key(Some("MAIN"), "Songs"), "songs");
/// ```
pub fn table_key(schema: Option<&str>, table: &str) -> String {
    let mut key = match schema {
        Some(schema)
            if !schema.is_empty()
                && !schema.eq_ignore_ascii_case("public")
                && !schema.eq_ignore_ascii_case("main") =>
        {
            format!("{schema}.{table}")
        }
        _ => table.to_owned(),
    };
    key.make_ascii_lowercase();
    key
}

/// A type that stands for a table in `#[cached_query(models = [..])]`.
///
/// SeaORM entities need no impl: their table is read from `EntityName`. Implement it for
/// anything else a query depends on, such as a view or a table without an entity:
///
/// ```
/// use querycache::CacheModel;
///
/// struct TopSongsView;
/// impl CacheModel for TopSongsView {
///     const TABLE: &'static str = "top_songs";
/// }
/// ```
pub trait CacheModel {
    /// The table's name, as it appears in SQL.
    const TABLE: &'static str;
    /// Its schema, when it is not the default one.
    const SCHEMA: Option<&'static str> = None;
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Tag {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self, Error> {
        Tag::new(value)
    }
}

impl TryFrom<String> for Tag {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Tag::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_tags() {
        assert_eq!(Tag::model("songs").table(), Some("songs"));
        assert_eq!(Tag::bulk("app.songs").table(), Some("app.songs"));
        assert_eq!(Tag::all_models().table(), None);
        assert_eq!(Tag::new("user:1").unwrap().table(), None);
    }

    /// SQLite finds `songs` under `"Songs"`: reads and writes must name one tag, whatever
    /// case either spells the table in. Ids keep theirs.
    #[test]
    fn model_tags_fold_the_table_to_lower_case_and_keep_the_id() {
        assert_eq!(Tag::model("Songs").as_str(), "model:songs");
        assert_eq!(Tag::bulk("SONGS").as_str(), "model:songs#bulk");
        assert_eq!(Tag::row("App.Songs", "AbC").as_str(), "model:app.songs:AbC");
        assert_eq!(Tag::table_write("Songs"), Tag::table_write("songs"));
        assert_eq!(
            Tag::new("model:Songs:AbC").unwrap().as_str(),
            "model:songs:AbC"
        );
        assert_eq!(Tag::new("model:SONGS#bulk").unwrap(), Tag::bulk("songs"));
        assert_eq!(Tag::new("model:#all").unwrap(), Tag::all_models());
        assert_eq!(Tag::new("User:AbC").unwrap().as_str(), "User:AbC");
        assert_eq!(Tag::row("Sóngs", 1).as_str(), "model:sóngs:1");
        assert_eq!(table_key(Some("App"), "Songs"), "app.songs");
        assert_eq!(table_key(Some("PUBLIC"), "Songs"), "songs");
    }
}
