//! `#[cached_query]`, `#[cache_model_query]`, `#[cache_count_query]` and `#[cache_skip]`:
//! the expansions at run time (the compile-time checks are the macros crate's trybuild
//! cases, `macros/tests/ui/`). Each test has a cache of its own, so tests can run in parallel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use querycache::testing::ManualClock;
use querycache::{Cache, CacheModel, Tag, cache_count_query, cache_model_query, cached_query};
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, Set, TransactionTrait};
use serde::{Deserialize, Serialize};

use crate::support::{TestDb, song};

/// Counts how many times a function body ran.
struct Runs(AtomicUsize);

impl Runs {
    const fn new() -> Self {
        Runs(AtomicUsize::new(0))
    }
    fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A table stand-in for `models = [..]`.
struct Things;
impl CacheModel for Things {
    const TABLE: &'static str = "things";
}

struct Widgets;
impl CacheModel for Widgets {
    const TABLE: &'static str = "widgets";
}

// ---------------------------------------------------------------------------------------
// Keys: miss then hit, one entry per argument tuple, skipped arguments.

static ARGS_CACHE: LazyLock<Arc<Cache>> = LazyLock::new(|| Arc::new(Cache::new()));
static ARGS_RUNS: Runs = Runs::new();

#[cached_query(cache = ARGS_CACHE.clone())]
async fn describe(id: u32, name: &str, tags: Vec<String>) -> String {
    ARGS_RUNS.bump();
    format!("{id}:{name}:{}", tags.join("+"))
}

#[tokio::test]
async fn second_call_is_a_hit_and_each_argument_is_in_the_key() {
    let tags = || vec!["a".to_owned()];
    assert_eq!(describe(1, "x", tags()).await, "1:x:a");
    assert_eq!(ARGS_RUNS.get(), 1);
    assert_eq!(
        describe(1, "x", tags()).await,
        "1:x:a",
        "served from the cache"
    );
    assert_eq!(ARGS_RUNS.get(), 1);
    let stats = ARGS_CACHE.stats();
    assert_eq!((stats.hits, stats.computations), (1, 1), "{stats:?}");

    // Changing any one argument is another entry.
    assert_eq!(describe(2, "x", tags()).await, "2:x:a");
    assert_eq!(describe(1, "y", tags()).await, "1:y:a");
    assert_eq!(describe(1, "x", vec![]).await, "1:x:");
    assert_eq!(ARGS_RUNS.get(), 4);
    // ... and each of them is a hit afterwards.
    assert_eq!(describe(2, "x", tags()).await, "2:x:a");
    assert_eq!(describe(1, "y", tags()).await, "1:y:a");
    assert_eq!(ARGS_RUNS.get(), 4);
    assert_eq!(ARGS_CACHE.stats().keys_count, 4);
}

static NO_ARGS_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static NO_ARGS_RUNS: Runs = Runs::new();

/// No key arguments at all: the key is the function's path.
#[cached_query(cache = *NO_ARGS_CACHE, namespace = "constants")]
async fn the_answer() -> u64 {
    NO_ARGS_RUNS.bump();
    42
}

#[tokio::test]
async fn a_function_without_arguments_has_one_entry() {
    assert_eq!(the_answer().await, 42);
    assert_eq!(the_answer().await, 42);
    assert_eq!(NO_ARGS_RUNS.get(), 1);
    let key = concat!(module_path!(), "::the_answer");
    assert_eq!(NO_ARGS_CACHE.get::<u64>(key).await.as_deref(), Some(&42));
}

/// Not serializable: it can only be a skipped argument.
struct RequestContext {
    request_id: u64,
}

static SKIP_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static SKIP_RUNS: Runs = Runs::new();

#[cached_query(cache = &*SKIP_CACHE)]
async fn greeting(
    #[cache_skip] context: &RequestContext,
    name: String,
    #[cache_skip] attempt: u32,
) -> String {
    SKIP_RUNS.bump();
    format!(
        "hello {name} (request {}, attempt {attempt})",
        context.request_id
    )
}

#[tokio::test]
async fn skipped_arguments_do_not_change_the_key() {
    let first = greeting(&RequestContext { request_id: 1 }, "ann".into(), 1).await;
    assert_eq!(first, "hello ann (request 1, attempt 1)");
    let second = greeting(&RequestContext { request_id: 2 }, "ann".into(), 2).await;
    assert_eq!(second, first, "same key: the first result is served");
    assert_eq!(SKIP_RUNS.get(), 1);
    greeting(&RequestContext { request_id: 3 }, "bob".into(), 1).await;
    assert_eq!(SKIP_RUNS.get(), 2, "`name` is still part of the key");
}

// ---------------------------------------------------------------------------------------
// `key = ".."` and `tags = [..]` templates.

static KEY_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static KEY_RUNS: Runs = Runs::new();

#[cached_query(cache = *KEY_CACHE, key = "songs:popular:limit:{limit}:{{raw}}:{kind}")]
async fn popular(limit: u32, kind: &str, #[cache_skip] _trace: u8) -> Vec<u32> {
    KEY_RUNS.bump();
    (0..limit).collect()
}

#[tokio::test]
async fn key_template_names_the_entry() {
    assert_eq!(popular(3, "all", 0).await, vec![0, 1, 2]);
    let stored = KEY_CACHE
        .get::<Vec<u32>>("songs:popular:limit:3:{raw}:all")
        .await
        .expect("stored under the templated key, `{{` and `}}` as literal braces");
    assert_eq!(*stored, vec![0, 1, 2]);
    popular(3, "all", 1).await;
    assert_eq!(KEY_RUNS.get(), 1);
    popular(4, "all", 0).await;
    assert_eq!(KEY_RUNS.get(), 2);
    assert!(
        KEY_CACHE
            .get::<Vec<u32>>("songs:popular:limit:4:{raw}:all")
            .await
            .is_some()
    );
}

static TAG_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static TAG_RUNS: Runs = Runs::new();

#[cached_query(cache = *TAG_CACHE, tags = ["user:{user_id}", "charts", "page:{user_id}:{page}"])]
async fn user_page(user_id: i64, page: u8) -> String {
    TAG_RUNS.bump();
    format!("{user_id}/{page}")
}

#[tokio::test]
async fn tags_from_templates_invalidate() {
    user_page(7, 1).await;
    user_page(7, 2).await;
    user_page(8, 1).await;
    assert_eq!(TAG_RUNS.get(), 3);

    let dropped = TAG_CACHE
        .invalidate_tags([Tag::new("user:7").unwrap()])
        .await;
    assert!(dropped <= 1, "one tag invalidated");
    user_page(8, 1).await;
    assert_eq!(TAG_RUNS.get(), 3, "user 8 does not depend on user:7");
    user_page(7, 1).await;
    user_page(7, 2).await;
    assert_eq!(TAG_RUNS.get(), 5, "both pages of user 7 recomputed");

    TAG_CACHE
        .invalidate_tags([Tag::new("page:8:1").unwrap()])
        .await;
    user_page(7, 1).await;
    user_page(8, 1).await;
    assert_eq!(TAG_RUNS.get(), 6, "only user 8's page 1 recomputed");

    TAG_CACHE
        .invalidate_tags([Tag::new("charts").unwrap()])
        .await;
    user_page(7, 1).await;
    user_page(8, 1).await;
    assert_eq!(TAG_RUNS.get(), 8, "a constant tag covers every entry");
}

// ---------------------------------------------------------------------------------------
// `Result` mode and error caching.

static RESULT_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static PLAIN_RESULT_RUNS: Runs = Runs::new();
static ERROR_TTL_RUNS: Runs = Runs::new();
static CACHE_ERRORS_RUNS: Runs = Runs::new();

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Failure(String);

#[cached_query(cache = *RESULT_CACHE)]
async fn parse_plain(text: &str) -> Result<u32, Failure> {
    PLAIN_RESULT_RUNS.bump();
    let value = text.parse::<u32>().map_err(|e| Failure(e.to_string()))?;
    Ok(value)
}

#[cached_query(cache = *RESULT_CACHE, error_ttl = "5m")]
async fn parse_caching_errors(text: &str) -> Result<u32, Failure> {
    ERROR_TTL_RUNS.bump();
    if text.is_empty() {
        // `return` leaves the body, as in the original function.
        return Err(Failure("empty".into()));
    }
    let value = text.parse::<u32>().map_err(|e| Failure(e.to_string()))?;
    Ok(value)
}

#[cached_query(cache = *RESULT_CACHE, cache_errors)]
async fn parse_with_default_error_ttl(text: &str) -> std::result::Result<u32, Failure> {
    CACHE_ERRORS_RUNS.bump();
    text.parse::<u32>().map_err(|e| Failure(e.to_string()))
}

#[tokio::test]
async fn result_mode_caches_ok_values_only() {
    assert_eq!(parse_plain("12").await, Ok(12));
    assert_eq!(parse_plain("12").await, Ok(12));
    assert_eq!(PLAIN_RESULT_RUNS.get(), 1, "Ok is cached");
    assert!(parse_plain("x").await.is_err());
    assert!(parse_plain("x").await.is_err());
    assert_eq!(PLAIN_RESULT_RUNS.get(), 3, "Err is not cached");
}

#[tokio::test]
async fn error_ttl_and_cache_errors_cache_errors() {
    assert_eq!(parse_caching_errors("").await, Err(Failure("empty".into())));
    assert_eq!(parse_caching_errors("").await, Err(Failure("empty".into())));
    assert!(parse_caching_errors("x").await.is_err());
    assert!(parse_caching_errors("x").await.is_err());
    assert_eq!(ERROR_TTL_RUNS.get(), 2, "each error computed once");
    assert_eq!(parse_caching_errors("5").await, Ok(5));
    assert_eq!(parse_caching_errors("5").await, Ok(5));
    assert_eq!(ERROR_TTL_RUNS.get(), 3);

    assert!(parse_with_default_error_ttl("x").await.is_err());
    assert!(parse_with_default_error_ttl("x").await.is_err());
    assert_eq!(parse_with_default_error_ttl("9").await, Ok(9));
    assert_eq!(parse_with_default_error_ttl("9").await, Ok(9));
    assert_eq!(CACHE_ERRORS_RUNS.get(), 2);
}

/// A type alias hides the `Result`: the value is cached as a whole, `Err` included.
type Parsed = Result<u32, Failure>;
static ALIAS_RUNS: Runs = Runs::new();

#[cached_query(cache = *RESULT_CACHE)]
async fn parse_alias(text: &str) -> Parsed {
    ALIAS_RUNS.bump();
    text.parse::<u32>().map_err(|e| Failure(e.to_string()))
}

#[tokio::test]
async fn a_result_alias_is_a_plain_value() {
    assert!(parse_alias("x").await.is_err());
    assert!(parse_alias("x").await.is_err());
    assert_eq!(ALIAS_RUNS.get(), 1);
}

// ---------------------------------------------------------------------------------------
// Methods.

struct Repo {
    cache: Cache,
    shared: Arc<Cache>,
    runs: AtomicUsize,
    prefix: String,
}

impl Repo {
    fn new(prefix: &str) -> Repo {
        Repo {
            cache: Cache::new(),
            shared: Arc::new(Cache::new()),
            runs: AtomicUsize::new(0),
            prefix: prefix.to_owned(),
        }
    }

    /// Doc comments and attributes stay on the method.
    #[cached_query(cache = self.cache, ttl = 60)]
    #[must_use = "the label is the point"]
    async fn label(&self, id: u32) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("{}-{id}", self.prefix)
    }

    #[cached_query(cache = self.shared, key = "repo:{id}")]
    async fn bump_and_label(&mut self, id: u32) -> String {
        self.prefix.push('!');
        format!("{}-{id}", self.prefix)
    }

    #[cached_query(cache = Arc::clone(&self.shared), namespace = "consumed")]
    async fn into_prefix(self, times: usize) -> String {
        self.prefix.repeat(times)
    }

    /// An associated function: no receiver.
    #[cached_query(cache = *NO_ARGS_CACHE)]
    async fn associated(x: u8) -> u8 {
        x * 2
    }
}

#[tokio::test]
async fn methods_use_the_receiver_and_leave_it_out_of_the_key() {
    let repo = Repo::new("a");
    assert_eq!(repo.label(1).await, "a-1");
    assert_eq!(repo.label(1).await, "a-1");
    assert_eq!(repo.runs.load(Ordering::SeqCst), 1);
    assert_eq!(repo.label(2).await, "a-2");
    assert_eq!(repo.runs.load(Ordering::SeqCst), 2);

    // Another receiver with its own cache computes on its own.
    let other = Repo::new("b");
    assert_eq!(other.label(1).await, "b-1");

    let mut repo = repo;
    assert_eq!(repo.bump_and_label(3).await, "a!-3");
    assert_eq!(
        repo.bump_and_label(3).await,
        "a!-3",
        "hit: the body did not run"
    );
    assert_eq!(repo.prefix, "a!");
    assert_eq!(
        repo.shared
            .get::<String>("repo:3")
            .await
            .as_deref()
            .map(String::as_str),
        Some("a!-3")
    );

    let shared = Arc::clone(&repo.shared);
    assert_eq!(repo.into_prefix(2).await, "a!a!");
    let again = Repo {
        shared,
        ..Repo::new("zzz")
    };
    assert_eq!(
        again.into_prefix(2).await,
        "a!a!",
        "the receiver is not in the key"
    );
    assert_eq!(Repo::associated(4).await, 8);
}

// ---------------------------------------------------------------------------------------
// Models: table and row dependencies.

static MODEL_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static LIST_RUNS: Runs = Runs::new();
static ROW_RUNS: Runs = Runs::new();
static SUGAR_RUNS: Runs = Runs::new();

#[cached_query(cache = *MODEL_CACHE, models = [Things, Widgets])]
async fn list_things(filter: String) -> Vec<String> {
    LIST_RUNS.bump();
    vec![filter]
}

#[cached_query(cache = *MODEL_CACHE, models = [Things, Widgets], row = id)]
async fn thing_by_id(id: i32) -> Option<String> {
    ROW_RUNS.bump();
    Some(format!("thing {id}"))
}

#[cache_model_query(Things, cache = *MODEL_CACHE, row = id, namespace = "things_by_id")]
async fn thing_by_id_sugar(id: i32) -> Option<String> {
    SUGAR_RUNS.bump();
    Some(format!("thing {id}"))
}

#[tokio::test]
async fn models_are_table_dependencies() {
    list_things("a".into()).await;
    list_things("a".into()).await;
    assert_eq!(LIST_RUNS.get(), 1);
    MODEL_CACHE.invalidate_tags([Tag::model("other")]).await;
    list_things("a".into()).await;
    assert_eq!(LIST_RUNS.get(), 1, "another table");
    MODEL_CACHE.invalidate_tags([Tag::model("things")]).await;
    list_things("a".into()).await;
    assert_eq!(LIST_RUNS.get(), 2, "first model");
    MODEL_CACHE.invalidate_tags([Tag::model("widgets")]).await;
    list_things("a".into()).await;
    assert_eq!(LIST_RUNS.get(), 3, "second model");
    MODEL_CACHE.invalidate_tags([Tag::row("things", 1)]).await;
    list_things("a".into()).await;
    assert_eq!(
        LIST_RUNS.get(),
        3,
        "a row write alone leaves table-level entries alone"
    );
}

#[tokio::test]
async fn row_dependencies_are_precise() {
    thing_by_id(7).await;
    thing_by_id(8).await;
    assert_eq!(ROW_RUNS.get(), 2);

    // A write to row 8 keeps row 7.
    MODEL_CACHE.invalidate_tags([Tag::row("things", 8)]).await;
    thing_by_id(7).await;
    assert_eq!(ROW_RUNS.get(), 2, "row 7 survives a write to row 8");
    thing_by_id(8).await;
    assert_eq!(ROW_RUNS.get(), 3, "row 8 recomputed");

    // A write to row 7 drops it.
    MODEL_CACHE.invalidate_tags([Tag::row("things", 7)]).await;
    thing_by_id(7).await;
    assert_eq!(ROW_RUNS.get(), 4);

    // A bulk write drops both.
    MODEL_CACHE.invalidate_tags([Tag::bulk("things")]).await;
    thing_by_id(7).await;
    thing_by_id(8).await;
    assert_eq!(ROW_RUNS.get(), 6);

    // The second model stays table-level: any write to it drops both.
    MODEL_CACHE.invalidate_tags([Tag::row("widgets", 1)]).await;
    thing_by_id(7).await;
    assert_eq!(ROW_RUNS.get(), 6, "no row dependency on the second model");
    MODEL_CACHE.invalidate_tags([Tag::model("widgets")]).await;
    thing_by_id(7).await;
    thing_by_id(8).await;
    assert_eq!(ROW_RUNS.get(), 8);
}

#[tokio::test]
async fn cache_model_query_is_models_with_one_model() {
    thing_by_id_sugar(7).await;
    thing_by_id_sugar(8).await;
    MODEL_CACHE.invalidate_tags([Tag::row("things", 8)]).await;
    thing_by_id_sugar(7).await;
    assert_eq!(SUGAR_RUNS.get(), 2, "row 7 survives a write to row 8");
    MODEL_CACHE.invalidate_tags([Tag::bulk("things")]).await;
    thing_by_id_sugar(7).await;
    assert_eq!(SUGAR_RUNS.get(), 3);
    assert!(MODEL_CACHE.stats().namespaces.contains_key("things_by_id"));
}

// ---------------------------------------------------------------------------------------
// TTLs, count queries, namespaces.

/// The time of `TTL_CACHE`, which its test moves.
static TTL_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static TTL_CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .count_ttl(Duration::from_secs(1))
        .clock(TTL_CLOCK.clone())
        .build()
        .expect("valid configuration")
});

#[cached_query(cache = *TTL_CACHE, ttl = 1)]
async fn one_second() -> u8 {
    1
}

#[cache_model_query(Things, cache = *TTL_CACHE)]
async fn default_ttl() -> u8 {
    2
}

#[cache_count_query(Things, cache = *TTL_CACHE)]
async fn count_things() -> u64 {
    3
}

#[cache_count_query(Things, cache = *TTL_CACHE, ttl = "1h")]
async fn count_things_for_an_hour() -> u64 {
    4
}

#[tokio::test]
async fn ttl_and_count_query_set_the_lifetime() {
    let path = |name: &str| format!("{}::{name}", module_path!());
    one_second().await;
    default_ttl().await;
    count_things().await;
    count_things_for_an_hour().await;
    assert!(TTL_CACHE.get::<u8>(&path("one_second")).await.is_some());
    assert!(TTL_CACHE.get::<u64>(&path("count_things")).await.is_some());

    TTL_CLOCK.advance(Duration::from_millis(1_100));
    assert!(
        TTL_CACHE.get::<u8>(&path("one_second")).await.is_none(),
        "`ttl = 1` entry still there after 1.1 s"
    );
    assert!(
        TTL_CACHE.get::<u64>(&path("count_things")).await.is_none(),
        "count query (1 s count TTL) still there after 1.1 s"
    );
    assert!(
        TTL_CACHE.get::<u8>(&path("default_ttl")).await.is_some(),
        "a model query gets the default TTL (1 h), not the count TTL"
    );
    assert!(
        TTL_CACHE
            .get::<u64>(&path("count_things_for_an_hour"))
            .await
            .is_some(),
        "an explicit ttl wins over the count TTL"
    );
}

static NS_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static NS_RUNS: Runs = Runs::new();

#[cached_query(cache = *NS_CACHE)]
async fn default_namespace(x: u8) -> u8 {
    NS_RUNS.bump();
    x
}

#[cached_query(cache = *NS_CACHE, namespace = "custom:ns")]
async fn custom_namespace(x: u8) -> u8 {
    NS_RUNS.bump();
    x
}

#[tokio::test]
async fn namespaces_default_to_the_function_name() {
    default_namespace(1).await;
    custom_namespace(1).await;
    let stats = NS_CACHE.stats();
    assert!(
        stats.namespaces.contains_key("default_namespace"),
        "{:?}",
        stats.namespaces
    );
    assert!(
        stats.namespaces.contains_key("custom:ns"),
        "{:?}",
        stats.namespaces
    );

    NS_CACHE.invalidate_namespace("default_namespace").await;
    default_namespace(1).await;
    custom_namespace(1).await;
    assert_eq!(
        NS_RUNS.get(),
        3,
        "only the default namespace's entry was dropped"
    );
    NS_CACHE.invalidate_namespace("custom:ns").await;
    custom_namespace(1).await;
    assert_eq!(NS_RUNS.get(), 4);
}

// ---------------------------------------------------------------------------------------
// Generated futures, generics, connections.

fn assert_send<T: Send>(value: T) -> T {
    value
}

static GENERIC_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);

#[cached_query(cache = *GENERIC_CACHE)]
async fn generic<T: Serialize + Send + Sync + std::fmt::Display>(value: T) -> String {
    value.to_string()
}

#[tokio::test]
async fn generated_futures_are_send_and_generics_work() {
    assert_eq!(assert_send(generic(5_u8)).await, "5");
    let repo = Repo::new("s");
    assert_eq!(assert_send(repo.label(1)).await, "s-1");
}

static CONN_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static CONN_RUNS: Runs = Runs::new();

/// `DatabaseConnection` is not serializable: this compiles only because the connection
/// is left out of the key.
#[cached_query(cache = *CONN_CACHE)]
async fn with_connection(db: &DatabaseConnection, id: i32) -> i32 {
    let _ = db;
    CONN_RUNS.bump();
    id
}

#[tokio::test]
async fn connections_are_not_part_of_the_key() {
    let a = DatabaseConnection::default();
    let b = DatabaseConnection::default();
    with_connection(&a, 1).await;
    with_connection(&b, 1).await;
    assert_eq!(CONN_RUNS.get(), 1);
}

static DB_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static DB_RUNS: Runs = Runs::new();

/// A generic connection (`C: ConnectionTrait`): left out of the key, shown to the cache.
#[cache_model_query(song::Entity, cache = *DB_CACHE, row = id)]
async fn song_title<C: sea_orm::ConnectionTrait>(db: &C, id: i32) -> Result<Option<String>, DbErr> {
    DB_RUNS.bump();
    Ok(song::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(|song| song.title))
}

async fn rename<C: sea_orm::ConnectionTrait>(db: &C, song: &song::Model, title: &str) {
    let mut active: song::ActiveModel = song.clone().into();
    active.title = Set(title.to_owned());
    active.update(db).await.expect("update song");
}

/// With the `SeaORM` integration: a write through the `CachedConnection` invalidates the
/// entry, and a read inside a transaction that wrote the table bypasses the cache (which
/// needs the connection argument to reach `Call::connection`).
#[tokio::test]
async fn orm_writes_and_transactions() {
    let t = TestDb::with_cache(DB_CACHE.clone()).await;
    let author = t.user("ann").await;
    let seven = t.song(&author, "seven").await;

    assert_eq!(
        song_title(&t.db, seven.id).await,
        Ok(Some("seven".to_owned()))
    );
    assert_eq!(
        song_title(&t.db, seven.id).await,
        Ok(Some("seven".to_owned()))
    );
    assert_eq!(DB_RUNS.get(), 1, "{:?}", DB_CACHE.stats());

    rename(&t.db, &seven, "seven, renamed").await;
    assert_eq!(
        song_title(&t.db, seven.id).await,
        Ok(Some("seven, renamed".to_owned())),
        "the write invalidated the entry"
    );
    assert_eq!(DB_RUNS.get(), 2);

    let tx = t.db.begin().await.expect("begin");
    rename(&tx, &seven, "inside the transaction").await;
    assert_eq!(
        song_title(&tx, seven.id).await,
        Ok(Some("inside the transaction".to_owned())),
        "a read in a transaction that wrote songs sees its own write"
    );
    tx.rollback().await.expect("rollback");
    assert_eq!(
        song_title(&t.db, seven.id).await,
        Ok(Some("seven, renamed".to_owned())),
        "nothing computed inside the transaction was stored"
    );
}

// Two types in one module with a cached method of the same name and arguments.
struct SongRepo {
    cache: Cache,
}
struct UserRepo {
    cache: Cache,
}

impl SongRepo {
    #[cached_query(cache = self.cache)]
    async fn name_of(&self, id: u32) -> String {
        format!("song {id}")
    }
}

impl UserRepo {
    #[cached_query(cache = self.cache)]
    async fn name_of(&self, id: u32) -> String {
        format!("user {id}")
    }
}

#[tokio::test]
async fn methods_of_different_types_do_not_share_entries() {
    let cache = Cache::new();
    let songs = SongRepo {
        cache: cache.clone(),
    };
    let users = UserRepo {
        cache: cache.clone(),
    };
    assert_eq!(songs.name_of(1).await, "song 1");
    assert_eq!(users.name_of(1).await, "user 1", "not the song's entry");
    assert_eq!(songs.name_of(1).await, "song 1");
    let stats = cache.stats();
    assert_eq!((stats.sets, stats.hits), (2, 1));
}

// ---------------------------------------------------------------------------------------
// Freshness options at run time: swr refreshes in the background (the `&CachedConnection`
// argument is cloned into the computation), never past an invalidation; hard timeouts turn
// into the function's own error.

/// The time of `FRESH_CACHE`, which its swr test moves.
static FRESH_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static FRESH_CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .clock(FRESH_CLOCK.clone())
        .build()
        .expect("valid configuration")
});
static FRESH_RUNS: Runs = Runs::new();
/// Closed while the swr test proves the stale answer does not wait for the refresh: the
/// refresh waits here until the test opens it (after the stale answer came back).
static FRESH_GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);
static FRESH_GATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Debug, PartialEq)]
enum AppError {
    Db(String),
    TimedOut(String),
}

impl From<DbErr> for AppError {
    fn from(error: DbErr) -> Self {
        AppError::Db(error.to_string())
    }
}

impl From<querycache::TimedOut> for AppError {
    fn from(timed_out: querycache::TimedOut) -> Self {
        AppError::TimedOut(timed_out.to_string())
    }
}

#[cache_model_query(song::Entity, cache = *FRESH_CACHE, ttl = 1, swr = 60)]
async fn song_count(db: &querycache::orm::sea_orm::CachedConnection) -> Result<u64, AppError> {
    use sea_orm::PaginatorTrait;
    FRESH_RUNS.bump();
    if FRESH_GATED.load(Ordering::SeqCst) {
        drop(FRESH_GATE.acquire().await);
    }
    Ok(song::Entity::find().count(db).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swr_on_a_cached_query_refreshes_in_the_background_and_never_past_a_write() {
    let t = TestDb::with_cache(FRESH_CACHE.clone()).await;
    let author = t.user("ann").await;
    t.song(&author, "one").await;
    assert_eq!(song_count(&t.db).await, Ok(1));
    // Another process adds a song: invisible to the cache, so the entry just ages.
    sea_orm::ConnectionTrait::execute_raw(
        &t.raw,
        t.statement(
            "INSERT INTO songs (title, artist, author_id) VALUES (?, 'x', ?)",
            ["two".into(), author.id.into()],
        ),
    )
    .await
    .expect("insert behind the cache's back");
    FRESH_CLOCK.advance(Duration::from_millis(1100));

    // The refresh cannot finish before the gate opens, and the gate opens only once the
    // stale count came back: a caller that waited for the refresh would hang to the deadline.
    FRESH_GATED.store(true, Ordering::SeqCst);
    let stale = tokio::time::timeout(Duration::from_secs(30), song_count(&t.db)).await;
    assert_eq!(
        stale,
        Ok(Ok(1)),
        "the stale count, without waiting for the refresh"
    );
    FRESH_GATED.store(false, Ordering::SeqCst);
    FRESH_GATE.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    crate::support::until(Duration::from_secs(10), "the refresh lands", async || {
        song_count(&t.db).await == Ok(2)
    })
    .await;
    assert_eq!(
        FRESH_RUNS.get(),
        2,
        "one computation, one background refresh"
    );
    assert_eq!(FRESH_CACHE.stats().background_refreshes, 1);

    // A write through the ORM: the entry is dead, not stale, even within the window.
    FRESH_CLOCK.advance(Duration::from_millis(1100));
    t.song(&author, "three").await;
    assert_eq!(song_count(&t.db).await, Ok(3), "computed, not served stale");
}

#[cached_query(cache = *FRESH_CACHE, namespace = "slow", hard_timeout = "100ms")]
async fn slow_answer(delay_ms: u64) -> Result<u64, AppError> {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    Ok(delay_ms)
}

#[tokio::test]
async fn a_hard_timeout_on_a_cached_query_is_the_functions_own_error() {
    let started = Instant::now();
    match slow_answer(2_000).await {
        Err(AppError::TimedOut(message)) => assert!(
            message.starts_with("computing `")
                && message.ends_with("exceeded its hard timeout of 100ms; gave up"),
            "{message}"
        ),
        other => panic!("expected the hard timeout, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "gave up early"
    );
    assert_eq!(slow_answer(1).await, Ok(1));
}

// ---------------------------------------------------------------------------------------
// `<fn>_invalidate`: removes exactly one call's entry, found as the call finds it.

static COMPANION_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static COMPANION_RUNS: Runs = Runs::new();

/// Key arguments and a skipped one: the companion takes `(id, name)`.
#[cached_query(cache = *COMPANION_CACHE, namespace = "companions")]
pub(crate) async fn labelled(id: u32, #[cache_skip] _trace: u8, name: &str) -> String {
    COMPANION_RUNS.bump();
    format!("{id}:{name}")
}

#[tokio::test]
async fn invalidate_companion_removes_one_entry() {
    assert_eq!(labelled(1, 0, "a").await, "1:a");
    assert_eq!(labelled(2, 0, "a").await, "2:a");
    assert_eq!(labelled(1, 0, "b").await, "1:b");
    assert_eq!(COMPANION_RUNS.get(), 3);

    assert!(labelled_invalidate(1, "a").await, "the entry was there");
    assert!(!labelled_invalidate(1, "a").await, "and is gone");
    assert!(!labelled_invalidate(9, "a").await, "never computed");

    // The others are still hits; the invalidated one is computed again.
    labelled(2, 7, "a").await;
    labelled(1, 7, "b").await;
    assert_eq!(COMPANION_RUNS.get(), 3);
    assert_eq!(labelled(1, 7, "a").await, "1:a");
    assert_eq!(COMPANION_RUNS.get(), 4);
    assert_eq!(COMPANION_CACHE.stats().keys_count, 3);
}

/// `key = ".."` names the entry: the companion takes the template's arguments (a skipped
/// one included), the key is the template's, and the rest of the signature goes.
static CHART_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);

#[cached_query(cache = *CHART_CACHE, key = "chart:{region}:top{top}")]
async fn chart(region: &str, unused_in_key: u8, #[cache_skip] top: u32) -> Vec<u32> {
    (0..top + u32::from(unused_in_key)).collect()
}

#[tokio::test]
async fn invalidate_companion_follows_a_key_template() {
    chart("eu", 0, 3).await;
    assert!(CHART_CACHE.get::<Vec<u32>>("chart:eu:top3").await.is_some());
    assert!(!chart_invalidate("eu", 4).await, "another key");
    assert!(chart_invalidate("eu", 3).await);
    assert!(CHART_CACHE.get::<Vec<u32>>("chart:eu:top3").await.is_none());
}

static SYNC_COMPANION_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static SYNC_COMPANION_RUNS: Runs = Runs::new();

/// A plain `fn` gets a plain companion.
#[cached_query(cache = *SYNC_COMPANION_CACHE)]
fn square(n: u64) -> u64 {
    SYNC_COMPANION_RUNS.bump();
    n * n
}

#[test]
fn invalidate_companion_of_a_plain_fn() {
    assert_eq!(square(3), 9);
    assert_eq!(square(3), 9);
    assert_eq!(SYNC_COMPANION_RUNS.get(), 1);
    assert!(square_invalidate(3));
    assert!(!square_invalidate(3));
    assert_eq!(square(3), 9);
    assert_eq!(SYNC_COMPANION_RUNS.get(), 2);
}

/// No `cache = ..`: the call reads through its connection's cache, and so does the
/// companion, which takes the connection too.
#[cache_model_query(song::Entity, row = id)]
async fn song_title_via_connection(
    db: &querycache::orm::sea_orm::CachedConnection,
    id: i32,
) -> Result<Option<String>, DbErr> {
    Ok(song::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(|song| song.title))
}

#[tokio::test]
async fn invalidate_companion_uses_the_connections_cache() {
    let t = TestDb::with_cache(Cache::new()).await;
    let author = t.user("ann").await;
    let seven = t.song(&author, "seven").await;
    let eight = t.song(&author, "eight").await;
    song_title_via_connection(&t.db, seven.id)
        .await
        .expect("query");
    song_title_via_connection(&t.db, eight.id)
        .await
        .expect("query");
    assert_eq!(t.cache.stats().keys_count, 2);

    assert!(song_title_via_connection_invalidate(&t.db, seven.id).await);
    assert_eq!(t.cache.stats().keys_count, 1, "only song 7's entry went");
    let hits = t.cache.stats().hits;
    song_title_via_connection(&t.db, eight.id)
        .await
        .expect("query");
    assert_eq!(t.cache.stats().hits, hits + 1, "song 8 is still a hit");
}

/// `invalidate = false`: no companion, so a function of that name may exist.
#[cached_query(cache = *CHART_CACHE, invalidate = false)]
async fn opted_out(n: u8) -> u8 {
    n
}

fn opted_out_invalidate() -> &'static str {
    "mine"
}

#[tokio::test]
async fn invalidate_false_generates_no_companion() {
    assert_eq!(opted_out(1).await, 1);
    assert_eq!(opted_out_invalidate(), "mine");
}
