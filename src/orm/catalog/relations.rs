//! What no statement text shows, from the catalog: the tables a view reads, and the tables
//! a write also writes through a foreign key whose `ON DELETE` or `ON UPDATE` action is
//! `CASCADE`, `SET NULL` or `SET DEFAULT`.
//!
//! All names are the names model tags give objects ([`table_key`]): `songs`, `app.songs`.
//!
//! * **Reads.** A read of a view also depends on the table tags of every table it reads,
//!   through views of views ([`Relations::read_through`]).
//! * **Writes.** A write to a table also writes ([`Relations::also_written`]), as
//!   `model:<t>` and `model:<t>#bulk`: each view that reads it (through views of views: a
//!   view's rows are the table's), each table a cascading foreign key reaches from it, and
//!   theirs in turn; the table itself when a cascade leads back to it (its own rows other
//!   than the written ones change). A write through a view writes its base tables. Only the
//!   actions a statement may fire are followed ([`Fires`]): `ON DELETE` ones for a text that
//!   may delete, `ON UPDATE` ones for one that may update, none for a plain `INSERT`.
//!
//! Not covered: triggers and rules (declare what they write with
//! [`table_also_writes`](crate::config::CacheConfigBuilder::table_also_writes)), and a view or
//! foreign key created or changed while the application runs, between tables the catalog
//! already listed (restart, or give the connections new wrappers); a view or table it did
//! not list yet makes the catalog be asked again.

use std::collections::{BTreeSet, HashMap, HashSet};

use querycache_sql::{ReadEffect, TableName};

use crate::tags::table_key;

/// The relations of one database's objects, closed transitively.
#[derive(Debug, Default)]
pub(crate) struct Relations {
    /// A view → every table and view it reads, through views of views.
    bases: HashMap<String, Vec<String>>,
    /// A view whose reads cannot be known → why.
    opaque: HashMap<String, String>,
    /// An object and the foreign key actions a write to it fires → what it also writes.
    written: HashMap<(String, Fires), Vec<String>>,
    /// Every object a relation names.
    named: HashSet<String>,
}

impl Relations {
    /// What a read of `table` (a tag name) also depends on the table tags of: the tables and
    /// views a view reads; `Err` with the reason when they cannot be known (the view calls a
    /// function whose effect is not known).
    pub(crate) fn read_through(&self, table: &str) -> Result<&[String], &str> {
        if let Some(why) = self.opaque.get(table) {
            return Err(why);
        }
        Ok(self.bases.get(table).map_or(&[], Vec::as_slice))
    }

    /// What a write to `table` that fires the foreign key actions `fires` also writes,
    /// beyond the table itself (unless a cascade leads back to it).
    pub(crate) fn also_written(&self, table: &str, fires: Fires) -> &[String] {
        self.written
            .get(&(table.to_owned(), fires))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether a relation names `table` (a view, a table a view reads, an end of a
    /// cascading foreign key).
    pub(crate) fn names(&self, table: &str) -> bool {
        self.named.contains(table)
    }

    /// How many objects relations name.
    pub(crate) fn len(&self) -> usize {
        self.named.len()
    }
}

/// The relations as the catalog's rows tell them, closed by [`build`](Self::build).
#[derive(Debug, Default)]
pub(super) struct Builder {
    /// MySQL's current database: its objects' names need no schema.
    default_schema: Option<String>,
    /// A view → what it reads directly.
    reads: HashMap<String, BTreeSet<String>>,
    opaque: HashMap<String, String>,
    /// A table → the tables whose foreign keys act on its deletes.
    on_delete: HashMap<String, BTreeSet<String>>,
    /// A table → the tables whose foreign keys act on its updates.
    on_update: HashMap<String, BTreeSet<String>>,
}

/// Which foreign key actions a write may fire: `ON DELETE` ones when it may delete rows,
/// `ON UPDATE` ones when it may update them. A plain `INSERT` fires none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Fires {
    pub(crate) delete: bool,
    pub(crate) update: bool,
}

impl Fires {
    /// What a statement text may fire, by its words: `DELETE`, `REPLACE` (MySQL's and
    /// SQLite's `REPLACE`/`INSERT OR REPLACE` delete the rows they replace) and `MERGE` may
    /// delete; `UPDATE` (`ON CONFLICT DO UPDATE`, `ON DUPLICATE KEY UPDATE` too) and `MERGE`
    /// may update. A word inside a literal or a comment only fires more than needed.
    pub(crate) fn of_text(sql: &str) -> Fires {
        let mut fires = Fires::default();
        for word in sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.eq_ignore_ascii_case("DELETE") || word.eq_ignore_ascii_case("REPLACE") {
                fires.delete = true;
            } else if word.eq_ignore_ascii_case("UPDATE") {
                fires.update = true;
            } else if word.eq_ignore_ascii_case("MERGE") {
                fires = Fires::BOTH;
            }
        }
        fires
    }

    /// Both kinds of action.
    pub(crate) const BOTH: Fires = Fires {
        delete: true,
        update: true,
    };
}

impl Builder {
    pub(super) fn default_schema(&mut self, database: &str) {
        self.default_schema = Some(database.to_owned());
    }

    fn name(&self, schema: &str, table: &str) -> String {
        let schema = match &self.default_schema {
            Some(default) if default.eq_ignore_ascii_case(schema) => None,
            _ => Some(schema),
        };
        table_key(schema, table)
    }

    /// View `schema.view` reads `base_schema.base`.
    pub(super) fn view_reads(&mut self, schema: &str, view: &str, base_schema: &str, base: &str) {
        let (view, base) = (self.name(schema, view), self.name(base_schema, base));
        self.reads.entry(view).or_default().insert(base);
    }

    /// View `schema.view` is defined by `definition` (see [`querycache_sql::view_reads`]);
    /// an unqualified name in it is the view's schema's.
    pub(super) fn view_definition(&mut self, schema: &str, view: &str, definition: &str) {
        let name = self.name(schema, view);
        match querycache_sql::view_reads(definition) {
            ReadEffect::Reads(reads) => {
                let bases: Vec<String> = reads
                    .into_iter()
                    .map(|read| {
                        let TableName { schema: s, name } = read.table;
                        self.name(s.as_deref().unwrap_or(schema), &name)
                    })
                    .collect();
                self.reads.entry(name).or_default().extend(bases);
            }
            ReadEffect::Unknown(why) => {
                self.opaque
                    .insert(name.clone(), format!("reads view `{name}`, which {why}"));
            }
        }
    }

    /// View `schema.view` calls `function`, whose effect is not known.
    pub(super) fn view_calls(&mut self, schema: &str, view: &str, function: &str) {
        let name = self.name(schema, view);
        self.opaque.insert(
            name.clone(),
            format!("reads view `{name}`, which calls `{function}`, whose effect is not known"),
        );
    }

    /// A foreign key of `table` referencing `parent`, with its `[on update, on delete]`
    /// actions (PostgreSQL's letters `c`, `n`, `d`, or the words).
    pub(super) fn foreign_key(
        &mut self,
        (schema, table): (&str, &str),
        (parent_schema, parent): (&str, &str),
        actions: [&str; 2],
    ) {
        let acts = |action: &str| {
            matches!(
                action.to_ascii_uppercase().as_str(),
                "C" | "N" | "D" | "CASCADE" | "SET NULL" | "SET DEFAULT"
            )
        };
        let (child, parent) = (self.name(schema, table), self.name(parent_schema, parent));
        let [on_update, on_delete] = actions;
        if acts(on_update) {
            let children = self.on_update.entry(parent.clone()).or_default();
            children.insert(child.clone());
        }
        if acts(on_delete) {
            self.on_delete.entry(parent).or_default().insert(child);
        }
    }

    /// The relations, closed transitively.
    pub(super) fn build(self) -> Relations {
        let mut named: HashSet<String> = HashSet::new();
        // The views over each object, directly.
        let mut views_over: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (view, bases) in &self.reads {
            named.insert(view.clone());
            for base in bases {
                named.insert(base.clone());
                views_over
                    .entry(base.clone())
                    .or_default()
                    .insert(view.clone());
            }
        }
        for (parent, children) in self.on_delete.iter().chain(&self.on_update) {
            named.insert(parent.clone());
            named.extend(children.iter().cloned());
        }
        named.extend(self.opaque.keys().cloned());

        let bases: HashMap<String, Vec<String>> = self
            .reads
            .keys()
            .map(|view| (view.clone(), closure(view, |v| edges(&self.reads, v))))
            .collect();
        let over = |object: &str| closure(object, |o| edges(&views_over, o));
        // The tables a cascaded write to a table reaches: its rows are deleted or updated in
        // turn, so both kinds of action fire from there on.
        let cascade = |from: &str, fires: Fires| {
            let mut first = Vec::new();
            if fires.delete {
                first.extend(edges(&self.on_delete, from));
            }
            if fires.update {
                first.extend(edges(&self.on_update, from));
            }
            let mut reached: BTreeSet<String> = BTreeSet::new();
            let mut queue = first;
            while let Some(table) = queue.pop() {
                if reached.insert(table.clone()) {
                    queue.extend(edges(&self.on_delete, &table));
                    queue.extend(edges(&self.on_update, &table));
                }
            }
            reached
        };
        let mut written = HashMap::new();
        for object in &named {
            let through: &[String] = bases.get(object).map_or(&[], Vec::as_slice);
            // The object's views; through a view, its tables and their views: what any
            // write to it reaches, whatever actions it fires.
            let mut viewed: BTreeSet<String> = over(object).into_iter().collect();
            for base in through {
                viewed.insert(base.clone());
                viewed.extend(over(base));
            }
            viewed.remove(object);
            for fires in [
                Fires::default(),
                Fires {
                    delete: true,
                    update: false,
                },
                Fires {
                    delete: false,
                    update: true,
                },
                Fires::BOTH,
            ] {
                let mut also = viewed.clone();
                // What the actions the write fires reach, and the views over it.
                for from in std::iter::once(object).chain(through) {
                    for table in cascade(from, fires) {
                        also.extend(over(&table));
                        also.insert(table);
                    }
                }
                if !also.is_empty() {
                    written.insert((object.clone(), fires), also.into_iter().collect());
                }
            }
        }
        Relations {
            bases,
            opaque: self.opaque,
            written,
            named,
        }
    }
}

fn edges(map: &HashMap<String, BTreeSet<String>>, from: &str) -> Vec<String> {
    map.get(from)
        .map(|to| to.iter().cloned().collect())
        .unwrap_or_default()
}

/// Everything reachable from `start` by `next`, without `start` itself.
fn closure(start: &str, next: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue = vec![start.to_owned()];
    while let Some(object) = queue.pop() {
        for to in next(&object) {
            if to != start && seen.insert(to.clone()) {
                queue.push(to);
            }
        }
    }
    seen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relations of a small schema: `users` ← `songs` (ON DELETE CASCADE) ← `listens`
    /// (ON DELETE SET NULL), `song_cards` a view of `songs` and `users`, `top` a view of
    /// `song_cards`, `tags` → `songs` without an action, `fv` a view calling a function.
    fn schema() -> Relations {
        let mut b = Builder::default();
        b.foreign_key(("public", "songs"), ("public", "users"), ["a", "c"]);
        b.foreign_key(("public", "listens"), ("public", "songs"), ["a", "n"]);
        b.foreign_key(("public", "tags"), ("public", "songs"), ["a", "a"]);
        b.view_reads("public", "song_cards", "public", "songs");
        b.view_reads("public", "song_cards", "public", "users");
        b.view_reads("public", "top", "public", "song_cards");
        b.view_reads("public", "fv", "public", "songs");
        b.view_calls("public", "fv", "public.f");
        b.build()
    }

    #[test]
    fn a_view_reads_its_tables_through_views_of_views() {
        let r = schema();
        assert_eq!(r.read_through("song_cards").unwrap(), ["songs", "users"]);
        assert_eq!(
            r.read_through("top").unwrap(),
            ["song_cards", "songs", "users"]
        );
        assert!(r.read_through("songs").unwrap().is_empty());
        let why = r.read_through("fv").unwrap_err();
        assert!(why.contains("public.f") && why.contains("fv"), "{why}");
    }

    #[test]
    fn a_write_reaches_its_views_and_cascades_transitively() {
        let r = schema();
        // A delete of a user deletes songs, which sets listens' song to NULL; every view
        // over a written table changes.
        assert_eq!(
            r.also_written("users", Fires::BOTH),
            ["fv", "listens", "song_cards", "songs", "top"]
        );
        // An insert fires no foreign key action: only the views.
        assert_eq!(
            r.also_written("users", Fires::default()),
            ["song_cards", "top"]
        );
        assert_eq!(
            r.also_written("songs", Fires::BOTH),
            ["fv", "listens", "song_cards", "top"]
        );
        // `tags` has no action, and nothing references `listens`.
        assert!(r.also_written("listens", Fires::BOTH).is_empty());
        assert!(r.also_written("tags", Fires::BOTH).is_empty());
        // A write through a view writes its tables, and what they reach.
        assert_eq!(
            r.also_written("song_cards", Fires::default()),
            ["fv", "songs", "top", "users"]
        );
        assert!(
            r.also_written("song_cards", Fires::BOTH)
                .contains(&"listens".to_owned())
        );
        // Only the actions a write fires: `users` cascades on delete, not on update.
        let update = Fires {
            delete: false,
            update: true,
        };
        assert_eq!(r.also_written("users", update), ["song_cards", "top"]);
        assert!(r.names("listens") && r.names("top") && r.names("users"));
        assert!(!r.names("albums"));
    }

    #[test]
    fn a_table_a_cascade_leads_back_to_writes_itself() {
        let mut b = Builder::default();
        b.foreign_key(
            ("main", "comments"),
            ("main", "comments"),
            ["NO ACTION", "CASCADE"],
        );
        b.foreign_key(("main", "a"), ("main", "b"), ["CASCADE", "NO ACTION"]);
        b.foreign_key(("main", "b"), ("main", "a"), ["SET NULL", "NO ACTION"]);
        let r = b.build();
        assert_eq!(r.also_written("comments", Fires::BOTH), ["comments"]);
        assert!(r.also_written("comments", Fires::default()).is_empty());
        assert_eq!(r.also_written("a", Fires::BOTH), ["a", "b"]);
        // `b` acts on updates of `a` only; a delete of `a` reaches nothing.
        let delete = Fires {
            delete: true,
            update: false,
        };
        assert!(r.also_written("a", delete).is_empty());
    }

    #[test]
    fn a_statements_words_say_which_actions_it_may_fire() {
        let fires = |sql: &str| {
            let f = Fires::of_text(sql);
            (f.delete, f.update)
        };
        assert_eq!(fires("DELETE FROM users WHERE id = 1"), (true, false));
        assert_eq!(fires("update users set name = 'x'"), (false, true));
        assert_eq!(
            fires("INSERT INTO users (name) VALUES ('x')"),
            (false, false)
        );
        assert_eq!(
            fires("INSERT OR REPLACE INTO users VALUES (1, 'x')"),
            (true, false)
        );
        assert_eq!(
            fires("INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET name = 'x'"),
            (false, true)
        );
        assert_eq!(fires("MERGE INTO users USING x ON true"), (true, true));
        assert_eq!(fires("UPDATE deleted_users SET x = 1"), (false, true));
    }

    #[test]
    fn view_definitions_are_read_in_the_views_schema() {
        let mut b = Builder::default();
        b.default_schema("shop");
        b.view_definition(
            "shop",
            "cards",
            "select `s`.`id` AS `id` from (`shop`.`songs` `s` join `shop`.`users` `u` \
             on(`u`.`id` = `s`.`user_id`))",
        );
        b.view_definition("shop", "bad", "select my_function(`id`) from `songs`");
        let r = b.build();
        assert_eq!(r.read_through("cards").unwrap(), ["songs", "users"]);
        assert!(r.read_through("bad").unwrap_err().contains("my_function"));

        let mut b = Builder::default();
        b.view_definition(
            "app",
            "cards",
            "CREATE VIEW cards AS SELECT * FROM songs JOIN public.users ON true",
        );
        assert_eq!(
            b.build().read_through("app.cards").unwrap(),
            ["app.songs", "users"]
        );
    }
}
