//! What a database's catalog says about its tables, learnt once per database (and again when
//! a statement names a table the last answer did not list): the columns that key each table
//! ([`keys`]), and the relations no statement text shows ([`relations`]): which tables a view
//! reads, and which tables a write also writes through a cascading foreign key.
//!
//! The catalog is asked where a connection can send a query of its own: SeaORM before it
//! classifies a statement (outside transactions), Diesel when a cached call is given the
//! connection, or at [`identify`](crate::orm::diesel::identify) (its instrumentation cannot
//! send queries). All the catalog's rows come back in one query, of one text column: a kind
//! letter and fields separated by [`SEPARATOR`] (see [`Dialect::catalog_sql`]).
//!
//! Until the catalog answered, a connection does not know the relations, and it fails safe:
//! every write it classifies invalidates every model tag (`model:#all`, with a warning the
//! first time), since it cannot say which views and cascades it reaches. A read of a view
//! classified then depends on the view's name only, which a write by a connection that knows
//! the catalog bumps (it reaches the views over what it writes). A Diesel connection asks at
//! its first cached call: an application that writes through connections never given to a
//! cached call should call [`identify`](crate::orm::diesel::identify) once at startup.

mod keys;
mod relations;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};
use querycache_sql::TableName;

use crate::orm::identity::Dialect;
pub(crate) use keys::Key;
use keys::PrimaryKeys;
pub(crate) use relations::{Fires, Relations};

/// Separates the fields of one catalog row (the ASCII unit separator: never in a name
/// querycache can read back; a row that does not split into its kind's fields is skipped).
pub(crate) const SEPARATOR: char = '\u{1f}';

impl Dialect {
    /// The catalog query: one text column (`identity`, the identity query's, so that Diesel
    /// reads both with one row type), one row per fact, a kind letter first:
    ///
    /// | kind | fields | fact |
    /// | --- | --- | --- |
    /// | `k` | schema, table, the schema's rank in the search path, position, column | a primary key column |
    /// | `v` | view schema, view, schema, table | a view (or materialized view) reads a table or view |
    /// | `s` | view schema, view, definition | a view's SQL, read with [`querycache_sql::view_reads`] |
    /// | `o` | view schema, view, function | a view calls a function whose effect is not known |
    /// | `f` | schema, table, referenced schema, referenced table, on update, on delete | a foreign key |
    /// | `d` | database | MySQL's current database (its tables' names need no schema) |
    /// | `a` | schema, table, column | MySQL: the table's `AUTO_INCREMENT` column |
    ///
    /// PostgreSQL: keys of the tables of the connection's schemas (`current_schemas`), views
    /// from `pg_rewrite`/`pg_depend` (a function a view depends on there is a user's one:
    /// built-ins are not recorded), foreign keys from `pg_constraint`; MySQL: the current
    /// database's, from `information_schema`, but the views of every database (MySQL's
    /// schemas are its databases: a view in another one may read this one's tables, as a
    /// PostgreSQL view in another schema may, and its definition names them qualified);
    /// SQLite: `main`'s, from `sqlite_master` and its pragmas. Read-only.
    pub(crate) fn catalog_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "SELECT 'k' || chr(31) || n.nspname || chr(31) || c.relname || chr(31) \
                 || array_position(current_schemas(false), n.nspname)::text || chr(31) \
                 || k.ord::text || chr(31) || a.attname AS identity \
                 FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE i.indisprimary AND n.nspname = ANY (current_schemas(false)) \
                 UNION ALL \
                 SELECT DISTINCT 'v' || chr(31) || vn.nspname || chr(31) || v.relname \
                 || chr(31) || tn.nspname || chr(31) || t.relname \
                 FROM pg_rewrite r \
                 JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid \
                 AND d.refclassid = 'pg_class'::regclass \
                 JOIN pg_class v ON v.oid = r.ev_class \
                 JOIN pg_namespace vn ON vn.oid = v.relnamespace \
                 JOIN pg_class t ON t.oid = d.refobjid \
                 JOIN pg_namespace tn ON tn.oid = t.relnamespace \
                 WHERE v.relkind IN ('v', 'm') AND t.oid <> v.oid \
                 AND t.relkind IN ('r', 'p', 'v', 'm', 'f') \
                 AND vn.nspname NOT IN ('pg_catalog', 'information_schema') \
                 UNION ALL \
                 SELECT DISTINCT 'o' || chr(31) || vn.nspname || chr(31) || v.relname \
                 || chr(31) || pn.nspname || '.' || p.proname \
                 FROM pg_rewrite r \
                 JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid \
                 AND d.refclassid = 'pg_proc'::regclass \
                 JOIN pg_class v ON v.oid = r.ev_class \
                 JOIN pg_namespace vn ON vn.oid = v.relnamespace \
                 JOIN pg_proc p ON p.oid = d.refobjid \
                 JOIN pg_namespace pn ON pn.oid = p.pronamespace \
                 WHERE v.relkind IN ('v', 'm') \
                 AND vn.nspname NOT IN ('pg_catalog', 'information_schema') \
                 UNION ALL \
                 SELECT 'f' || chr(31) || cn.nspname || chr(31) || c.relname || chr(31) \
                 || pn.nspname || chr(31) || p.relname || chr(31) || f.confupdtype::text \
                 || chr(31) || f.confdeltype::text \
                 FROM pg_constraint f \
                 JOIN pg_class c ON c.oid = f.conrelid \
                 JOIN pg_namespace cn ON cn.oid = c.relnamespace \
                 JOIN pg_class p ON p.oid = f.confrelid \
                 JOIN pg_namespace pn ON pn.oid = p.relnamespace \
                 WHERE f.contype = 'f'"
            }
            Dialect::MySql => {
                "SELECT CONCAT('k', CHAR(31 USING utf8mb4), table_schema, CHAR(31 USING utf8mb4), \
                 table_name, CHAR(31 USING utf8mb4), '1', CHAR(31 USING utf8mb4), \
                 ordinal_position, CHAR(31 USING utf8mb4), column_name) AS identity \
                 FROM information_schema.key_column_usage \
                 WHERE constraint_name = 'PRIMARY' AND table_schema = DATABASE() \
                 UNION ALL \
                 SELECT CONCAT('d', CHAR(31 USING utf8mb4), DATABASE()) \
                 UNION ALL \
                 SELECT CONCAT('s', CHAR(31 USING utf8mb4), table_schema, \
                 CHAR(31 USING utf8mb4), table_name, CHAR(31 USING utf8mb4), view_definition) \
                 FROM information_schema.views \
                 WHERE table_schema NOT IN ('mysql', 'sys', 'information_schema', \
                 'performance_schema') \
                 UNION ALL \
                 SELECT CONCAT('a', CHAR(31 USING utf8mb4), table_schema, \
                 CHAR(31 USING utf8mb4), table_name, CHAR(31 USING utf8mb4), column_name) \
                 FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND extra LIKE '%auto_increment%' \
                 UNION ALL \
                 SELECT CONCAT('f', CHAR(31 USING utf8mb4), constraint_schema, \
                 CHAR(31 USING utf8mb4), table_name, CHAR(31 USING utf8mb4), \
                 unique_constraint_schema, CHAR(31 USING utf8mb4), referenced_table_name, \
                 CHAR(31 USING utf8mb4), update_rule, CHAR(31 USING utf8mb4), delete_rule) \
                 FROM information_schema.referential_constraints \
                 WHERE constraint_schema = DATABASE()"
            }
            Dialect::Sqlite => {
                "SELECT 'k' || char(31) || 'main' || char(31) || m.name || char(31) || '1' \
                 || char(31) || p.pk || char(31) || p.name AS identity \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.pk > 0 \
                 UNION ALL \
                 SELECT 's' || char(31) || 'main' || char(31) || name || char(31) || sql \
                 FROM sqlite_master WHERE type = 'view' \
                 UNION ALL \
                 SELECT 'f' || char(31) || 'main' || char(31) || m.name || char(31) || 'main' \
                 || char(31) || f.\"table\" || char(31) || f.on_update || char(31) || f.on_delete \
                 FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
                 WHERE m.type = 'table'"
            }
        }
    }
}

/// One database's catalog, as it answered.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    keys: PrimaryKeys,
    /// `None`: the relations are not known (the catalog could not be read).
    relations: Option<Relations>,
    /// The database's dialect, when the catalog answered.
    dialect: Option<Dialect>,
    /// MySQL: each table's `AUTO_INCREMENT` column (lower case), by the table's lookup
    /// names (qualified and bare, as [`PrimaryKeys`] keys them).
    generated: HashMap<String, String>,
    /// MySQL: the connection's database, whose tables need no qualifier (`app.songs` is
    /// `songs` when connected to `app`).
    default_schema: Option<String>,
}

impl Catalog {
    /// A catalog with nothing in it, known to be complete (a mock connection's).
    #[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
    pub(crate) fn empty() -> Self {
        Catalog {
            relations: Some(Relations::default()),
            ..Catalog::default()
        }
    }

    /// The catalog in the rows of [`Dialect::catalog_sql`]'s answer. Rows of an unknown kind,
    /// or without their kind's fields, are skipped.
    pub(crate) fn from_rows(dialect: Dialect, rows: impl IntoIterator<Item = String>) -> Self {
        let mut key_rows = Vec::new();
        let mut generated = HashMap::new();
        let mut default_schema = None;
        let mut relations = relations::Builder::default();
        for row in rows {
            let Some((kind, rest)) = row.split_once(SEPARATOR) else {
                continue;
            };
            match kind {
                "k" => key_rows.push(rest.to_owned()),
                "d" => {
                    relations.default_schema(rest);
                    default_schema = Some(rest.to_owned());
                }
                "a" => {
                    if let [schema, table, column] = fields::<3>(rest)[..] {
                        let (table, column) = (table.to_lowercase(), column.to_lowercase());
                        let qualified = format!("{}.{table}", schema.to_lowercase());
                        generated.insert(qualified, column.clone());
                        generated.insert(table, column);
                    }
                }
                "v" => {
                    if let [schema, view, base_schema, base] = fields::<4>(rest)[..] {
                        relations.view_reads(schema, view, base_schema, base);
                    }
                }
                "s" => {
                    if let [schema, view, definition] = fields::<3>(rest)[..] {
                        relations.view_definition(schema, view, definition);
                    }
                }
                "o" => {
                    if let [schema, view, function] = fields::<3>(rest)[..] {
                        relations.view_calls(schema, view, function);
                    }
                }
                "f" => {
                    if let [schema, table, parent_schema, parent, on_update, on_delete] =
                        fields::<6>(rest)[..]
                    {
                        relations.foreign_key(
                            (schema, table),
                            (parent_schema, parent),
                            [on_update, on_delete],
                        );
                    }
                }
                _ => {}
            }
        }
        Catalog {
            keys: PrimaryKeys::from_rows(dialect, key_rows),
            relations: Some(relations.build()),
            dialect: Some(dialect),
            generated,
            default_schema,
        }
    }
}

/// The `N` fields of a row's rest (the last one takes what remains, separators included), or
/// fewer when the row has fewer.
fn fields<const N: usize>(rest: &str) -> Vec<&str> {
    rest.splitn(N, SEPARATOR).collect()
}

/// The catalog of one database as a connection knows it: the last answer, and the tables
/// named since that it did not list.
#[derive(Debug, Default)]
pub(crate) struct CatalogSlot {
    catalog: RwLock<Option<Arc<Catalog>>>,
    missed: Mutex<HashSet<String>>,
    /// `missed` is not empty (read on every statement without taking the lock).
    any_missed: AtomicBool,
}

impl CatalogSlot {
    /// Whether the catalog should be asked (again): never asked, or a table it did not list
    /// was named since.
    pub(crate) fn wanted(&self) -> bool {
        self.any_missed.load(Ordering::Acquire) || self.catalog.read().is_none()
    }

    /// Installs the catalog's answer; the tables named since the last answer that it does
    /// not list either are remembered as absent (not asked about again).
    pub(crate) fn install(&self, mut catalog: Catalog) {
        let missed = {
            let mut missed = self.missed.lock();
            self.any_missed.store(false, Ordering::Release);
            std::mem::take(&mut *missed)
        };
        let previous = self.catalog.read().clone();
        catalog
            .keys
            .remember_absent(missed, previous.as_ref().map(|p| &p.keys));
        tracing::debug!(
            tables = catalog.keys.len(),
            relations = catalog.relations.as_ref().map(Relations::len),
            "catalog learnt"
        );
        *self.catalog.write() = Some(Arc::new(catalog));
    }

    /// What classification may ask now.
    pub(crate) fn view(&self) -> CatalogView<'_> {
        CatalogView {
            catalog: self.catalog.read().clone(),
            slot: Some(self),
        }
    }
}

/// A table's key and relations, for classification: a snapshot of a [`CatalogSlot`]'s
/// answer, noting the tables it does not list.
#[derive(Debug, Default)]
pub(crate) struct CatalogView<'a> {
    catalog: Option<Arc<Catalog>>,
    slot: Option<&'a CatalogSlot>,
}

impl CatalogView<'_> {
    /// A catalog that lists nothing and knows no relation: every key guessed.
    #[cfg(test)]
    pub(crate) fn guessed() -> CatalogView<'static> {
        CatalogView {
            catalog: Some(Arc::new(Catalog::empty())),
            slot: None,
        }
    }

    /// The view of `catalog`, alone.
    #[cfg(test)]
    pub(crate) fn of(catalog: Catalog) -> CatalogView<'static> {
        CatalogView {
            catalog: Some(Arc::new(catalog)),
            slot: None,
        }
    }

    /// `table`'s key. A table the answer does not list is guessed, and noted so that the
    /// catalog is asked again.
    pub(crate) fn key(&self, table: &TableName) -> Key {
        self.listed(table).unwrap_or(Key::Guessed)
    }

    /// Whether `table`'s primary key is its one `AUTO_INCREMENT` column (MySQL), as the
    /// catalog answered: then the id MySQL reports for a one-row insert that left the key to
    /// the database is that row's key.
    pub(crate) fn key_is_generated(&self, table: &TableName) -> bool {
        let Some(catalog) = self.catalog.as_ref() else {
            return false;
        };
        let name = PrimaryKeys::lookup_name(table);
        match (catalog.keys.key(table), catalog.generated.get(&name)) {
            (Some(Key::Known(columns)), Some(generated)) => {
                matches!(columns.as_slice(), [column] if column == generated)
            }
            _ => false,
        }
    }

    /// `table`'s key when the answer lists it (or was asked about it since); `None`, noted
    /// so that the catalog is asked again, when it does not.
    fn listed(&self, table: &TableName) -> Option<Key> {
        let catalog = self.catalog.as_ref()?;
        let key = catalog.keys.key(table);
        if key.is_none()
            && let Some(slot) = self.slot
        {
            slot.missed.lock().insert(PrimaryKeys::lookup_name(table));
            slot.any_missed.store(true, Ordering::Release);
        }
        key
    }

    /// The database's relations, when they are known: `None`
    /// until the catalog answered, or when it could not be read. A table the answer neither
    /// lists nor names in a relation (created since) is taken to have no relation, and noted
    /// so that the catalog is asked again (see [`listed`](Self::listed)).
    /// `name` is the name model tags give `table` ([`table_key`](crate::tags::table_key)), which the caller has.
    pub(crate) fn relations(&self, table: &TableName, name: &str) -> Option<&Relations> {
        let relations = self.catalog.as_ref()?.relations.as_ref()?;
        if !relations.names(name) {
            let _ = self.listed(table);
        }
        Some(relations)
    }

    /// The name tags give `table` ([`table_key`](crate::tags::table_key)), without a
    /// qualifier that names the connection's own database (MySQL's `app.songs` when
    /// connected to `app`), so that `songs` and `app.songs` are one table to reads and
    /// writes alike.
    pub(crate) fn table_key(&self, table: &TableName) -> String {
        let own = |schema: &str| {
            self.catalog
                .as_ref()
                .and_then(|c| c.default_schema.as_deref())
                .is_some_and(|own| own.eq_ignore_ascii_case(schema))
        };
        let schema = table.schema.as_deref().filter(|s| !own(s));
        crate::tags::table_key(schema, &table.name)
    }

    /// Whether text ids may select rows of integer keys by MySQL's conversions (`'abc'` is
    /// 0, `'12ab'` is 12; see `orm::written::row_keys`): unless the database is known to be
    /// PostgreSQL or SQLite, which compare text with an integer key strictly (SQLite only
    /// converts text that reads as a number, which the classifier never takes as an id).
    pub(crate) fn text_reads_as_number(&self) -> bool {
        !matches!(
            self.catalog.as_ref().and_then(|c| c.dialect),
            Some(Dialect::Postgres | Dialect::Sqlite)
        )
    }

    /// Whether a table named since this view was taken is not listed by its answer.
    #[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
    pub(crate) fn missed(&self) -> bool {
        self.catalog.is_some()
            && self
                .slot
                .is_some_and(|slot| slot.any_missed.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(schema: &str, table: &str, rank: u32, position: u32, column: &str) -> String {
        format!("k\u{1f}{schema}\u{1f}{table}\u{1f}{rank}\u{1f}{position}\u{1f}{column}")
    }

    fn table(schema: Option<&str>, name: &str) -> TableName {
        TableName {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    #[test]
    fn a_qualifier_naming_the_connection_s_own_database_is_dropped() {
        let catalog = Catalog::from_rows(Dialect::MySql, [format!("d{SEPARATOR}shop")]);
        let view = CatalogView::of(catalog);
        assert_eq!(view.table_key(&table(Some("shop"), "Songs")), "songs");
        assert_eq!(view.table_key(&table(Some("SHOP"), "songs")), "songs");
        assert_eq!(view.table_key(&table(None, "songs")), "songs");
        assert_eq!(
            view.table_key(&table(Some("billing"), "songs")),
            "billing.songs"
        );
        // Before the catalog answered, a qualifier stays.
        assert_eq!(
            CatalogView::guessed().table_key(&table(Some("shop"), "songs")),
            "shop.songs"
        );
    }

    #[test]
    fn a_key_is_generated_only_when_it_is_the_table_s_one_auto_increment_column() {
        let generated = |schema: &str, table: &str, column: &str| {
            format!("a\u{1f}{schema}\u{1f}{table}\u{1f}{column}")
        };
        let catalog = Catalog::from_rows(
            Dialect::MySql,
            [
                row("app", "Songs", 1, 1, "ID"),
                generated("app", "Songs", "ID"),
                // Keyed by another column than the auto-numbered one.
                row("app", "coded", 1, 1, "code"),
                generated("app", "coded", "seq"),
                // A composite key with an auto-numbered part.
                row("app", "members", 1, 1, "tenant_id"),
                row("app", "members", 1, 2, "id"),
                generated("app", "members", "id"),
                // No AUTO_INCREMENT column at all.
                row("app", "plain", 1, 1, "id"),
            ],
        );
        let slot = CatalogSlot::default();
        slot.install(catalog);
        let view = slot.view();
        assert!(view.key_is_generated(&table(None, "songs")));
        assert!(view.key_is_generated(&table(Some("APP"), "SONGS")));
        for name in ["coded", "members", "plain", "unlisted"] {
            assert!(!view.key_is_generated(&table(None, name)), "{name}");
        }
        assert!(!CatalogView::guessed().key_is_generated(&table(None, "songs")));
    }

    #[test]
    fn keys_by_table_in_search_path_order() {
        let keys = Catalog::from_rows(
            Dialect::Postgres,
            [
                row("app", "songs", 1, 1, "song_id"),
                row("public", "songs", 2, 1, "id"),
                row("public", "members", 2, 2, "id"),
                row("public", "members", 2, 1, "tenant_id"),
                "k\u{1f}broken\u{1f}x\u{1f}1\u{1f}1".to_owned(),
            ]
            .into_iter()
            .chain(["no separators".to_owned()]),
        );
        let slot = CatalogSlot::default();
        slot.install(keys);
        let view = slot.view();
        let known = |cols: &[&str]| Key::Known(cols.iter().map(|c| (*c).to_owned()).collect());
        assert_eq!(view.key(&table(None, "songs")), known(&["song_id"]));
        assert_eq!(view.key(&table(Some("public"), "songs")), known(&["id"]));
        assert_eq!(
            view.key(&table(None, "members")),
            known(&["tenant_id", "id"])
        );
        assert!(!view.missed());
        assert_eq!(view.key(&table(None, "other")), Key::Guessed);
        assert!(view.missed() && slot.wanted());
        slot.install(Catalog::default());
        assert!(
            !slot.wanted(),
            "a table asked about once is not asked about again"
        );
        assert_eq!(slot.view().key(&table(None, "other")), Key::Guessed);
        assert!(!slot.wanted());
    }

    #[test]
    fn nothing_learnt_is_a_guess() {
        let slot = CatalogSlot::default();
        assert!(slot.wanted());
        assert_eq!(slot.view().key(&table(None, "songs")), Key::Guessed);
        assert!(!slot.view().missed());
        assert!(Key::Guessed.is_guess_like());
        assert!(Key::Known(vec!["id".into()]).is_guess_like());
        assert!(!Key::Known(vec!["song_id".into()]).is_guess_like());
    }
}

#[cfg(test)]
mod relation_tests {
    use super::*;

    fn table(name: &str) -> TableName {
        TableName {
            schema: None,
            name: name.to_owned(),
        }
    }

    #[test]
    fn the_catalog_rows_of_every_kind_are_read() {
        let rows = [
            "k\u{1f}main\u{1f}songs\u{1f}1\u{1f}1\u{1f}id",
            "s\u{1f}main\u{1f}cards\u{1f}CREATE VIEW cards AS SELECT * FROM songs",
            "f\u{1f}main\u{1f}listens\u{1f}main\u{1f}songs\u{1f}NO ACTION\u{1f}CASCADE",
            "f\u{1f}too\u{1f}few",
            "z\u{1f}unknown kind",
            "no separator",
        ];
        let slot = CatalogSlot::default();
        slot.install(Catalog::from_rows(Dialect::Sqlite, rows.map(str::to_owned)));
        let view = slot.view();
        let relations = view.relations(&table("songs"), "songs").expect("charted");
        assert_eq!(relations.read_through("cards").unwrap(), ["songs"]);
        assert_eq!(
            relations.also_written("songs", Fires::BOTH),
            ["cards", "listens"]
        );
        // `cards` has no key, but a relation names it: charted, nothing to ask.
        assert!(view.relations(&table("cards"), "cards").is_some());
        assert!(!slot.wanted());
        // `albums` is neither listed nor related (created since?): taken to have no
        // relation, and the catalog is asked again.
        assert!(view.relations(&table("albums"), "albums").is_some());
        assert!(slot.wanted());
    }

    /// MySQL: views of other databases, as `information_schema.VIEWS` defines them (every
    /// name qualified by its database), over the connection's database's tables and over
    /// each other.
    #[test]
    fn a_mysql_view_in_another_database_reads_this_database_s_tables() {
        let rows = [
            "d\u{1f}app".to_owned(),
            "k\u{1f}app\u{1f}r_users\u{1f}1\u{1f}1\u{1f}id".to_owned(),
            "k\u{1f}app\u{1f}r_songs\u{1f}1\u{1f}1\u{1f}id".to_owned(),
            "s\u{1f}other\u{1f}cards\u{1f}select `s`.`id` AS `id`,`u`.`name` AS `name` \
             from (`app`.`r_songs` `s` join `app`.`r_users` `u` on(`u`.`id` = `s`.`user_id`))"
                .to_owned(),
            "s\u{1f}third\u{1f}top\u{1f}select `other`.`cards`.`id` AS `id` \
             from `other`.`cards`"
                .to_owned(),
            "f\u{1f}app\u{1f}r_songs\u{1f}app\u{1f}r_users\u{1f}RESTRICT\u{1f}CASCADE".to_owned(),
        ];
        let slot = CatalogSlot::default();
        slot.install(Catalog::from_rows(Dialect::MySql, rows));
        let view = slot.view();
        let relations = view
            .relations(&table("r_users"), "r_users")
            .expect("charted");
        assert_eq!(
            relations.read_through("other.cards").unwrap(),
            ["r_songs", "r_users"]
        );
        assert_eq!(
            relations.read_through("third.top").unwrap(),
            ["other.cards", "r_songs", "r_users"]
        );
        for (table, fires) in [("r_users", Fires::BOTH), ("r_songs", Fires::default())] {
            let written = relations.also_written(table, fires);
            for view in ["other.cards", "third.top"] {
                assert!(
                    written.iter().any(|w| w == view),
                    "{table} also writes {view}: {written:?}"
                );
            }
        }
    }

    #[test]
    fn nothing_is_charted_before_the_catalog_answered_or_when_it_could_not() {
        let slot = CatalogSlot::default();
        assert!(slot.view().relations(&table("songs"), "songs").is_none());
        slot.install(Catalog::default());
        assert!(slot.view().relations(&table("songs"), "songs").is_none());
        slot.install(Catalog::empty());
        assert!(slot.view().relations(&table("songs"), "songs").is_some());
    }
}
