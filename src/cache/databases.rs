//! Which database an entry's rows came from: one cache serving several databases (a
//! database per tenant, a primary and an archive) must not hand one database's rows to a
//! caller of the other, nor let a write to `songs` in one invalidate (or keep valid) the
//! other's entries.
//!
//! Each ORM connection learns its database's *fingerprint* once, with one query the first
//! time it is needed (the same query for SeaORM and Diesel, so that both agree on a
//! database they share), and registers it here. The rule users see:
//!
//! * one database is the cache's *default* database: its keys and tags are unchanged
//!   (`model:songs`), so an application with one database sees nothing of this. With the
//!   memory store it is the first database the cache meets; with a store shared with other
//!   processes (Redis) it is the first database *any* of them met, recorded in the store
//!   (`<prefix>@default-database`), so that every process agrees whatever order it meets
//!   its databases in;
//! * every **other** database gets a namespace `@<12 hex digits>` (a hash of its
//!   fingerprint, the same in every process): keys of `#[cached_query]` calls on it start
//!   with `@…/`, and its model tags read `model:@…/songs`;
//! * a connection given a **name** (`CachedConnection::database`,
//!   `CacheInstrumentation::database`) always uses `@<name>`, whatever came first.
//!
//! A database that cannot be told apart from another of its kind (an in-memory SQLite
//! database has no file name) shares the fingerprint of all such databases: a second one
//! on the same cache is reported at warn level, and should be named.

// The ORM integrations register databases; the change feeds use a part of it.
#![cfg_attr(not(any(feature = "sea-orm", feature = "diesel")), allow(dead_code))]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use crate::{Cache, Tag};

/// What a connection knows of its database: enough to tell it from every other one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Fingerprint {
    /// A server and database (or a file), as text; no password.
    Known(String),
    /// A database of a kind that cannot be told apart (in-memory SQLite); `wrapper` tells
    /// connection wrappers apart, to warn when a second one comes.
    Anonymous { kind: &'static str, wrapper: u64 },
}

/// The namespace of a connection's database in a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Namespace {
    /// The cache's default database: keys and tags as they are.
    Default,
    /// Another database: `@…`, prefixed to keys and to the table part of model tags.
    Named(Arc<str>),
}

impl Namespace {
    /// `tag` as seen from this database: model tags get the namespace before their table
    /// (`model:@ab12/songs:7`); `model:#all` and application tags stay as they are.
    pub(crate) fn tag(&self, tag: Tag) -> Tag {
        match self {
            Namespace::Default => tag,
            Namespace::Named(ns) => match tag.table() {
                Some(table) => {
                    let rest = &tag.as_str()["model:".len() + table.len()..];
                    Tag::model_in(ns, table, rest)
                }
                None => tag,
            },
        }
    }

    /// Every tag of `tags` as seen from this database.
    pub(crate) fn tags(&self, tags: Vec<Tag>) -> Vec<Tag> {
        match self {
            Namespace::Default => tags,
            Namespace::Named(_) => tags.into_iter().map(|t| self.tag(t)).collect(),
        }
    }

    /// What an entry read from this database depends on, for the model tags `tags`: the
    /// tags in the namespace and, outside the default database, the table tags of every
    /// other database (`model:@*/<table>`), which a write through a connection whose
    /// database is not known bumps.
    pub(crate) fn read_tags(&self, tags: Vec<Tag>) -> Vec<Tag> {
        match self {
            Namespace::Default => tags,
            Namespace::Named(_) => {
                let mut others = other_databases(&tags);
                let mut tags = self.tags(tags);
                tags.append(&mut others);
                tags
            }
        }
    }
}

/// The `model:@*/<table>` tag of each table among `tags`, once each.
fn other_databases(tags: &[Tag]) -> Vec<Tag> {
    let mut tables: Vec<&str> = tags.iter().filter_map(Tag::table).collect();
    tables.sort_unstable();
    tables.dedup();
    tables.into_iter().map(Tag::other_databases).collect()
}

/// Tags written through a connection whose database is not known: in the default
/// database, and each table's `model:@*/<table>` for every other one (whichever database
/// it was, its entries of those tables go; more than needed, never less).
fn in_unknown_database(mut tags: Vec<Tag>) -> Vec<Tag> {
    let mut others = other_databases(&tags);
    tags.append(&mut others);
    tags
}

impl Namespace {
    /// The namespace's prefix of keys (`@ab12/`); empty for the default database.
    pub(crate) fn key_prefix(&self) -> Option<&str> {
        match self {
            Namespace::Default => None,
            Namespace::Named(ns) => Some(ns),
        }
    }
}

/// The namespace an explicitly named database uses: `@<name>`, lower case.
///
/// # Errors
/// [`Error::InvalidName`](crate::Error::InvalidName) when `name` is empty, longer than 64
/// bytes, or holds anything but ASCII letters, digits, `_`, `-` and `.` (the namespace
/// sits inside tags, whose `:` and `#` are separators).
pub(crate) fn named(name: &str) -> Result<Namespace, crate::Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        return Err(crate::Error::invalid_name(
            "database name",
            name,
            "use 1 to 64 ASCII letters, digits, `_`, `-` or `.`",
        ));
    }
    Ok(Namespace::Named(Arc::from(format!(
        "@{}",
        name.to_ascii_lowercase()
    ))))
}

/// The database of one connection (and of its clones and transactions): its namespace in
/// the connection's cache, settled once.
#[derive(Debug, Default)]
pub(crate) struct DatabaseId {
    namespace: OnceLock<Namespace>,
    /// The primary keys of its tables, as the catalog answered (see `orm::catalog`).
    #[cfg(any(feature = "sea-orm", feature = "diesel"))]
    pub(crate) catalog: crate::orm::catalog::CatalogSlot,
}

impl DatabaseId {
    /// A database whose namespace is known from the start (a name given by the user, or a
    /// fingerprint known at construction).
    pub(crate) fn settled(namespace: Namespace) -> Self {
        let id = DatabaseId::default();
        let _ = id.namespace.set(namespace);
        id
    }

    /// The namespace, when settled.
    pub(crate) fn get(&self) -> Option<&Namespace> {
        self.namespace.get()
    }

    /// Settles the namespace (the first settlement wins) and returns it.
    pub(crate) fn settle(&self, namespace: Namespace) -> &Namespace {
        self.namespace.get_or_init(|| namespace)
    }
}

/// A future settling a connection's database namespace; `None` when it could not be learnt
/// (the query failed): the caller then neither reads nor stores.
pub(crate) type Settling = Pin<Box<dyn Future<Output = Option<Namespace>> + Send>>;

/// How a connection whose namespace is not settled yet learns it (SeaORM: one query).
pub(crate) trait SettleDatabase: Send + Sync {
    /// Learns the namespace, settles it and returns it.
    fn settle(&self) -> Settling;
}

/// A connection argument's database, as a cached call sees it.
#[derive(Clone)]
pub(crate) struct CallDatabase {
    pub(crate) id: Arc<DatabaseId>,
    /// How to settle it, when it is not settled yet.
    pub(crate) settle: Option<Arc<dyn SettleDatabase>>,
}

impl std::fmt::Debug for CallDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallDatabase")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The databases a cache has met, and which one is its default.
#[derive(Debug, Default)]
pub(crate) struct Databases {
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    /// The namespace hash of the default database, once known (the first database met, or
    /// the one recorded in a shared store).
    default: Option<String>,
    /// Fingerprints met, with their namespaces.
    seen: HashMap<Fingerprint, Namespace>,
    /// Wrappers of anonymous databases met, by kind.
    anonymous: HashMap<&'static str, u64>,
    /// The database of Diesel connections, by a hash of the URL they were established with
    /// (never the URL itself: it may hold a password).
    by_url: HashMap<u128, Arc<DatabaseId>>,
}

impl Databases {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        match self.inner.lock() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The fingerprint as registered: anonymous databases of one kind share one (a second
    /// wrapper of the kind is reported at warn level).
    fn normalize(&self, fingerprint: Fingerprint) -> Fingerprint {
        match fingerprint {
            Fingerprint::Anonymous { kind, wrapper } => {
                match self.registry().anonymous.insert(kind, wrapper) {
                    Some(previous) if previous != wrapper => tracing::warn!(
                        kind,
                        "a second {kind} database wrapper on one cache: such databases cannot be \
                         told apart, so both share keys and tags; if they are different \
                         databases, name them (`CachedConnection::database`)"
                    ),
                    _ => {}
                }
                Fingerprint::Anonymous { kind, wrapper: 0 }
            }
            known => known,
        }
    }

    /// The namespace registered for `fingerprint`, if it was met before.
    fn known(&self, fingerprint: &Fingerprint) -> Option<Namespace> {
        self.registry().seen.get(fingerprint).cloned()
    }

    /// Registers `fingerprint`, whose hash is `hash`, with `default` the hash of the
    /// default database (`None`: the first database met is the default one). The first
    /// registration of a fingerprint wins.
    fn register(
        &self,
        fingerprint: Fingerprint,
        hash: String,
        default: Option<String>,
    ) -> Namespace {
        let mut registry = self.registry();
        if let Some(namespace) = registry.seen.get(&fingerprint) {
            return namespace.clone();
        }
        let default = match default {
            Some(default) => registry.default.get_or_insert(default).clone(),
            None => registry.default.get_or_insert_with(|| hash.clone()).clone(),
        };
        let namespace = if default == hash {
            Namespace::Default
        } else {
            Namespace::Named(Arc::from(format!("@{hash}")))
        };
        registry.seen.insert(fingerprint, namespace.clone());
        namespace
    }

    /// The database shared by the connections established with `url`.
    fn of_url(&self, url: &str) -> Arc<DatabaseId> {
        let hash = xxhash_rust::xxh3::xxh3_128(url.as_bytes());
        Arc::clone(self.registry().by_url.entry(hash).or_default())
    }
}

/// The 12 hex digits of a fingerprint's namespace: the same in every process.
fn hash_of(fingerprint: &Fingerprint) -> String {
    let text = match fingerprint {
        Fingerprint::Known(text) => text.as_str(),
        Fingerprint::Anonymous { kind, .. } => kind,
    };
    let hash = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
    format!("{:012x}", hash >> 16)
}

impl Cache {
    /// The namespace of the database `fingerprint` names in this cache (see the module
    /// docs); registers it the first time. On a store shared with other processes the
    /// default database is the one recorded in the store (claimed by the first process
    /// to meet a database): `None` while the store cannot say (the caller then neither
    /// reads nor stores, and asks again next time).
    pub(crate) async fn database_namespace(&self, fingerprint: Fingerprint) -> Option<Namespace> {
        let databases = &self.inner.databases;
        let fingerprint = databases.normalize(fingerprint);
        if let Some(namespace) = databases.known(&fingerprint) {
            return Some(namespace);
        }
        let hash = hash_of(&fingerprint);
        let default = match &self.inner.store {
            crate::store::Backend::Memory(_) => None,
            #[cfg(feature = "redis")]
            crate::store::Backend::Tiered(tiered) => match tiered.default_database(&hash).await {
                Ok(default) => Some(default),
                Err(error) => {
                    tracing::warn!(
                        %error,
                        namespace = %format_args!("@{hash}"),
                        "cannot learn from Redis which database is the default one of the \
                         caches sharing it; this database's cached calls run uncached until \
                         it can"
                    );
                    return None;
                }
            },
        };
        let namespace = databases.register(fingerprint, hash, default);
        tracing::debug!(namespace = ?namespace, "database met");
        Some(namespace)
    }

    /// The database of Diesel connections established with `url`: shared by all of them,
    /// so that the first one to learn its database settles them all.
    #[cfg_attr(not(feature = "diesel"), allow(dead_code))]
    pub(crate) fn database_of_url(&self, url: &str) -> Arc<DatabaseId> {
        self.inner.databases.of_url(url)
    }

    /// [`invalidate_written_expanded`](Self::invalidate_written_expanded) for a write to the database of
    /// `namespace`: the declared table dependencies are added first, then every model tag
    /// is put in the namespace. `None`, a database not known: the tags in the default
    /// database and each table's tag in every other one (`model:@*/<table>`).
    pub(crate) async fn invalidate_written_in(
        &self,
        namespace: Option<&Namespace>,
        tags: Vec<Tag>,
    ) -> usize {
        if tags.is_empty() {
            return 0;
        }
        self.invalidate_written_expanded(self.in_database(namespace, tags))
            .await
    }

    /// [`invalidate_written_detached_expanded`](Self::invalidate_written_detached_expanded)
    /// for a write to the database of `namespace` (see
    /// [`invalidate_written_in`](Self::invalidate_written_in)).
    #[cfg_attr(not(feature = "diesel"), allow(dead_code))]
    pub(crate) fn invalidate_written_detached_in(
        &self,
        namespace: Option<&Namespace>,
        tags: Vec<Tag>,
    ) {
        if tags.is_empty() {
            return;
        }
        self.invalidate_written_detached_expanded(self.in_database(namespace, tags));
    }

    /// [`invalidate_feed`](Self::invalidate_feed) of what a change feed saw written in the
    /// database of `namespace` (see [`invalidate_written_in`](Self::invalidate_written_in)).
    #[cfg_attr(
        not(any(
            feature = "feed-postgres",
            feature = "feed-sqlite",
            feature = "feed-mysql"
        )),
        allow(dead_code)
    )]
    pub(crate) async fn invalidate_feed_in(
        &self,
        namespace: Option<&Namespace>,
        tags: Vec<Tag>,
    ) -> Result<usize, crate::store::StoreError> {
        self.invalidate_feed(self.in_database(namespace, tags))
            .await
    }

    /// The store, for what a change feed shares through it (its lease and position).
    #[cfg_attr(
        not(any(
            feature = "feed-postgres",
            feature = "feed-sqlite",
            feature = "feed-mysql"
        )),
        allow(dead_code)
    )]
    pub(crate) fn backend(&self) -> &crate::store::Backend {
        &self.inner.store
    }

    /// Written `tags` with their table dependencies, in the database of `namespace`.
    fn in_database(&self, namespace: Option<&Namespace>, tags: Vec<Tag>) -> Vec<Tag> {
        let tags = self.with_table_dependencies(tags);
        match namespace {
            Some(namespace) => namespace.tags(tags),
            None => in_unknown_database(tags),
        }
    }
}

/// What an entry depends on for the model tags `tags` read from a connection's database
/// ([`Namespace::read_tags`]); when the database is not known, both the default database's
/// tags and every other database's table tags (more than needed, never less).
#[cfg_attr(not(feature = "sea-orm"), allow(dead_code))]
pub(crate) fn read_tags_in(namespace: Option<&Namespace>, tags: Vec<Tag>) -> Vec<Tag> {
    match namespace {
        Some(namespace) => namespace.read_tags(tags),
        None => in_unknown_database(tags),
    }
}

/// Tags given by hand on behalf of a connection, in its database: model tags in its
/// namespace; when the database is not known, as a write there (see
/// [`Cache::invalidate_written_in`]).
pub(crate) fn tags_in(namespace: Option<&Namespace>, tags: Vec<Tag>) -> Vec<Tag> {
    match namespace {
        Some(namespace) => namespace.tags(tags),
        None => in_unknown_database(tags),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_database_is_the_default_and_others_get_a_stable_namespace() {
        let dbs = Databases::default();
        let a = Fingerprint::Known("postgres|a".into());
        let b = Fingerprint::Known("postgres|b".into());
        assert_eq!(
            dbs.register(a.clone(), hash_of(&a), None),
            Namespace::Default
        );
        let nb = dbs.register(b.clone(), hash_of(&b), None);
        assert_ne!(nb, Namespace::Default);
        assert_eq!(dbs.known(&a), Some(Namespace::Default));
        assert_eq!(dbs.known(&b), Some(nb.clone()));
        let other = Databases::default();
        let x = Fingerprint::Known("x".into());
        other.register(x.clone(), hash_of(&x), None);
        assert_eq!(
            other.register(b.clone(), hash_of(&b), None),
            nb,
            "the same in every process"
        );
    }

    #[test]
    fn a_recorded_default_wins_over_the_order_databases_are_met_in() {
        let (a, b) = (
            Fingerprint::Known("postgres|a".into()),
            Fingerprint::Known("postgres|b".into()),
        );
        // This process meets `b` first, but another one recorded `a` as the default.
        let dbs = Databases::default();
        let nb = dbs.register(b.clone(), hash_of(&b), Some(hash_of(&a)));
        assert_eq!(nb, Namespace::Named(Arc::from(format!("@{}", hash_of(&b)))));
        assert_eq!(
            dbs.register(a.clone(), hash_of(&a), Some(hash_of(&a))),
            Namespace::Default
        );
    }

    #[test]
    fn a_write_to_an_unknown_database_reaches_every_database_by_table() {
        let named = named("tenant").unwrap();
        let read = named.read_tags(vec![Tag::row("songs", 7), Tag::bulk("songs")]);
        let written = tags_in(None, vec![Tag::row("songs", 7)]);
        assert!(
            written.contains(&Tag::row("songs", 7)),
            "the default database's row"
        );
        assert!(
            written.iter().any(|t| read.contains(t)),
            "another database's entry of the table: {written:?} against {read:?}"
        );
        let unrelated = tags_in(None, vec![Tag::row("users", 1)]);
        assert!(
            !unrelated.iter().any(|t| read.contains(t)),
            "other tables stay"
        );
        assert_eq!(
            Namespace::Default.read_tags(vec![Tag::model("songs")]),
            [Tag::model("songs")]
        );
    }

    #[test]
    fn namespaced_tags_keep_their_shape() {
        let ns = named("Tenant_42").unwrap();
        assert_eq!(
            ns.tag(Tag::model("songs")).as_str(),
            "model:@tenant_42/songs"
        );
        assert_eq!(
            ns.tag(Tag::row("songs", "Ab")).as_str(),
            "model:@tenant_42/songs:Ab"
        );
        assert_eq!(
            ns.tag(Tag::bulk("songs")).as_str(),
            "model:@tenant_42/songs#bulk"
        );
        assert_eq!(
            ns.tag(Tag::row("songs", 7)).table(),
            Some("@tenant_42/songs")
        );
        assert_eq!(ns.tag(Tag::all_models()), Tag::all_models());
        let user = Tag::new("user:1").unwrap();
        assert_eq!(ns.tag(user.clone()), user);
        assert!(named("a:b").is_err());
        assert!(named("").is_err());
    }
}
