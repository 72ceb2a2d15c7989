//! Which database an entry's rows came from: one cache serving several databases (a
//! database per tenant, a primary and an archive) must not hand one database's rows to a
//! caller of the other, nor let a write to `songs` in one invalidate (or keep valid) the
//! other's entries.
//!
//! Each ORM connection learns its database's *fingerprint* once (SeaORM: one query the first
//! time it is needed; Diesel: the URL it was established with, password removed) and
//! registers it here. The rule users see:
//!
//! * the **first** database a cache meets is its *default* database: its keys and tags are
//!   unchanged (`model:songs`), so an application with one database sees nothing of this;
//! * every **other** database gets a namespace `@<12 hex digits>` (a hash of its
//!   fingerprint, the same in every process): keys of `#[cached_query]` calls on it start
//!   with `@…/`, and its model tags read `model:@…/songs`;
//! * a connection given a **name** (`CachedConnection::database`,
//!   `CacheInstrumentation::database`) always uses `@<name>`, whatever came first — the way
//!   to make namespaces independent of start-up order, which processes sharing Redis need.
//!
//! A database that cannot be told apart from another of its kind (an in-memory SQLite
//! database has no file name) shares the fingerprint of all such databases: a second one
//! on the same cache is reported at warn level, and should be named.

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
    /// The fingerprint of the default database (the first one met).
    default: Option<Fingerprint>,
    /// Fingerprints met, with their namespaces.
    seen: HashMap<Fingerprint, Namespace>,
    /// Wrappers of anonymous databases met, by kind.
    anonymous: HashMap<&'static str, u64>,
}

impl Databases {
    /// The namespace of the database `fingerprint` names: the default one for the first
    /// database met, `@<hash>` for the others. `shared` says whether the cache's store is
    /// shared with other processes (where start-up order may differ: a warning says so).
    pub(crate) fn namespace(&self, fingerprint: Fingerprint, shared: bool) -> Namespace {
        let mut registry = match self.inner.lock() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        let fingerprint = match fingerprint {
            Fingerprint::Anonymous { kind, wrapper } => {
                match registry.anonymous.insert(kind, wrapper) {
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
        };
        if let Some(namespace) = registry.seen.get(&fingerprint) {
            return namespace.clone();
        }
        let namespace = if registry.default.is_none() {
            registry.default = Some(fingerprint.clone());
            Namespace::Default
        } else {
            let text = match &fingerprint {
                Fingerprint::Known(text) => text.as_str(),
                Fingerprint::Anonymous { kind, .. } => kind,
            };
            let hash = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
            let namespace = Namespace::Named(Arc::from(format!("@{:012x}", hash >> 16)));
            if shared {
                tracing::warn!(
                    namespace = ?namespace,
                    "a second database on a cache shared with other processes: which one is \
                     the default depends on the order each process meets them; name every \
                     database but one (`CachedConnection::database`) so all processes agree"
                );
            }
            namespace
        };
        registry.seen.insert(fingerprint, namespace.clone());
        namespace
    }
}

impl Cache {
    /// The namespace of the database `fingerprint` names in this cache (see the module
    /// docs); registers it the first time.
    pub(crate) fn database_namespace(&self, fingerprint: Fingerprint) -> Namespace {
        let shared = !matches!(self.inner.store, crate::store::Backend::Memory(_));
        self.inner.databases.namespace(fingerprint, shared)
    }

    /// [`invalidate_written`](Self::invalidate_written) for a write to the database of
    /// `namespace`: the declared table dependencies are added first, then every model tag
    /// is put in the namespace.
    pub(crate) async fn invalidate_written_in(
        &self,
        namespace: &Namespace,
        tags: Vec<Tag>,
    ) -> usize {
        if tags.is_empty() {
            return 0;
        }
        let tags = namespace.tags(self.with_table_dependencies(tags));
        self.invalidate_written_expanded(tags).await
    }

    /// [`invalidate_written_detached_expanded`](Self::invalidate_written_detached_expanded)
    /// for a write to the database of `namespace`, table dependencies added first.
    #[cfg_attr(not(feature = "diesel"), allow(dead_code))]
    pub(crate) fn invalidate_written_detached_in(&self, namespace: &Namespace, tags: Vec<Tag>) {
        if tags.is_empty() {
            return;
        }
        let tags = namespace.tags(self.with_table_dependencies(tags));
        self.invalidate_written_detached_expanded(tags);
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
        assert_eq!(dbs.namespace(a.clone(), false), Namespace::Default);
        let nb = dbs.namespace(b.clone(), false);
        assert_ne!(nb, Namespace::Default);
        assert_eq!(dbs.namespace(a, false), Namespace::Default);
        assert_eq!(dbs.namespace(b.clone(), false), nb);
        let other = Databases::default();
        other.namespace(Fingerprint::Known("x".into()), false);
        assert_eq!(other.namespace(b, false), nb, "the same in every process");
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
