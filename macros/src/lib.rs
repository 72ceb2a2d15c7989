//! Procedural macros for [querycache]: `#[cached_query]`, `#[cache_model_query]`,
//! `#[cache_count_query]` and `#[cache_skip]`.
//!
//! Use them through the `querycache` crate, which re-exports them and provides the types
//! their expansions name (`querycache::__private`); this crate on its own is of no use.
//!
//! How the code is laid out, following `tracing-attributes`:
//!
//! * `lib.rs`: the entry points and their documentation;
//! * `attr.rs`: parses the attribute's arguments (`Args`), then checks them (`Options`);
//! * `fresh.rs`: the freshness options (`swr`, `early_refresh`, `fail_safe`, timeouts): their
//!   values, what they need of the signature, and the arguments a background computation owns;
//! * `template.rs`: `key = ".."` and `tags = [".."]` templates;
//! * `args.rs`: analyzes the signature (key, connection and skipped arguments, `Result`);
//! * `expand.rs`: the checks that need both, and the generated body.
//!
//! Every mistake found is reported (`syn::Error::combine`), each on the token at fault,
//! before any code is generated.
//!
//! [querycache]: https://docs.rs/querycache

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::ItemFn;

mod args;
mod attr;
mod expand;
mod fresh;
mod model;
mod template;

use args::FnInfo;
use attr::{Args, Flavor, Options};

/// Caches the result of an `async fn` or a plain `fn` (a free function or a method) in
/// querycache.
///
/// The first call with given arguments runs the function and stores its result; later
/// calls with the same arguments return a clone of the stored value until its TTL runs out
/// or something it depends on is invalidated (by a write through the ORM integration, or by
/// `Cache::invalidate_tags`). Concurrent callers of a cold key wait for one computation
/// instead of each running the query.
///
/// **What it depends on is observed, not declared.** While the function computes, every
/// statement it sends through an integrated connection (a SeaORM `CachedConnection`, a
/// Diesel connection carrying `CacheInstrumentation`, diesel-async) is read: each table it
/// reads — joins, subqueries, CTEs and unions included — becomes a dependency, narrowed to
/// the row where the statement pins the primary key. A write to any of them invalidates the
/// entry; a write to another row, or to a table it did not read, does not. So the function
/// below declares nothing, and renaming a song's author invalidates its card. `models`,
/// `row` and `tags` are optional and *added* to what is observed (for reads the connection
/// cannot see: another service's API, work spawned elsewhere). A statement whose reads
/// cannot be known leaves the value uncached, with a warning naming the statement. A view
/// read depends on the tables it reads, and a cascading foreign key's writes reach their
/// readers (both from the database's catalog). A cached function calling another depends on
/// everything the inner one depends on: its hit, with the versions it was computed under,
/// or its statements, when it is computed in the outer scope.
///
/// ```
/// use querycache::cached_query;
/// use querycache::orm::sea_orm::CachedConnection;
/// use sea_orm::{DbErr, EntityTrait};
/// # mod user {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "users")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i32,
/// #         pub name: String,
/// #     }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// # mod song {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "songs")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i32,
/// #         pub title: String,
/// #         pub author_id: i32,
/// #     }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {
/// #         #[sea_orm(belongs_to = "super::user::Entity", from = "Column::AuthorId", to = "super::user::Column::Id")]
/// #         Author,
/// #     }
/// #     impl Related<super::user::Entity> for Entity {
/// #         fn to() -> RelationDef { Relation::Author.def() }
/// #     }
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
///
/// /// A song and its author: depends on row `id` of `songs` and on the `users` table.
/// #[cached_query(ttl = "10m")]
/// pub async fn song_card(
///     db: &CachedConnection,
///     id: i32,
/// ) -> Result<Option<(song::Model, Option<user::Model>)>, DbErr> {
///     song::Entity::find_by_id(id)
///         .find_also_related(user::Entity)
///         .one(db)
///         .await
/// }
/// # fn main() {}
/// ```
///
/// ```
/// use querycache::cached_query;
/// use sea_orm::{DatabaseConnection, DbErr, EntityTrait, QueryOrder, QuerySelect};
/// # mod song {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "songs")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i32,
/// #         pub title: String,
/// #         pub author_id: i32,
/// #         pub created_at: i64,
/// #     }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
///
/// #[cached_query(ttl = "10m", models = [song::Entity])]
/// pub async fn newest_songs(db: &DatabaseConnection, limit: u64) -> Result<Vec<song::Model>, DbErr> {
///     song::Entity::find()
///         .order_by_desc(song::Column::CreatedAt)
///         .limit(limit)
///         .all(db)
///         .await
/// }
/// ```
///
/// A runnable example, without a database (the query is a counter; `cache = ..` names the
/// cache instead of the process-wide one):
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use querycache::{Cache, CacheModel, Tag, cached_query};
///
/// struct Song;
/// impl CacheModel for Song {
///     const TABLE: &'static str = "songs";
/// }
///
/// static QUERIES: AtomicUsize = AtomicUsize::new(0);
/// static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
///
/// #[cached_query(ttl = "10m", models = [Song], row = id, tags = ["user:{user_id}"], cache = CACHE.get().unwrap())]
/// async fn song_title(id: i32, user_id: i32) -> Result<String, std::io::Error> {
///     QUERIES.fetch_add(1, Ordering::SeqCst);
///     Ok(format!("song {id}"))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), std::io::Error> {
/// let cache = CACHE.get_or_init(Cache::new);
/// assert_eq!(song_title(7, 1).await?, "song 7"); // miss
/// assert_eq!(song_title(7, 1).await?, "song 7"); // hit
/// assert_eq!(QUERIES.load(Ordering::SeqCst), 1);
///
/// cache.invalidate_tags([Tag::row("songs", 8)]).await; // another row: still a hit
/// song_title(7, 1).await?;
/// assert_eq!(QUERIES.load(Ordering::SeqCst), 1);
///
/// cache.invalidate_tags([Tag::row("songs", 7)]).await; // this row: a miss
/// song_title(7, 1).await?;
/// assert_eq!(QUERIES.load(Ordering::SeqCst), 2);
/// # Ok(()) }
/// ```
///
/// The signature, visibility, attributes and doc comments are kept as written; only the
/// body is wrapped. The returned type must be serializable, deserializable, `Clone`,
/// `Send`, `Sync` and `'static` (for a `Result<T, E>`, this applies to `T`).
///
/// # Options
///
/// All are optional, written `name = value` in any order, each at most once.
///
/// * **`ttl = 3600`** or **`ttl = "1h"`**: how long the entry lives. An integer is a number
///   of seconds; a string is a duration made of a number and a unit among `s`, `m`, `h`
///   and `d`, several units largest first (`"90s"`, `"30m"`, `"2h"`, `"1d"`, `"1h30m"`).
///   At least one second; checked at compile time. Without it, the namespace's TTL
///   (`CACHE_TTL_<NAMESPACE>`) or `CACHE_DEFAULT_TTL` applies; `CACHE_MAX_TTL` caps all.
///
/// * **`models = [song::Entity, user::Entity]`**: tables the entry depends on, in addition
///   to what its statements are observed to read (for reads no integrated connection sees:
///   a plain `DatabaseConnection`, a view until views are resolved from the catalog). Any
///   write to one of them (through querycache's ORM integration) invalidates the entry.
///   Each is a SeaORM entity, a Diesel table, or any type implementing
///   `querycache::CacheModel` (a view, a table without an entity). With `CACHE_AUDIT=warn`,
///   each table the function reads without declaring it is reported once
///   (`Cache::audit_findings`):
///
///   ```
///   # use querycache::cached_query;
///   # use sea_orm::{DatabaseConnection, DbErr};
///   struct TopSongs;
///   impl querycache::CacheModel for TopSongs {
///       const TABLE: &'static str = "top_songs";
///   }
///
///   #[cached_query(models = [TopSongs])]
///   async fn top_songs(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
///       # let _ = db;
///       Ok(vec![/* .. */])
///   }
///   ```
///
/// * **`row = id`**: the query reads one row of the *first* model, whose primary key is the
///   argument `id`. The entry then survives writes to other rows of that table: it is
///   invalidated by a write to row `id` or by a write whose rows are unknown (`update_many`,
///   raw SQL), not by a write to row 8 when `id` is 7. The other models stay table-level.
///   The argument must implement `Display`, rendering the key as the database would.
///
///   ```
///   # use querycache::{CacheModel, cached_query};
///   # use sea_orm::{DatabaseConnection, DbErr};
///   # #[derive(Clone, serde::Serialize, serde::Deserialize)]
///   # struct SongView;
///   # struct Song;
///   # impl CacheModel for Song { const TABLE: &'static str = "songs"; }
///   # struct User;
///   # impl CacheModel for User { const TABLE: &'static str = "users"; }
///   #[cached_query(models = [Song, User], row = id)]
///   async fn song_with_author(db: &DatabaseConnection, id: i32) -> Result<Option<SongView>, DbErr> {
///       # let _ = (db, id);
///       Ok(None /* .. */)
///   }
///   ```
///
/// * **`tags = ["user:{user_id}", "charts"]`**: application tags the entry depends on;
///   invalidate them with `cache.invalidate_tags([Tag::new("user:7")?])`. `{name}` is
///   replaced by the `Display` output of the argument `name`; only argument names are
///   allowed between braces (no format specs, no expressions); `{{` and `}}` are literal
///   braces.
///
/// * **`key = "songs:popular:limit:{limit}"`**: the key, instead of the default one. Same
///   placeholders as `tags`. Useful to read the entry elsewhere with
///   `cache.get::<T>("songs:popular:limit:10")`, or to share it between functions. The
///   template must tell apart every call whose result differs: with two placeholders, a
///   value containing the separator between them is ambiguous (`"{a}:{b}"` is one key for
///   `a = "x:y", b = "z"` and `a = "x", b = "y:z"`). A key that comes out invalid (a
///   control character in a value, longer than 4096 bytes) runs the call uncached.
///
/// * **`namespace = "songs"`**: the namespace of the entries (statistics, per-namespace
///   TTLs, `Cache::invalidate_namespace`). A non-empty string without whitespace. Default:
///   the function's name.
///
/// * **`error_ttl = 300`** or **`error_ttl = "5m"`**: also cache `Err` values, for that long
///   (capped by the entry's TTL), so that a failing query is not re-run by every caller.
///   Needs a `Result` return type whose error type is serializable and `Clone`.
///
/// * **`cache_errors`**: as `error_ttl`, for the configured `CACHE_ERROR_TTL`. Cannot be
///   combined with `error_ttl`.
///
/// * **`jitter = 10`**: each entry expires up to that percentage of its TTL early, at
///   random (an integer from 0 to 100; default `CACHE_JITTER_PERCENT`, 0), so that entries
///   written together are not all recomputed together. Only expiry moves: a write still
///   invalidates at once.
///
/// * **`swr = 30`** or **`swr = "5m"`**: stale-while-revalidate. For that long past its TTL
///   an expired entry is still served, and a read of it starts a recomputation (one per
///   key). Seconds or a duration string, as `ttl`; at least one second.
///
/// * **`early_refresh = 1.0`**: probabilistic early refresh (XFetch): a read may recompute
///   the entry shortly before it expires, more readily as expiry nears and the longer the
///   last computation took, so a popular key is refreshed before it runs out rather than
///   by a crowd of callers after. The value is the algorithm's beta, a number literal above
///   0 and at most 100: 1.0 is the paper's default, a larger beta refreshes earlier.
///
/// * **`fail_safe = "1h"`**: when recomputing an expired entry fails, the last good value is served instead, for up to that long past its TTL.
///   Seconds or a duration string; at least one second. Cannot be combined with
///   `error_ttl` or `cache_errors`, which would answer the failure with the error.
///
/// * **`fail_safe_throttle = "30s"`**: after such a failure, how long the last good value is
///   served before the computation is tried again. Needs `fail_safe`.
///
/// * **`soft_timeout = "250ms"`**: when a recomputation takes longer than that and a stale
///   value is at hand (`swr`, `fail_safe`), the caller gets the stale value and the
///   computation finishes in the background; without one, the caller keeps waiting.
///   Seconds as an integer, or a duration string that may also be milliseconds alone
///   (`"250ms"`, `"2s"`, `"1m30s"`; not `"1s500ms"`: write `"1500ms"`). At least 1 ms.
///
/// * **`hard_timeout = "2s"`**: the caller waits at most that long; without a stale value
///   to serve it gets an error, `E::from(querycache::TimedOut)`, so the function must
///   return `Result<T, E>` with `E: From<querycache::TimedOut>`. The computation is not
///   cancelled: it finishes in the background. Written as `soft_timeout`; when both are
///   given, longer than `soft_timeout`.
///
///   None of these outlives a write: an entry whose tables or tags were invalidated is
///   never served, stale or not.
///
/// * **`cache = <expr>`**: the cache to use, an expression evaluating to a
///   `querycache::Cache`, a `&Cache` or an `Arc<Cache>` (for example `cache = self.cache`
///   in a method, or `cache = &*APP_CACHE`). Default: the cache of the function's
///   connection argument when it has one (a SeaORM `CachedConnection` or
///   `CachedTransaction`, a Diesel connection carrying `CacheInstrumentation`), so that the
///   function reads through the cache its connection's writes invalidate; otherwise the
///   global cache (`querycache::global()`, set up with `querycache::install`). A
///   `cache = ..` that is not the connection's cache is kept, and a warning naming the
///   function says, once, that writes through that connection do not invalidate it.
///
/// * **`invalidate = false`**: no `<fn>_invalidate` companion (see below). Needed only
///   where an extra item cannot go: a cached function without `self` inside a trait `impl`.
///
/// # Invalidating one call's entry: `<fn>_invalidate`
///
/// Beside each cached function without a receiver, the macro generates
/// `<fn>_invalidate`, with the same visibility, generics and `#[cfg]`s: it removes exactly
/// the entry a call with the same arguments would read, and returns whether there was one
/// (a computation of it in flight will not store its result). It is `async` when the
/// function is, and takes the function's arguments minus those that are not part of the
/// key — skipped arguments go; connection arguments stay, since the call finds its cache
/// (and, for a connection to another database, its key's database prefix) through them:
///
/// | function | companion |
/// | --- | --- |
/// | `async fn get_song(db: &CachedConnection, id: i32)` | `async fn get_song_invalidate(db: &CachedConnection, id: i32) -> bool` |
/// | `fn count(conn: &mut PgConnection, #[cache_skip] trace: Span, album: i32)` | `fn count_invalidate(conn: &mut PgConnection, album: i32) -> bool` |
/// | `#[cached_query(key = "top:{n}")] async fn top(n: u32, #[cache_skip] verbose: bool)` | `async fn top_invalidate(n: u32) -> bool` |
///
/// The key is built as the call builds it: the function's path and key arguments, or the
/// `key = ".."` template with its placeholders; the cache is the one the call uses
/// (`cache = ..`, the connection's, or the global one). Methods (with `self`) get no
/// companion: their entries are invalidated by tags as usual. A function already named
/// `<fn>_invalidate` in the same scope is a compile error ("defined multiple times"), never
/// a silent replacement: rename one, or write `invalidate = false`.
///
/// ```
/// use std::sync::LazyLock;
/// use querycache::{Cache, cached_query};
///
/// static CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
///
/// #[cached_query(cache = &*CACHE, ttl = "1h")]
/// async fn title(id: u32, #[cache_skip] log: bool) -> String {
///     format!("song {id}")
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// title(7, false).await;
/// title(8, false).await;
/// assert!(title_invalidate(7).await, "the entry of title(7, _) was there");
/// assert!(!title_invalidate(7).await, "and is gone");
/// let hits = CACHE.stats().hits;
/// title(8, true).await;
/// assert_eq!(CACHE.stats().hits, hits + 1, "title(8, _) is untouched");
/// # }
/// ```
///
/// # The key
///
/// By default the key is the function's path (`my_app::songs::newest_songs`) followed by a
/// hash of its *key arguments* serialized as JSON, so each key argument must implement
/// `serde::Serialize`. Every argument is a key argument except:
///
/// * the receiver (`self`, `&self`, `&mut self`, `self: Arc<Self>`...);
/// * connections, recognized by their type: `&DatabaseConnection`, `&DatabaseTransaction`,
///   `&DbConn`, `&CachedConnection`, `&CachedTransaction`, Diesel's and sqlx's
///   `PgConnection`, `SqliteConnection`, `MysqlConnection`, `AsyncPgConnection`,
///   `AsyncMysqlConnection`, `PooledConnection<..>`, `Pool<..>`, any type whose name ends
///   with `Connection` (an app's `AnyConnection`); `&impl ConnectionTrait` (or
///   `TransactionTrait`, `StreamTrait`, `Connection`), a trait object of one of those
///   traits where the trait allows one; and a type parameter bounded by one of those traits
///   (`db: &C` with `C: ConnectionTrait`). SeaORM 2.0's `ConnectionTrait` is not
///   dyn-compatible (its methods are generic), so `&dyn ConnectionTrait` cannot be written:
///   take `&impl ConnectionTrait` or a type parameter instead.
///   Connections are shown to the cache: inside a transaction that has written anything
///   (or that querycache cannot see into, like a plain `DatabaseTransaction`) the
///   cache is bypassed; inside other transactions hits are served but nothing computed is
///   stored. A Diesel connection (`&mut PgConnection`, `&mut PooledConnection<..>`...) tells
///   its transaction state through its querycache instrumentation;
/// * arguments marked `#[cache_skip]` (see [`macro@cache_skip`]), and arguments written `_`.
///
/// Key arguments must be plain names (`id: i32`, `mut page: u32`), not patterns.
///
/// The key does not include type parameters: the instantiations of a generic function
/// share entries when their key arguments serialize to the same JSON.
///
/// The path in the key is the module's path and the function's name: a method's `impl`
/// type is not part of it. Two cached methods with the same name and key arguments in
/// `impl` blocks of the same module would share entries; give one of them a `key`
/// template, or rename it.
///
/// # `Result` and plain values
///
/// A function whose return type is written `Result<T, E>` (including `anyhow::Result<T>`,
/// `std::io::Result<T>`, any path ending in `Result<..>`, and aliases whose name ends with
/// `Result`, such as Diesel's `QueryResult<T>`) caches its `Ok` values only:
/// an `Err` is returned to the caller and the next call runs the function again, unless
/// `error_ttl` or `cache_errors` is given. Any other return type is cached as a whole.
///
/// A type alias that hides a `Result` under another name (`type Res = Result<u32, E>`) is
/// cached as a plain value, `Err` included; write `Result<..>` in the signature to cache
/// `Ok` values only.
///
/// # Background computations
///
/// With `swr`, `early_refresh`, `soft_timeout` or `hard_timeout`, an `async fn`'s body runs
/// as a computation that can go on after its caller has moved on (a refresh in the
/// background, a computation the caller stopped waiting for). It must own what it uses, so
/// it is `Send + 'static`:
///
/// * an argument taken by value moves in (its type must be `Send + 'static`);
/// * an argument `name: &T` is cloned (`T: ToOwned`, so `T: Clone`, `&str` becoming a
///   `String`) before the cache is consulted, and borrowed back as `&T` at the start of the
///   body, which therefore reads as written. The clone is made on every call, hits
///   included: for a connection, take a cheap-to-clone handle (SeaORM's
///   `DatabaseConnection` is one);
/// * `&mut` arguments, `&self` and `&mut self` receivers, `&impl Trait` arguments and `&T`
///   arguments bound to a pattern cannot be owned that way. With `swr` or `early_refresh`
///   alone, such a function's refreshing caller computes in the foreground (it waits for
///   its own computation, others are still served the stale value); with `soft_timeout` or
///   `hard_timeout` they are compile errors.
///
/// A plain `fn` gets `swr`, `early_refresh` and `fail_safe` with the refreshing caller
/// computing in the foreground, and no timeouts (a thread running a synchronous query
/// cannot be interrupted or detached).
///
/// Inside a transaction (see the connections under *The key*) the cache is bypassed or read-only:
/// the body then runs like any uncached call, and the timeouts do not apply.
///
/// # Inside the body
///
/// The body of an `async fn` runs as an `async move` block, that of a plain `fn` as a
/// `move` closure on the calling thread: `?` and `return` behave as in the original
/// function, and `self` is the method's receiver.
///
/// A plain `fn` (Diesel's synchronous API) waits for the cache itself and needs no runtime
/// from its caller: outside tokio the cache runs on a small runtime of querycache's own;
/// called from a multi-thread tokio runtime's worker (by mistake: blocking database calls
/// belong in `spawn_blocking`), it waits through `tokio::task::block_in_place`, so the
/// worker's other tasks move on to other workers; called on a current-thread runtime, each
/// cache operation runs on querycache's runtime while the thread waits, and the call does
/// not wait for a concurrent computation of the same key (that computation may be a task of
/// the very thread that would wait), so the query may run twice. When the cache is disabled, or a call
/// cannot be cached (an invalid tag, an argument that fails to serialize), the body simply
/// runs; a cache failure never fails the call.
///
/// # Compile-time errors
///
/// The macro rejects, each with a message on the token at fault: a function that is
/// `const`, `unsafe` or `extern`; a function returning nothing or
/// `impl Trait`; unknown or repeated options; a TTL that is not a positive integer or a
/// valid duration; an empty `models` list; `row` without `models`; `row` or a placeholder
/// that names no argument; a placeholder with a format spec or an expression;
/// `error_ttl`/`cache_errors` on a function that does not return `Result`, or both
/// together; a key argument that is a pattern rather than a name; an `early_refresh` that is
/// not a number literal above 0 and at most 100; `fail_safe_throttle` without `fail_safe`;
/// `fail_safe` (or its throttle) with `error_ttl` or `cache_errors`; a `hard_timeout` not
/// longer than `soft_timeout`; timeouts on a plain `fn`, or on an `async fn` with an
/// argument its computation cannot own; `hard_timeout` on a function not returning
/// `Result`.
///
/// The compiler reports the rest, on the token at fault: a key argument that does not
/// implement `Serialize` (as "the method `__querycache_key_argument_must_implement_serialize`
/// exists for `&T`, but its trait bounds were not satisfied", naming `T: Serialize`), a
/// model that is neither a SeaORM entity nor a `CacheModel` (on the model), a return type
/// that cannot be cached (on the return type), a placeholder argument without `Display`
/// (on the template). For a background computation (see above): a `&T` argument whose `T`
/// is not `Clone` (on its type, as "required for `T` to implement `ToOwned`"), arguments or
/// a body that are not `Send + 'static` (on the return type), and with `hard_timeout` an
/// error type without `From<querycache::TimedOut>` (on the return type).
#[proc_macro_attribute]
pub fn cached_query(args: TokenStream, item: TokenStream) -> TokenStream {
    cached(Flavor::Query, args.into(), item.into()).into()
}

/// Caches a query that reads one model: `#[cache_model_query(song::Entity, ..)]` is
/// `#[cached_query(models = [song::Entity], ..)]`.
///
/// The first argument is the model (a SeaORM entity, or a type implementing
/// `querycache::CacheModel`); the options that follow are those of
/// [`macro@cached_query`] except `models`: `ttl`, `row`, `tags`, `key`, `namespace`,
/// `error_ttl`, `cache_errors`, `jitter`, `swr`, `early_refresh`, `fail_safe`,
/// `fail_safe_throttle`, `soft_timeout`, `hard_timeout` and `cache`. Key arguments, connections, `#[cache_skip]`
/// and the `Result` mode work as there.
///
/// ```
/// use querycache::cache_model_query;
/// use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
/// # mod song {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "songs")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i32,
/// #         pub title: String,
/// #         pub author_id: i32,
/// #         pub created_at: i64,
/// #     }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
///
/// // Invalidated by a write to song `id`, or by a bulk write to songs.
/// #[cache_model_query(song::Entity, row = id, ttl = "1h")]
/// pub async fn song_by_id(db: &DatabaseConnection, id: i32) -> Result<Option<song::Model>, DbErr> {
///     song::Entity::find_by_id(id).one(db).await
/// }
///
/// // Invalidated by any write to songs.
/// #[cache_model_query(song::Entity, ttl = 600, tags = ["user:{author_id}"])]
/// pub async fn songs_of(db: &DatabaseConnection, author_id: i32) -> Result<Vec<song::Model>, DbErr> {
///     song::Entity::find()
///         .filter(song::Column::AuthorId.eq(author_id))
///         .all(db)
///         .await
/// }
/// ```
///
/// A runnable example (the count is a constant here):
///
/// ```
/// use querycache::{Cache, CacheModel, Tag, cache_count_query, cache_model_query};
///
/// struct Song;
/// impl CacheModel for Song {
///     const TABLE: &'static str = "songs";
/// }
///
/// static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
///
/// #[cache_model_query(Song, ttl = 60, cache = CACHE.get_or_init(Cache::new))]
/// async fn newest_titles(limit: u64) -> Vec<String> {
///     (0..limit).map(|i| format!("song {i}")).collect()
/// }
///
/// #[cache_count_query(Song, cache = CACHE.get_or_init(Cache::new))]
/// async fn song_count() -> u64 {
///     42
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(newest_titles(2).await, ["song 0", "song 1"]);
/// assert_eq!(song_count().await, 42);
/// let cache = CACHE.get().unwrap();
/// assert_eq!(cache.stats().sets, 2);
/// cache.invalidate_tags([Tag::model("songs")]).await; // any write to songs
/// song_count().await;
/// assert_eq!(cache.stats().computations, 3, "recomputed after the write");
/// # }
/// ```
///
/// For a query reading several models, use `#[cached_query(models = [..])]`: giving
/// `models` here is an error, and so is leaving out the model.
#[proc_macro_attribute]
pub fn cache_model_query(args: TokenStream, item: TokenStream) -> TokenStream {
    cached(Flavor::Model, args.into(), item.into()).into()
}

/// Caches a count or aggregate query over one model: as [`macro@cache_model_query`], and
/// the entry is marked as a count query.
///
/// Without `ttl`, a count query gets the shorter count-query TTL of the configuration
/// (`CACHE_COUNT_TTL`, 5 minutes by default) instead of `CACHE_DEFAULT_TTL` (a namespace
/// TTL still takes precedence), since counts
/// are cheap to recompute and often displayed next to fresher data. Any write to the
/// model's table invalidates it.
///
/// ```
/// use querycache::cache_count_query;
/// use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter};
/// # mod song {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "songs")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i32,
/// #         pub title: String,
/// #         pub author_id: i32,
/// #         pub created_at: i64,
/// #     }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
///
/// #[cache_count_query(song::Entity)]
/// pub async fn song_count(db: &DatabaseConnection) -> Result<u64, DbErr> {
///     song::Entity::find().count(db).await
/// }
///
/// #[cache_count_query(song::Entity, ttl = "30s", namespace = "song_counts")]
/// pub async fn songs_by_author(db: &DatabaseConnection, author_id: i32) -> Result<u64, DbErr> {
///     song::Entity::find()
///         .filter(song::Column::AuthorId.eq(author_id))
///         .count(db)
///         .await
/// }
/// ```
///
/// The first argument is the model; the options are those of [`macro@cached_query`] except
/// `models`.
#[proc_macro_attribute]
pub fn cache_count_query(args: TokenStream, item: TokenStream) -> TokenStream {
    cached(Flavor::Count, args.into(), item.into()).into()
}

/// Leaves an argument of a cached function out of its key.
///
/// Written on an argument of a function marked `#[cached_query]`, `#[cache_model_query]`
/// or `#[cache_count_query]`, which removes it. Use it for arguments that do not change the
/// result (a request id, a logger, a metrics handle, a client already identified by
/// another argument) or that cannot be serialized. Two calls that differ only in skipped
/// arguments share one entry. Skipped arguments can still appear in `key` and `tags`
/// placeholders.
///
/// ```
/// # use querycache::cached_query;
/// # use sea_orm::{DatabaseConnection, DbErr};
/// # mod song {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
/// #     #[sea_orm(table_name = "songs")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key)]
/// #         pub id: i32,
/// #         pub title: String,
/// #         pub author_id: i32,
/// #         pub created_at: i64,
/// #     }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// # }
/// # type Uuid = u128;
/// #[cached_query(ttl = 60, models = [song::Entity])]
/// async fn song_titles(
///     db: &DatabaseConnection,
///     author_id: i32,
///     #[cache_skip] request_id: Uuid,
/// ) -> Result<Vec<String>, DbErr> {
///     # let _ = (db, author_id);
///     println!("{request_id}: loading titles");
///     Ok(vec![/* .. */])
/// }
/// ```
///
/// A runnable example: the `trace_id` argument does not change the key.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use querycache::{Cache, cached_query};
///
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
/// static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
///
/// #[cached_query(cache = CACHE.get_or_init(Cache::new))]
/// async fn lookup(id: u32, #[cache_skip] trace_id: String) -> u32 {
///     let _ = trace_id;
///     RUNS.fetch_add(1, Ordering::SeqCst);
///     id * 2
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(lookup(1, "trace-a".into()).await, 2);
/// assert_eq!(lookup(1, "trace-b".into()).await, 2);
/// assert_eq!(RUNS.load(Ordering::SeqCst), 1, "one key for both calls");
/// # }
/// ```
///
/// Connections (`&DatabaseConnection`, `impl ConnectionTrait`...) are left out of the key
/// already and need no `#[cache_skip]`; one marked anyway is still shown to the cache, so
/// that reads inside transactions stay correct.
///
/// There is nothing to import: the cached-function macro removes `#[cache_skip]` before
/// names are resolved (so `use querycache::cache_skip;` would be reported as unused).
/// `#[querycache::cache_skip]` is accepted too.
///
/// Anywhere else `#[cache_skip]` is an error: on an item it reports that it only works on
/// arguments of a `#[cached_query]` function; on an argument of another function the
/// compiler rejects it (attribute macros are not allowed on function parameters).
#[proc_macro_attribute]
pub fn cache_skip(_args: TokenStream, item: TokenStream) -> TokenStream {
    let error = syn::Error::new(
        proc_macro2::Span::call_site(),
        "#[cache_skip] only works on arguments of a #[cached_query] function (or \
         #[cache_model_query], #[cache_count_query]): put it before an argument, as in \
         `#[cache_skip] request_id: Uuid`",
    )
    .to_compile_error();
    let item = TokenStream2::from(item);
    quote!(#error #item).into()
}

/// Names a model type's table for `models = [..]`: implements `querycache::CacheModel`.
///
/// The table is read from Diesel's `#[diesel(table_name = songs)]` (the SQL name declared in
/// `table!`, so `#[sql_name]` is honoured), or given with
/// `#[cache_model(table = "songs", schema = "app")]`, which wins over Diesel's. A table
/// declared in a schema (`table! { app.songs .. }`) needs `#[cache_model]`.
///
/// ```
/// use diesel::prelude::*;
/// use querycache::{CacheModel, cached_query};
///
/// mod schema {
///     diesel::table! {
///         songs (id) {
///             id -> Integer,
///             title -> Text,
///         }
///     }
/// }
///
/// #[derive(Clone, Queryable, Selectable, CacheModel, serde::Serialize, serde::Deserialize)]
/// #[diesel(table_name = schema::songs)]
/// pub struct Song {
///     pub id: i32,
///     pub title: String,
/// }
///
/// #[cached_query(models = [Song], row = id)]
/// fn song(conn: &mut PgConnection, id: i32) -> QueryResult<Song> {
///     schema::songs::table.find(id).select(Song::as_select()).first(conn)
/// }
///
/// assert_eq!(<Song as querycache::CacheModel>::TABLE, "songs");
/// ```
#[proc_macro_derive(CacheModel, attributes(cache_model, diesel))]
pub fn derive_cache_model(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(input) => model::derive(input).into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Parse, check, expand: the three steps of every cached-function macro.
fn cached(flavor: Flavor, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                format!(
                    "#[{}] goes on a function with a body (an `async fn` or a plain `fn`, free or a method)",
                    flavor.name()
                ),
            )
            .to_compile_error();
            return quote!(#error #item);
        }
    };
    let mut errors = Errors::default();
    let options = match syn::parse2::<Args>(args) {
        Ok(args) => Some(Options::check(args, flavor, &mut errors)),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let info = FnInfo::analyze(&mut func.sig, flavor.name(), &mut errors);
    if let Some(options) = &options {
        expand::check(options, &info, &mut errors);
    }
    match (errors.finish(), options) {
        (Ok(()), Some(options)) => expand::expand(func, &options, &info),
        (result, _) => {
            // The function as written (minus `#[cache_skip]`), so that its callers do not
            // add errors of their own.
            let error = result.err().map(|error| error.to_compile_error());
            quote!(#error #func)
        }
    }
}

/// The errors found so far, combined into one `syn::Error` that reports each.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn extend(&mut self, other: Errors) {
        if let Some(error) = other.0 {
            self.push(error);
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests;
