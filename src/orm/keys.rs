//! Which columns key each table: learnt from the database's catalog, once per database (and
//! again when a statement names a table the last answer did not have), so that reads and
//! writes pin rows by the real primary key — `song_id`, `uuid`, `(tenant_id, id)` — and not
//! only by a column named `id`.
//!
//! The catalog is asked where a connection can send a query of its own: SeaORM before it
//! classifies a statement (outside transactions), Diesel when a cached call is given the
//! connection (its instrumentation cannot send queries). Until then — and for a table the
//! catalog does not list (a view, a table created since) — a table's key is *guessed*: `id`,
//! the rule querycache always had. A guess and a known key may meet on one table (one
//! connection knows, another does not yet), and pin rows by different columns: a row tag
//! `model:songs:7` from `WHERE id = 7` (guessed) does not name the row `song_id = 7`. So a
//! read pinned by a guessed key also depends on `model:<table>#guess`, which every write
//! pinned by a known key other than `id` bumps; and a read pinned by a known key other than
//! `id` also depends on `model:<table>#keyed`, which every write pinned by a guessed key
//! bumps. A known key `id` needs neither: it pins the rows the guess pins. When the guess is
//! right (or no connection knows better), `#guess` never moves and nothing depends on
//! `#keyed`; when it is wrong, the two sides invalidate each other's by-row entries: more
//! than needed, never less.
//!
//! Not covered: a primary key changed while the application runs (`ALTER TABLE ... PRIMARY
//! KEY`). Two connections that learnt the keys on either side of the change both *know* a
//! key, and pin rows by different columns without the tags above: restart (or give the
//! connections new wrappers) after changing a primary key.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};
use querycache_sql::TableName;

use crate::orm::identity::Dialect;

/// Separates the fields of one catalog row (the ASCII unit separator: never in a name
/// querycache can read back; a row that does not split into four fields is skipped).
const SEPARATOR: char = '\u{1f}';

/// The columns that key the tables of one database, as the catalog answered.
#[derive(Debug, Default)]
pub(crate) struct PrimaryKeys {
    /// By lookup name (`table`, `schema.table`, lower case): the key columns in order, or
    /// `None` when two tables share the lookup name with different keys.
    tables: HashMap<String, Option<Vec<String>>>,
    /// Lookup names the catalog was asked about and did not list.
    absent: HashSet<String>,
    /// The database's dialect, when the catalog answered.
    dialect: Option<Dialect>,
}

/// What classification takes a table's key to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// The catalog's answer (never empty).
    Known(Vec<String>),
    /// Not known: `id`, guessed.
    Guessed,
}

impl Key {
    /// The key columns classification uses.
    pub(crate) fn columns(&self) -> Vec<String> {
        match self {
            Key::Known(columns) => columns.clone(),
            Key::Guessed => vec!["id".to_owned()],
        }
    }

    /// Whether rows pinned under this key are pinned by the guessed column `id` (a known
    /// key that is `id` pins the same rows as the guess).
    pub(crate) fn is_guess_like(&self) -> bool {
        match self {
            Key::Known(columns) => matches!(columns.as_slice(), [column] if column == "id"),
            Key::Guessed => true,
        }
    }
}

impl Dialect {
    /// One text column (`identity`, the identity query's, so that Diesel reads both with one
    /// row type) per key column: schema, table, the schema's rank in the search path and the
    /// column, separated by [`SEPARATOR`], in key order. PostgreSQL: the tables of the
    /// connection's schemas (`current_schemas`); MySQL: of the current database; SQLite: of
    /// `main`. Read-only.
    pub(crate) fn keys_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "SELECT n.nspname || chr(31) || c.relname || chr(31) \
                 || array_position(current_schemas(false), n.nspname)::text || chr(31) \
                 || a.attname AS identity \
                 FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE i.indisprimary AND n.nspname = ANY (current_schemas(false)) \
                 ORDER BY n.nspname, c.relname, k.ord"
            }
            Dialect::MySql => {
                "SELECT CONCAT(table_schema, CHAR(31), table_name, CHAR(31), '1', CHAR(31), \
                 column_name) AS identity FROM information_schema.key_column_usage \
                 WHERE constraint_name = 'PRIMARY' AND table_schema = DATABASE() \
                 ORDER BY table_name, ordinal_position"
            }
            Dialect::Sqlite => {
                "SELECT 'main' || char(31) || m.name || char(31) || '1' || char(31) || p.name \
                 AS identity FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.pk > 0 ORDER BY m.name, p.pk"
            }
        }
    }
}

impl PrimaryKeys {
    /// The keys in the rows of [`Dialect::keys_sql`]'s answer. Names are looked up in lower
    /// case; column names are kept as written on PostgreSQL (where a quoted column's case
    /// matters) and folded on SQLite and MySQL (where it does not).
    pub(crate) fn from_rows(dialect: Dialect, rows: impl IntoIterator<Item = String>) -> Self {
        // (lookup name) -> (rank, columns); rank orders unqualified names by search path.
        let mut qualified: HashMap<String, Option<Vec<String>>> = HashMap::new();
        let mut unqualified: HashMap<String, (u32, Option<Vec<String>>)> = HashMap::new();
        let mut current: Option<(String, String, u32, Vec<String>)> = None;
        let mut finish = |entry: Option<(String, String, u32, Vec<String>)>| {
            let Some((schema, table, rank, columns)) = entry else {
                return;
            };
            let name = table.to_lowercase();
            let full = format!("{}.{name}", schema.to_lowercase());
            match qualified.get_mut(&full) {
                Some(slot) => merge(slot, &columns),
                None => {
                    qualified.insert(full, Some(columns.clone()));
                }
            }
            match unqualified.get_mut(&name) {
                Some((best, _)) if *best < rank => {}
                Some((best, slot)) if *best == rank => merge(slot, &columns),
                _ => {
                    unqualified.insert(name, (rank, Some(columns)));
                }
            }
        };
        for row in rows {
            let mut fields = row.split(SEPARATOR);
            let (Some(schema), Some(table), Some(rank), Some(column), None) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                continue;
            };
            let rank = rank.parse().unwrap_or(u32::MAX);
            let column = match dialect {
                Dialect::Postgres => column.to_owned(),
                Dialect::MySql | Dialect::Sqlite => column.to_lowercase(),
            };
            match &mut current {
                Some((s, t, _, columns)) if s == schema && t == table => columns.push(column),
                _ => {
                    finish(current.take());
                    current = Some((schema.to_owned(), table.to_owned(), rank, vec![column]));
                }
            }
        }
        finish(current.take());
        let mut tables = qualified;
        for (name, (_, columns)) in unqualified {
            tables.insert(name, columns);
        }
        PrimaryKeys {
            tables,
            absent: HashSet::new(),
            dialect: Some(dialect),
        }
    }

    /// The lookup name of `table`; SQLite's `main` and PostgreSQL's `public` qualify nothing
    /// more than the catalog's own rows do.
    fn lookup_name(table: &TableName) -> String {
        let name = table.name.to_lowercase();
        match &table.schema {
            Some(schema) => format!("{}.{name}", schema.to_lowercase()),
            None => name,
        }
    }

    /// `table`'s key; `None` when the catalog did not list it (and was not asked about it
    /// since).
    fn key(&self, table: &TableName) -> Option<Key> {
        let name = Self::lookup_name(table);
        match self.tables.get(&name) {
            Some(Some(columns)) => Some(Key::Known(columns.clone())),
            Some(None) => Some(Key::Guessed),
            None if self.absent.contains(&name) => Some(Key::Guessed),
            None => None,
        }
    }
}

/// Adds `columns` to the slot of one lookup name already met: a second, different key
/// makes the name ambiguous (`None`: guessed).
fn merge(slot: &mut Option<Vec<String>>, columns: &[String]) {
    if slot.as_deref() != Some(columns) {
        *slot = None;
    }
}

/// The keys of one database as a connection knows them: the last answer, and the tables
/// named since that it did not list.
#[derive(Debug, Default)]
pub(crate) struct KeySlot {
    keys: RwLock<Option<Arc<PrimaryKeys>>>,
    missed: Mutex<HashSet<String>>,
    /// `missed` is not empty (read on every statement without taking the lock).
    any_missed: AtomicBool,
}

impl KeySlot {
    /// Whether the catalog should be asked (again): never asked, or a table it did not list
    /// was named since.
    pub(crate) fn wanted(&self) -> bool {
        self.any_missed.load(Ordering::Acquire) || self.keys.read().is_none()
    }

    /// Installs the catalog's answer `keys`; the tables named since the last answer that it
    /// does not list either are remembered as absent (not asked about again).
    pub(crate) fn install(&self, mut keys: PrimaryKeys) {
        let missed = {
            let mut missed = self.missed.lock();
            self.any_missed.store(false, Ordering::Release);
            std::mem::take(&mut *missed)
        };
        keys.absent = missed
            .into_iter()
            .filter(|name| !keys.tables.contains_key(name))
            .collect();
        if let Some(previous) = self.keys.read().as_ref() {
            keys.absent.extend(
                previous
                    .absent
                    .iter()
                    .filter(|name| !keys.tables.contains_key(*name))
                    .cloned(),
            );
        }
        tracing::debug!(
            tables = keys.tables.len(),
            "primary keys learnt from the catalog"
        );
        *self.keys.write() = Some(Arc::new(keys));
    }

    /// What classification may ask now.
    pub(crate) fn view(&self) -> KeyView<'_> {
        KeyView {
            keys: self.keys.read().clone(),
            slot: Some(self),
        }
    }
}

/// A table's key, for classification: a snapshot of a [`KeySlot`]'s answer, noting the
/// tables it does not list.
#[derive(Debug, Default)]
pub(crate) struct KeyView<'a> {
    keys: Option<Arc<PrimaryKeys>>,
    slot: Option<&'a KeySlot>,
}

impl KeyView<'_> {
    /// No answer: every key guessed.
    #[cfg(test)]
    pub(crate) fn guessed() -> KeyView<'static> {
        KeyView::default()
    }

    /// `table`'s key. A table the answer does not list is guessed, and noted so that the
    /// catalog is asked again.
    pub(crate) fn key(&self, table: &TableName) -> Key {
        let Some(keys) = &self.keys else {
            return Key::Guessed;
        };
        match keys.key(table) {
            Some(key) => key,
            None => {
                if let Some(slot) = self.slot {
                    slot.missed.lock().insert(PrimaryKeys::lookup_name(table));
                    slot.any_missed.store(true, Ordering::Release);
                }
                Key::Guessed
            }
        }
    }

    /// Whether text ids may select rows of integer keys by MySQL's conversions (`'abc'` is
    /// 0, `'12ab'` is 12; see `orm::written::row_keys`): unless the database is known to be
    /// PostgreSQL or SQLite, which compare text with an integer key strictly (SQLite only
    /// converts text that reads as a number, which the classifier never takes as an id).
    pub(crate) fn text_reads_as_number(&self) -> bool {
        !matches!(
            self.keys.as_ref().and_then(|k| k.dialect),
            Some(Dialect::Postgres | Dialect::Sqlite)
        )
    }

    /// Whether a table named since this view was taken is not listed by its answer.
    pub(crate) fn missed(&self) -> bool {
        self.keys.is_some()
            && self
                .slot
                .is_some_and(|slot| slot.any_missed.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(schema: &str, table: &str, rank: u32, column: &str) -> String {
        format!("{schema}\u{1f}{table}\u{1f}{rank}\u{1f}{column}")
    }

    fn table(schema: Option<&str>, name: &str) -> TableName {
        TableName {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    #[test]
    fn keys_by_table_in_search_path_order() {
        let keys = PrimaryKeys::from_rows(
            Dialect::Postgres,
            [
                row("app", "songs", 1, "song_id"),
                row("public", "songs", 2, "id"),
                row("public", "members", 2, "tenant_id"),
                row("public", "members", 2, "id"),
                row("broken", "x", 1, ""),
            ]
            .into_iter()
            .chain(["no separators".to_owned()]),
        );
        let slot = KeySlot::default();
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
        slot.install(PrimaryKeys::default());
        assert!(
            !slot.wanted(),
            "a table asked about once is not asked about again"
        );
        assert_eq!(slot.view().key(&table(None, "other")), Key::Guessed);
        assert!(!slot.wanted());
    }

    #[test]
    fn nothing_learnt_is_a_guess() {
        let slot = KeySlot::default();
        assert!(slot.wanted());
        assert_eq!(slot.view().key(&table(None, "songs")), Key::Guessed);
        assert!(!slot.view().missed());
        assert!(Key::Guessed.is_guess_like());
        assert!(Key::Known(vec!["id".into()]).is_guess_like());
        assert!(!Key::Known(vec!["song_id".into()]).is_guess_like());
    }
}
