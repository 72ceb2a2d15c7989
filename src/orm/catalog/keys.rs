//! Which columns key each table, as the catalog answered, so that reads and writes pin rows
//! by the real primary key — `song_id`, `uuid`, `(tenant_id, id)` — and not only by a
//! column named `id`.
//!
//! Until the catalog answered — and for a table it does not list (a view, a table created
//! since) — a table's key is *guessed*: `id`, the rule querycache always had. A guess and a
//! known key may meet on one table (one connection knows, another does not yet), and pin
//! rows by different columns: a row tag `model:songs:7` from `WHERE id = 7` (guessed) does
//! not name the row `song_id = 7`. So a read pinned by a guessed key also depends on
//! `model:<table>#guess`, which every write pinned by a known key other than `id` bumps; and
//! a read pinned by a known key other than `id` also depends on `model:<table>#keyed`, which
//! every write pinned by a guessed key bumps. A known key `id` needs neither: it pins the
//! rows the guess pins. When the guess is right (or no connection knows better), `#guess`
//! never moves and nothing depends on `#keyed`; when it is wrong, the two sides invalidate
//! each other's by-row entries: more than needed, never less.
//!
//! Not covered: a primary key changed while the application runs (`ALTER TABLE ... PRIMARY
//! KEY`). Two connections that learnt the keys on either side of the change both *know* a
//! key, and pin rows by different columns without the tags above: restart (or give the
//! connections new wrappers) after changing a primary key.

use std::collections::{HashMap, HashSet};

use querycache_sql::TableName;

use super::SEPARATOR;
use crate::orm::identity::Dialect;

/// The columns that key the tables of one database, as the catalog answered.
#[derive(Debug, Default)]
pub(crate) struct PrimaryKeys {
    /// By lookup name (`table`, `schema.table`, lower case): the key columns in order, or
    /// `None` when two tables share the lookup name with different keys.
    tables: HashMap<String, Option<Vec<String>>>,
    /// Lookup names the catalog was asked about and did not list.
    absent: HashSet<String>,
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

impl PrimaryKeys {
    /// The keys in the `k` rows of [`Dialect::catalog_sql`]'s answer (without their kind):
    /// schema, table, the schema's rank in the search path, the column's position in the key
    /// and the column. Names are looked up in lower case; column names are kept as written
    /// on PostgreSQL (where a quoted column's case matters) and folded on SQLite and MySQL
    /// (where it does not).
    pub(super) fn from_rows(dialect: Dialect, rows: impl IntoIterator<Item = String>) -> Self {
        let mut parsed: Vec<(String, String, u32, u32, String)> = rows
            .into_iter()
            .filter_map(|row| {
                let mut fields = row.split(SEPARATOR);
                let (Some(schema), Some(table), Some(rank), Some(position), Some(column), None) = (
                    fields.next(),
                    fields.next(),
                    fields.next(),
                    fields.next(),
                    fields.next(),
                    fields.next(),
                ) else {
                    return None;
                };
                let column = match dialect {
                    Dialect::Postgres => column.to_owned(),
                    Dialect::MySql | Dialect::Sqlite => column.to_lowercase(),
                };
                Some((
                    schema.to_owned(),
                    table.to_owned(),
                    rank.parse().unwrap_or(u32::MAX),
                    position.parse().unwrap_or(u32::MAX),
                    column,
                ))
            })
            .collect();
        // Key order: by table, then by the column's position in the key.
        parsed.sort_by(|a, b| (&a.0, &a.1, a.3).cmp(&(&b.0, &b.1, b.3)));
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
        for (schema, table, rank, _, column) in parsed {
            match &mut current {
                Some((s, t, _, columns)) if *s == schema && *t == table => columns.push(column),
                _ => {
                    finish(current.take());
                    current = Some((schema, table, rank, vec![column]));
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
        }
    }

    /// How many lookup names the answer lists.
    pub(super) fn len(&self) -> usize {
        self.tables.len()
    }

    /// Remembers as absent the names `missed` since the last answer (`previous`, whose own
    /// absent names are kept) that this answer does not list either.
    pub(super) fn remember_absent(
        &mut self,
        missed: HashSet<String>,
        previous: Option<&PrimaryKeys>,
    ) {
        let absent: Vec<String> = missed
            .into_iter()
            .chain(previous.into_iter().flat_map(|p| p.absent.iter().cloned()))
            .filter(|name| !self.tables.contains_key(name))
            .collect();
        self.absent.extend(absent);
    }

    /// The lookup name of `table`; SQLite's `main` and PostgreSQL's `public` qualify nothing
    /// more than the catalog's own rows do.
    pub(super) fn lookup_name(table: &TableName) -> String {
        let name = table.name.to_lowercase();
        match &table.schema {
            Some(schema) => format!("{}.{name}", schema.to_lowercase()),
            None => name,
        }
    }

    /// `table`'s key; `None` when the catalog did not list it (and was not asked about it
    /// since).
    pub(super) fn key(&self, table: &TableName) -> Option<Key> {
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
