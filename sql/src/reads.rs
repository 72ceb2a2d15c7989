//! What does a statement read? [`reads`]: the tables (and, where pinned, the rows) a query's
//! result depends on, for caches that learn a computation's dependencies from the statements
//! it sends.
//!
//! The same lexings, statement split and token helpers as [`crate::classify`], the same row
//! rule (a top-level `WHERE` conjunct `pk = X` or `pk IN (...)`, ids rendered as the write side
//! renders them), and the same rule throughout: **fail safe**. A table is never left out; a
//! read that cannot be narrowed to ids is [`Rows::Unknown`]; a statement this crate cannot
//! read, or one calling a function whose effect is not known, is [`ReadEffect::Unknown`].
//!
//! Tables are found in `FROM` lists (comma joins, every `JOIN`, parenthesised joins,
//! `LATERAL`, `ONLY`), in subqueries at any depth (derived tables, scalar subqueries, `IN`,
//! `EXISTS`, `ANY`...), in every term of `UNION` / `INTERSECT` / `EXCEPT`, in `TABLE t`, and
//! in the bodies of common table expressions — whose names are not tables where they are in
//! scope. A name is in scope in the main statement and in the bodies of the `WITH` entries
//! after it; with `RECURSIVE`, in its own body too. Anywhere else the same name is read as a
//! table (MySQL and PostgreSQL read a non-recursive self-reference as the table): at worst a
//! dependency on a table that does not change.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use super::dml::{NOT_ALIAS, Target};
use super::lexer::Kind;
use super::parser::Parser;
use super::utility::STATEMENT_START;
use super::{Acc, Bound, Env, MAX_DEPTH, Rows, TableName, each_statement};

/// What executing a SQL text reads (see [`reads`]).
///
/// ```
/// use querycache_sql::{ReadEffect, Rows, TableName, TableRead, UnknownRead, reads};
///
/// let read = |sql: &str| reads(sql, &|_| None, &|_| vec!["id".into()]);
/// let songs = TableName { schema: None, name: "songs".into() };
/// assert_eq!(
///     read("SELECT * FROM songs WHERE id IN (1, 2)"),
///     ReadEffect::Reads(vec![TableRead { table: songs, rows: Rows::Ids(vec!["1".into(), "2".into()]) }])
/// );
/// assert_eq!(read("SELECT 1"), ReadEffect::Reads(vec![]));
/// assert_eq!(
///     read("SELECT refresh_totals()"),
///     ReadEffect::Unknown(UnknownRead::Function("refresh_totals".into()))
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEffect {
    /// Reads exactly these tables (deduplicated, in order of appearance; a table read twice
    /// merges as writes do: id lists are concatenated and deduplicated, and
    /// [`Rows::Unknown`] wins over ids). Empty for a text that reads no table (`SELECT 1`,
    /// `BEGIN`, `SET x = 1`, an empty text). Never [`Rows::Inserted`].
    Reads(Vec<TableRead>),
    /// What the text reads is not known: the caller must fail safe (depend on everything, or
    /// not cache).
    Unknown(UnknownRead),
}

/// One table a statement reads, and which of its rows.
///
/// ```
/// use querycache_sql::{ReadEffect, Rows, TableName, TableRead, reads};
///
/// let effect = reads(r#"SELECT * FROM "app"."Songs" s"#, &|_| None, &|_| vec!["id".into()]);
/// let expected = TableRead {
///     table: TableName { schema: Some("app".into()), name: "Songs".into() },
///     rows: Rows::Unknown,
/// };
/// assert_eq!(effect, ReadEffect::Reads(vec![expected]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRead {
    /// The table read, named as [`TableName`] names a written one.
    pub table: TableName,
    /// The rows read: [`Rows::Ids`] when the statement's top-level `WHERE` pins the primary
    /// key, else [`Rows::Unknown`] (the whole table).
    pub rows: Rows,
}

/// Why a text's reads are not known ([`ReadEffect::Unknown`]); its [`Display`](fmt::Display)
/// is a sentence for a log.
///
/// ```
/// use querycache_sql::{ReadEffect, UnknownRead, reads};
///
/// let why = |sql: &str| match reads(sql, &|_| None, &|_| vec!["id".into()]) {
///     ReadEffect::Unknown(why) => why,
///     other => panic!("{other:?}"),
/// };
/// assert_eq!(why("SELECT nextval('songs_id_seq')"), UnknownRead::Function("nextval".into()));
/// assert_eq!(why("CALL refresh()"), UnknownRead::Statement("CALL".into()));
/// assert_eq!(why("SELECT 'unterminated"), UnknownRead::Unparsable);
/// assert_eq!(why("SELECT app.f(1)").to_string(), "calls `app.f`, whose effect is not known");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownRead {
    /// The text cannot be read: an unterminated literal or comment, unbalanced parentheses,
    /// nesting deeper than the classifier's limit, or a shape this crate does not parse.
    Unparsable,
    /// The text calls a function (or a table function) not known to be free of side effects
    /// and of table reads: its name, lower case when unquoted, `schema.name` when qualified.
    Function(String),
    /// A statement whose reads are not known (`CALL`, `EXECUTE`, `SHOW`, `PRAGMA`, DDL...):
    /// its leading keyword, upper case.
    Statement(String),
}

impl fmt::Display for UnknownRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownRead::Unparsable => f.write_str("the statement cannot be read"),
            UnknownRead::Function(name) => {
                write!(f, "calls `{name}`, whose effect is not known")
            }
            UnknownRead::Statement(verb) => {
                write!(f, "a {verb} statement, whose reads are not known")
            }
        }
    }
}

/// The tables — and, where pinned, the rows — that executing `sql` reads. The arguments are
/// [`classify`](crate::classify)'s: `param(i)` is the bound value of the i-th placeholder,
/// `primary_key(table)` a table's primary-key column.
///
/// * Queries (`SELECT`, `VALUES`, `TABLE`, `WITH`, parenthesised set operations) read the
///   tables they name, at any depth (see the module documentation). A table read by a
///   `SELECT` whose top-level `WHERE` has a conjunct `pk = X`, `pk IN (X, ...)` (or the
///   one-column row value `(pk) IN ((X), ...)`) or `pk = ANY($n)` bound to an array of ids
///   is read at those ids only ([`Rows::Ids`], under the write side's rules, so that a read's and a
///   write's row render identically); with several tables in `FROM` the key must be
///   qualified (`t.id`, `alias.id`).
/// * Writes (`INSERT`, `UPDATE`, `DELETE`, `MERGE`, `REPLACE`) read what their queries,
///   `FROM` / `USING` lists and subqueries read, **and their target tables**, whole
///   ([`Rows::Unknown`]): their outcome (`RETURNING`, a row count, a conflict) depends on the
///   target's rows.
/// * `BEGIN` / `START TRANSACTION` / `COMMIT` / `ROLLBACK` / `SAVEPOINT` / `RELEASE` read
///   nothing; `SET` / `RESET` read what their expressions read (`SET @n = (SELECT ...)`);
///   `EXPLAIN` reads what its statement reads; `DESCRIBE t` reads `t`. Any other statement
///   (`CALL`, `EXECUTE`, `SHOW`, `PRAGMA`, DDL...) is [`UnknownRead::Statement`].
/// * Every function called must be a built-in known to be free of side effects and of table
///   reads (common to PostgreSQL, MySQL and SQLite: aggregates, window functions, string,
///   number, date and JSON functions, casts; `pg_catalog.` qualified or not); table
///   functions in `FROM` likewise (`generate_series`, `unnest`, `json_each`,
///   `jsonb_array_elements`...; SQLite's `pragma_table_info('t')` reads `t`). Any other
///   function is [`UnknownRead::Function`]: user functions, and built-ins with side
///   effects (`nextval`, `setval`, `pg_advisory_lock`, `set_config`, `pg_sleep`,
///   `last_insert_id`...). Functions that read no table but are not deterministic (`now()`,
///   `random()`, `gen_random_uuid()`) are allowed: a cached result keeps the value it was
///   computed with, as it keeps the time it was computed at.
///
/// Not seen from the text: a view or a table with triggers or row-level security reads other
/// tables than the one named; a name that is a view is reported as the table it spells
/// (a caller that knows the view's definition reads it with [`view_reads`]).
///
/// ```
/// use querycache_sql::{Bound, ReadEffect, Rows, TableName, TableRead, reads};
///
/// let param = |i: usize| (i == 0).then_some(Bound::Integer(7));
/// let primary_key = |_: &TableName| vec!["id".to_owned()];
/// let sql = r#"SELECT "songs".*, "users"."name" FROM "songs" INNER JOIN "users"
///     ON "songs"."user_id" = "users"."id" WHERE "songs"."id" = $1"#;
/// let read = |table: &str, rows| TableRead {
///     table: TableName { schema: None, name: table.into() },
///     rows,
/// };
/// assert_eq!(
///     reads(sql, &param, &primary_key),
///     ReadEffect::Reads(vec![read("songs", Rows::Ids(vec!["7".into()])), read("users", Rows::Unknown)])
/// );
/// ```
pub fn reads(
    sql: &str,
    param: &dyn Fn(usize) -> Option<Bound>,
    primary_key: &dyn Fn(&TableName) -> Vec<String>,
) -> ReadEffect {
    let env = Env {
        param,
        pk: primary_key,
    };
    let mut acc = Acc::default();
    let top = HashMap::new();
    each_statement(sql, &env, &mut acc, &|parser, s, e, acc| {
        parser.read_statement(s, e, 0, &Scope::root(&top), acc);
    });
    acc.finish_reads()
}

/// What a view reads, from its definition: a `CREATE [OR REPLACE] [TEMP] VIEW name [(columns)]
/// AS query` text (SQLite's `sqlite_master.sql`) or the bare query (MySQL's
/// `information_schema.VIEWS.VIEW_DEFINITION`). The tables are read whole ([`Rows::Unknown`]:
/// a view's own `WHERE` pins rows of its base tables, not of the view); a definition whose
/// query cannot be read (a function whose effect is not known...) is
/// [`ReadEffect::Unknown`], as [`reads`] says of a query.
///
/// ```
/// use querycache_sql::{ReadEffect, UnknownRead, view_reads};
///
/// let tables = |sql: &str| match view_reads(sql) {
///     ReadEffect::Reads(reads) => reads.into_iter().map(|r| r.table.name).collect::<Vec<_>>(),
///     ReadEffect::Unknown(why) => panic!("{why}"),
/// };
/// assert_eq!(
///     tables("CREATE VIEW \"as\" (a, b) AS SELECT s.id, u.name FROM songs s JOIN users u ON u.id = s.user_id WHERE s.id = 1"),
///     ["songs", "users"]
/// );
/// assert_eq!(tables("select `test`.`songs`.`id` AS `id` from `test`.`songs`"), ["songs"]);
/// assert_eq!(
///     view_reads("CREATE VIEW v AS SELECT my_function(id) FROM songs"),
///     ReadEffect::Unknown(UnknownRead::Function("my_function".into()))
/// );
/// ```
pub fn view_reads(definition: &str) -> ReadEffect {
    let no_key = |_: &TableName| Vec::new();
    let env = Env {
        param: &|_| None,
        pk: &no_key,
    };
    let mut acc = Acc::default();
    let top = HashMap::new();
    each_statement(definition, &env, &mut acc, &|parser, s, e, acc| {
        let s = if parser.kw(s, e, "CREATE") {
            match parser.find_kw(s, e, &["VIEW"]) {
                Some(view) => match parser.find_kw(view + 1, e, &["AS"]) {
                    Some(as_) => as_ + 1,
                    None => {
                        acc.fail();
                        return;
                    }
                },
                None => {
                    acc.fail_because(UnknownRead::Statement("CREATE".into()));
                    return;
                }
            }
        } else {
            s
        };
        parser.read_statement(s, e, 0, &Scope::root(&top), acc);
    });
    match acc.finish_reads() {
        ReadEffect::Reads(reads) => ReadEffect::Reads(
            reads
                .into_iter()
                .map(|read| TableRead {
                    rows: Rows::Unknown,
                    ..read
                })
                .collect(),
        ),
        unknown => unknown,
    }
}

/// Common table expression names in scope: those of one `WITH` clause whose index is below
/// `visible`, then the enclosing clauses'.
pub(super) struct Scope<'s> {
    names: &'s HashMap<String, usize>,
    visible: usize,
    parent: Option<&'s Scope<'s>>,
}

impl<'s> Scope<'s> {
    fn root(names: &'s HashMap<String, usize>) -> Self {
        Scope {
            names,
            visible: 0,
            parent: None,
        }
    }

    /// Whether an unqualified `name` is a common table expression here.
    fn has(&self, name: &str) -> bool {
        let mut scope = Some(self);
        while let Some(s) = scope {
            if s.names.get(name).is_some_and(|&at| at < s.visible) {
                return true;
            }
            scope = s.parent;
        }
        false
    }
}

/// A table in a `FROM` list, with the alias it may be referred to by.
type Source = (TableName, Option<String>);

/// Words that end a `FROM` list's item: the next item follows.
const JOINS: &[&str] = &["JOIN", "STRAIGHT_JOIN", "APPLY"];

/// Words that end a `SELECT`'s `FROM` list (set operations are split off before).
#[rustfmt::skip]
const AFTER_FROM: &[&str] = &[
    "WHERE", "GROUP", "HAVING", "WINDOW", "QUALIFY", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR",
    "LOCK", "INTO", "PROCEDURE", "RETURNING",
];

/// Words that end a `SELECT`'s `WHERE` condition.
#[rustfmt::skip]
const AFTER_WHERE: &[&str] = &[
    "GROUP", "HAVING", "WINDOW", "QUALIFY", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR", "LOCK",
    "INTO", "PROCEDURE", "RETURNING",
];

/// Keywords that open a query.
const QUERY_START: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE"];

/// Keywords (upper case) that may stand before a parenthesis without calling a function.
#[rustfmt::skip]
const NOT_CALLS: &[&str] = &[
    "AGAINST", "ALL", "AND", "ANY", "ARRAY", "AS", "ASC", "BERNOULLI", "BETWEEN", "BY", "CASE",
    "COLUMNS", "CONFLICT", "CONSTRAINT", "CUBE", "DESC", "DISTINCT", "DO", "ELSE", "END",
    "ESCAPE", "EXCEPT", "EXISTS", "FILTER", "FIRST", "FROM", "GLOB", "GROUP", "HAVING",
    "ILIKE", "IN", "INDEX", "INSERT", "INTERSECT", "INTO", "IS", "JOIN", "KEY", "LATERAL",
    "LIKE", "LIMIT", "MATCH", "MATCHED", "MINUS", "NEXT", "NOT", "OF", "OFFSET", "ON", "OR",
    "ORDINALITY", "OVER", "PARTITION", "PATH", "RECURSIVE", "REGEXP", "REPEATABLE",
    "RETURNING", "RLIKE", "ROLLUP", "ROW", "SELECT", "SET", "SETS", "SIMILAR", "SOME",
    "SYSTEM", "THEN", "TO", "UNION", "USING", "VALUES", "WHEN", "WHERE", "WITH", "WITHIN",
    "XOR", "ZONE", "FOR", "PLACING", "LEADING", "TRAILING", "BOTH", "UNIQUE", "PRECEDING",
    "FOLLOWING",
];

/// Built-in functions free of side effects and of table reads, lower case: scalar,
/// aggregate and window functions of PostgreSQL, MySQL and SQLite, and type names written
/// with a modifier (`varchar(20)`, `numeric(10, 2)`), which look like calls.
#[rustfmt::skip]
const FUNCTIONS: &[&str] = &[
    // aggregates
    "count", "sum", "avg", "min", "max", "total", "string_agg", "group_concat", "array_agg",
    "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "json_group_array",
    "json_group_object", "json_arrayagg", "json_objectagg", "bool_and", "bool_or", "every",
    "bit_and", "bit_or", "bit_xor", "stddev", "stddev_pop", "stddev_samp", "std", "variance",
    "var_pop", "var_samp", "percentile_cont", "percentile_disc", "mode", "any_value",
    "grouping", "corr", "covar_pop", "covar_samp", "regr_slope", "regr_intercept",
    "regr_count", "median",
    // window functions
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
    // conditionals and comparisons
    "coalesce", "nullif", "ifnull", "if", "iif", "greatest", "least", "isnull", "nvl",
    "likely", "unlikely", "likelihood", "num_nulls", "num_nonnulls",
    // casts and types
    "cast", "try_cast", "convert", "typeof", "pg_typeof", "numeric", "decimal", "dec",
    "varchar", "char", "character", "varying", "nchar", "nvarchar", "varbinary", "binary",
    "bit", "varbit", "float", "real", "double", "int", "integer", "smallint", "bigint",
    "tinyint", "mediumint", "time", "timetz", "timestamp", "timestamptz", "datetime",
    "interval", "date", "signed", "unsigned", "bool", "boolean", "text", "blob", "uuid",
    // strings
    "lower", "upper", "lcase", "ucase", "length", "len", "char_length", "character_length",
    "octet_length", "bit_length", "substr", "substring", "mid", "trim", "ltrim", "rtrim",
    "btrim", "replace", "concat", "concat_ws", "left", "right", "lpad", "rpad", "position",
    "strpos", "instr", "locate", "reverse", "repeat", "format", "printf", "initcap",
    "split_part", "translate", "ascii", "chr", "unicode", "md5", "sha1", "sha2", "sha224",
    "sha256", "sha384", "sha512", "crc32", "hex", "unhex", "quote", "quote_ident",
    "quote_literal", "quote_nullable", "regexp_replace", "regexp_matches", "regexp_match",
    "regexp_substr", "regexp_like", "regexp_instr", "regexp_count", "regexp_split_to_array",
    "overlay", "insert", "space", "soundex", "to_hex", "encode", "decode", "starts_with",
    "like", "glob", "field", "find_in_set", "elt", "string_to_array", "array_to_string",
    "to_char", "to_number", "to_date", "to_timestamp", "normalize", "bin", "oct", "conv",
    "char_length", "strcmp", "base64", "to_base64", "from_base64", "zeroblob", "unistr",
    "format_type", "weight_string", "collation", "charset", "string", "text_length",
    // numbers
    "abs", "round", "ceil", "ceiling", "floor", "trunc", "truncate", "mod", "power", "pow",
    "sqrt", "cbrt", "exp", "ln", "log", "log10", "log2", "sign", "pi", "degrees", "radians",
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "cot", "sinh", "cosh", "tanh",
    "div", "width_bucket", "gcd", "lcm", "factorial", "scale", "random", "rand", "randomblob",
    "to_float", "format_number",
    // dates and times
    "now", "current_timestamp", "current_date", "current_time", "localtime",
    "localtimestamp", "julianday", "strftime", "unixepoch", "date_trunc", "date_part",
    "date_bin", "extract", "age", "make_date", "make_time", "make_timestamp",
    "make_timestamptz", "make_interval", "date_add", "date_sub", "datediff", "timediff",
    "timestampdiff", "timestampadd", "date_format", "time_format", "str_to_date",
    "unix_timestamp", "from_unixtime", "year", "month", "day", "dayofmonth", "dayofweek",
    "dayofyear", "dayname", "monthname", "hour", "minute", "second", "microsecond", "week",
    "weekday", "weekofyear", "yearweek", "quarter", "last_day", "curdate", "curtime",
    "sysdate", "utc_timestamp", "utc_date", "utc_time", "statement_timestamp",
    "transaction_timestamp", "clock_timestamp", "timeofday", "isfinite", "justify_days",
    "justify_hours", "justify_interval", "convert_tz", "timezone", "adddate", "subdate",
    "addtime", "subtime", "from_days", "to_days", "to_seconds", "sec_to_time",
    "time_to_sec", "makedate", "maketime", "period_add", "period_diff", "get_format",
    "overlaps",
    // JSON
    "json", "jsonb", "json_build_object", "jsonb_build_object", "json_build_array",
    "jsonb_build_array", "json_object", "jsonb_object", "json_array", "to_json", "to_jsonb",
    "row_to_json", "array_to_json", "json_extract", "jsonb_extract", "json_extract_path",
    "json_extract_path_text", "jsonb_extract_path", "jsonb_extract_path_text",
    "json_array_length", "jsonb_array_length", "json_typeof", "jsonb_typeof", "jsonb_set",
    "jsonb_set_lax", "jsonb_insert", "jsonb_strip_nulls", "json_strip_nulls", "jsonb_pretty",
    "json_valid", "json_type", "json_quote", "json_insert", "json_replace", "json_set",
    "json_remove", "json_patch", "json_unquote", "json_contains", "json_contains_path",
    "json_keys", "json_length", "json_depth", "json_merge", "json_merge_patch",
    "json_merge_preserve", "json_search", "json_value", "json_query", "json_exists",
    "json_overlaps", "json_pretty", "json_array_append", "json_array_insert",
    "jsonb_path_query", "jsonb_path_exists", "jsonb_path_match", "jsonb_path_query_array",
    "jsonb_path_query_first", "json_object_keys", "jsonb_object_keys", "jsonb_concat",
    "json_error_position", "jsonb_delete", "jsonb_delete_path", "json_scalar",
    "json_serialize",
    // arrays
    "array_length", "array_upper", "array_lower", "cardinality", "array_position",
    "array_positions", "array_append", "array_prepend", "array_cat", "array_remove",
    "array_replace", "array_dims", "array_ndims", "array_fill", "trim_array",
    "array_sample", "array_shuffle",
    // full text, identifiers, session
    "to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery",
    "websearch_to_tsquery", "ts_rank", "ts_rank_cd", "ts_headline", "setweight",
    "tsvector_to_array", "gen_random_uuid", "uuid_generate_v4", "uuid_generate_v1",
    "uuid_to_bin", "bin_to_uuid", "uuid_short", "current_user", "session_user", "user",
    "current_database", "current_schema", "database", "schema", "version", "sqlite_version",
    "current_setting", "connection_id", "inet_aton", "inet_ntoa", "host", "family",
];

/// Built-in table functions that read no table (besides [`FUNCTIONS`], callable in `FROM`).
#[rustfmt::skip]
const TABLE_FUNCTIONS: &[&str] = &[
    "generate_series", "generate_subscripts", "unnest", "json_each", "json_each_text",
    "jsonb_each", "jsonb_each_text", "json_tree", "json_array_elements",
    "json_array_elements_text", "jsonb_array_elements", "jsonb_array_elements_text",
    "json_populate_record", "json_populate_recordset", "jsonb_populate_record",
    "jsonb_populate_recordset", "json_to_record", "json_to_recordset", "jsonb_to_record",
    "jsonb_to_recordset", "regexp_split_to_table", "regexp_matches", "string_to_table",
    "json_table", "jsonb_path_query", "ts_stat", "ts_debug",
];

/// SQLite's table-valued pragmas that read the schema of the table named by their first
/// argument: a read of that table (a schema change is a write to it).
const TABLE_PRAGMAS: &[&str] = &[
    "pragma_table_info",
    "pragma_table_xinfo",
    "pragma_index_list",
    "pragma_foreign_key_list",
];

/// Whether `name` (lower case) is a built-in in `FUNCTIONS` (or, `in_from`, a table
/// function).
fn known_function(name: &str, in_from: bool) -> bool {
    static SCALAR: OnceLock<HashSet<&'static str>> = OnceLock::new();
    static TABLE: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let scalar = SCALAR.get_or_init(|| FUNCTIONS.iter().copied().collect());
    let table = TABLE.get_or_init(|| TABLE_FUNCTIONS.iter().copied().collect());
    scalar.contains(name) || (in_from && table.contains(name))
}

impl<'p> Parser<'p> {
    /// Records what the statement `s..e` reads.
    fn read_statement(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        // `((SELECT ...))`: any number of wrapping parentheses cost no nesting level.
        let (s, e) = self.strip_parens(s, e);
        if !self.enter(s, e, depth, acc) {
            return;
        }
        if self.is_open(s, e) {
            self.read_query(s, e, depth, scope, acc);
            return;
        }
        let Some(verb) = self.verb(s, e, acc) else {
            return;
        };
        match verb.as_str() {
            "SELECT" | "VALUES" | "TABLE" | "WITH" => self.read_query(s, e, depth, scope, acc),
            "INSERT" | "REPLACE" | "UPSERT" => self.read_insert(s, e, depth, scope, acc),
            "UPDATE" => self.read_update(s, e, depth, scope, acc),
            "DELETE" => self.read_delete(s, e, depth, scope, acc),
            "MERGE" => self.read_merge(s, e, depth, scope, acc),
            "BEGIN" | "START" => self.begin(s, e, acc),
            "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" => {}
            "SET" | "RESET" => self.read_expr(s + 1, e, depth, scope, acc),
            "EXPLAIN" | "DESCRIBE" | "DESC" => self.read_explain(s, e, depth, scope, acc),
            _ => acc.fail_because(UnknownRead::Statement(verb)),
        }
    }

    /// A query: `[WITH ...] term [UNION | INTERSECT | EXCEPT [ALL] term]...`, where a term is
    /// a `SELECT`, `VALUES`, `TABLE t` or a parenthesised query.
    fn read_query(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        if depth > MAX_DEPTH {
            acc.fail();
            return;
        }
        if self.kw(s, e, "WITH") {
            self.read_with(s, e, depth, scope, acc);
            return;
        }
        let mut start = s;
        let mut i = s;
        while i < e && !acc.unknown {
            if self.kw_any(i, e, &["UNION", "INTERSECT", "EXCEPT", "MINUS"]) {
                self.read_term(start, i, depth, scope, acc);
                start = i + 1;
            }
            i = self.next(i, e);
        }
        self.read_term(start, e, depth, scope, acc);
    }

    /// One term of a set operation (after the operator's `ALL` / `DISTINCT`).
    fn read_term(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        if acc.unknown {
            return;
        }
        let s = s + usize::from(self.kw_any(s, e, &["ALL", "DISTINCT"]));
        if self.is_open(s, e) {
            let close = self.close_of(s);
            self.read_statement(s + 1, close, depth + 1, scope, acc);
            self.read_expr(close + 1, e, depth, scope, acc); // ORDER BY, LIMIT
        } else if self.kw(s, e, "SELECT") {
            self.read_select(s, e, depth, scope, acc);
        } else if self.kw(s, e, "VALUES") {
            self.read_expr(s + 1, e, depth, scope, acc);
        } else if self.kw(s, e, "TABLE") {
            match self.table_name(s + 1, e) {
                Some((table, j)) => {
                    if table.schema.is_some() || !scope.has(&table.name) {
                        acc.add(table, Rows::Unknown);
                    }
                    self.read_expr(j, e, depth, scope, acc);
                }
                None => acc.fail(),
            }
        } else {
            acc.fail();
        }
    }

    /// `WITH [RECURSIVE] name AS (body), ... main`: the bodies and the main statement, each
    /// with the names in scope there.
    fn read_with(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        let Some(with) = self.parse_with(s, e) else {
            acc.fail();
            return;
        };
        let mut names = HashMap::new();
        for (at, cte) in with.ctes.iter().enumerate() {
            names.entry(cte.name.clone()).or_insert(at);
        }
        for (at, cte) in with.ctes.iter().enumerate() {
            let inner = Scope {
                names: &names,
                visible: at + usize::from(with.recursive),
                parent: Some(scope),
            };
            self.read_statement(cte.body.0, cte.body.1, depth + 1, &inner, acc);
        }
        let main = Scope {
            names: &names,
            visible: with.ctes.len(),
            parent: Some(scope),
        };
        self.read_statement(with.main, e, depth + 1, &main, acc);
    }

    /// `SELECT list [FROM list] [WHERE cond] [GROUP BY ...] ...`: the tables of the `FROM`
    /// list, pinned to ids by the `WHERE` condition where it can, and everything the
    /// expressions read.
    fn read_select(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        let from = self.find_from(s + 1, e);
        let list_end = from.map_or(e, |from| self.find_kw(from + 1, e, AFTER_FROM).unwrap_or(e));
        self.read_expr(s + 1, from.unwrap_or(e), depth, scope, acc);
        let Some(from) = from else {
            self.read_expr(list_end, e, depth, scope, acc);
            return;
        };
        let mut items = 0;
        let sources = self.read_from(from + 1, list_end, depth, scope, &mut items, acc);
        let condition = self.kw(list_end, e, "WHERE").then(|| {
            let end = self.find_kw(list_end + 1, e, AFTER_WHERE).unwrap_or(e);
            (list_end + 1, end)
        });
        let bare = items == 1 && sources.len() == 1;
        for (table, alias) in sources {
            let pk = (self.env.pk)(&table);
            let target = Target { table, alias, bare };
            let ids = condition.and_then(|(a, b)| self.narrow(a, b, &target, &pk, 0));
            acc.add(target.table, ids.map_or(Rows::Unknown, Rows::Ids));
        }
        self.read_expr(list_end, e, depth, scope, acc);
    }

    /// The `FROM` of a `SELECT` (or of an `UPDATE`'s `SET` list) in `s..e`, outside
    /// parentheses and not PostgreSQL's `IS [NOT] DISTINCT FROM`.
    fn find_from(&self, s: usize, e: usize) -> Option<usize> {
        let mut i = s;
        while i < e {
            let distinct = i >= s + 2
                && self.kw(i - 1, e, "DISTINCT")
                && self.kw_any(i - 2, e, &["IS", "NOT"]);
            if self.kw(i, e, "FROM") && !distinct {
                return Some(i);
            }
            i = self.next(i, e);
        }
        None
    }

    /// Reads the `FROM`-style list `s..e` (comma joins, `JOIN`s, parenthesised joins, derived
    /// tables, table functions, join conditions) and returns its tables with their aliases,
    /// for the caller to add with the rows it knows. `items` counts the list's items (tables,
    /// derived tables, functions, common table expressions).
    fn read_from(
        &self,
        s: usize,
        e: usize,
        depth: usize,
        scope: &Scope<'_>,
        items: &mut usize,
        acc: &mut Acc,
    ) -> Vec<Source> {
        let mut sources = Vec::new();
        if depth > MAX_DEPTH || s >= e {
            acc.fail();
            return sources;
        }
        let mut i = s;
        while i < e && !acc.unknown {
            *items += 1;
            if self.kw(i, e, "LATERAL") {
                i += 1;
            }
            i = self.skip_only(i, e, acc);
            if self.is_open(i, e) {
                let close = self.close_of(i);
                if self.kw_any(i + 1, close, QUERY_START) || self.opens_write(i + 1, close) {
                    self.read_statement(i + 1, close, depth + 1, scope, acc);
                } else {
                    // `(a JOIN b ON ...)`, as Diesel writes joins
                    let inner = self.read_from(i + 1, close, depth + 1, scope, items, acc);
                    sources.extend(inner);
                }
                i = self.skip_alias(close + 1, e).1;
            } else if let Some((table, j)) = self.table_name(i, e) {
                if self.is_open(j, e) {
                    let close = self.close_of(j);
                    self.table_function(i, j, close, acc);
                    self.read_expr(j + 1, close, depth, scope, acc);
                    i = close + 1;
                    if self.kw(i, e, "WITH") && self.kw(i + 1, e, "ORDINALITY") {
                        i += 2;
                    }
                    i = self.skip_alias(i, e).1;
                } else {
                    let j = j + usize::from(self.op(j, e, "*"));
                    let (alias, j) = self.skip_alias(j, e);
                    if table.schema.is_some() || !scope.has(&table.name) {
                        sources.push((table, alias));
                    }
                    i = j;
                }
            } else {
                acc.fail();
                break;
            }
            // The rest of the item (join condition, index hints, sampling...) up to the next.
            let rest = i;
            while i < e && !self.punct(i, e, ",") && !self.kw_any(i, e, JOINS) {
                i = self.next(i, e);
            }
            self.read_expr(rest, i, depth, scope, acc);
            i += 1;
        }
        sources
    }

    /// `[AS] alias [(columns)]` at `i`: the alias, and the position after it.
    fn skip_alias(&self, i: usize, e: usize) -> (Option<String>, usize) {
        let (alias, j) = if self.kw(i, e, "AS") {
            (self.name_part(i + 1, e), i + 2)
        } else if !self.kw_any(i, e, NOT_ALIAS) && !self.kw_any(i, e, JOINS) {
            match self.name_part(i, e) {
                Some(alias) => (Some(alias), i + 1),
                None => return (None, i),
            }
        } else {
            return (None, i);
        };
        match alias {
            Some(alias) => (Some(alias), self.skip_group(j, e)),
            None => (None, i + 1), // `AS` then something else: left to the caller
        }
    }

    /// Checks the table function named at `name..open` (its arguments `open..close`): a
    /// built-in reads nothing, SQLite's schema pragmas read the table they name, anything
    /// else is unknown.
    fn table_function(&self, name: usize, open: usize, close: usize, acc: &mut Acc) {
        let called = self.called(name, open);
        if called.as_deref().is_some_and(|f| known_function(f, true)) {
            return;
        }
        if called.is_some_and(|f| TABLE_PRAGMAS.contains(&f.as_str())) {
            let argument = self.tok(open + 1, close).filter(|t| {
                matches!(t.kind, Kind::Str { exact: true })
                    && (open + 2 == close || self.punct(open + 2, close, ","))
            });
            if let Some(argument) = argument {
                let table = TableName {
                    schema: None,
                    name: argument.text.to_ascii_lowercase(),
                };
                acc.add(table, Rows::Unknown);
                return;
            }
        }
        acc.fail_because(UnknownRead::Function(self.spelled(name, open)));
    }

    /// The built-in name called at `s..e` (`f` or `pg_catalog.f`), lower case for unquoted
    /// names; None when qualified otherwise.
    fn called(&self, s: usize, e: usize) -> Option<String> {
        let name = self.name_part(e.checked_sub(1)?, e)?;
        match e - s {
            1 => Some(name),
            3 if self.name_part(s, e).as_deref() == Some("pg_catalog") => Some(name),
            _ => None,
        }
    }

    /// The name at `s..e` (`f`, `schema.f`), as the reason for an unknown read.
    fn spelled(&self, s: usize, e: usize) -> String {
        (s..e)
            .filter_map(|i| self.name_part(i, e))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Everything an expression range reads: subqueries (and writes in parentheses) at any
    /// depth, and the functions it calls, which must be known built-ins.
    fn read_expr(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        let mut i = s;
        while i < e && !acc.unknown {
            if self.is_open(i, e) {
                let close = self.close_of(i);
                if self.kw_any(i + 1, close, QUERY_START) || self.opens_write(i + 1, close) {
                    self.read_statement(i + 1, close, depth + 1, scope, acc);
                    i = close + 1;
                    continue;
                }
            } else if self.is_open(i + 1, e) && self.is_call(i, e) {
                // A qualified name: `schema.f(`.
                let start = if i >= s + 2
                    && self.punct(i - 1, e, ".")
                    && self.name_part(i - 2, e).is_some()
                {
                    i - 2
                } else {
                    i
                };
                let known = self
                    .called(start, i + 1)
                    .is_some_and(|name| known_function(&name, false));
                if !known {
                    acc.fail_because(UnknownRead::Function(self.spelled(start, i + 1)));
                    return;
                }
            }
            i += 1;
        }
    }

    /// Whether the name at `i` (followed by `(`) calls a function: an identifier that is
    /// not a keyword standing before a parenthesis.
    fn is_call(&self, i: usize, e: usize) -> bool {
        self.tok(i, e).is_some_and(|t| match t.kind {
            Kind::Quoted => true,
            Kind::Word => !self.kw_any(i, e, NOT_CALLS),
            _ => false,
        })
    }

    /// `INSERT ... VALUES | query [ON CONFLICT ...] [RETURNING ...]`: the target, whole, and
    /// what the source and the clauses read.
    fn read_insert(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        let Some(head) = self.insert_head(s, e) else {
            acc.fail();
            return;
        };
        acc.add(head.table, Rows::Unknown);
        let i = head.source;
        if self.kw_any(i, e, QUERY_START) || self.is_open(i, e) {
            let mut end = i;
            while end < e
                && !self.kw(end, e, "RETURNING")
                && !(self.kw(end, e, "ON") && self.kw_any(end + 1, e, &["CONFLICT", "DUPLICATE"]))
            {
                end = self.next(end, e);
            }
            self.read_query(i, end, depth + 1, scope, acc);
            self.read_expr(end, e, depth, scope, acc);
        } else {
            self.read_expr(i, e, depth, scope, acc); // VALUES, DEFAULT VALUES, MySQL's SET
        }
    }

    /// `UPDATE refs SET ... [FROM list] [WHERE ...] [RETURNING ...]`: the targets, whole, and
    /// what the rest reads.
    fn read_update(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        let Some(head) = self.update_head(s, e) else {
            acc.fail();
            return;
        };
        let set = head.set;
        self.read_whole(head.refs, set, depth, scope, acc);
        let clauses = ["WHERE", "RETURNING", "ORDER", "LIMIT"];
        match self.find_from(set + 1, e) {
            Some(from) => {
                let end = self.find_kw(from + 1, e, &clauses).unwrap_or(e);
                self.read_expr(set + 1, from, depth, scope, acc);
                self.read_whole(from + 1, end, depth, scope, acc);
                self.read_expr(end, e, depth, scope, acc);
            }
            None => self.read_expr(set + 1, e, depth, scope, acc),
        }
    }

    /// `DELETE FROM list [USING list] ...` or MySQL's `DELETE t1, t2 FROM refs ...`.
    fn read_delete(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        let mut i = s + 1;
        while self.kw_any(i, e, &["LOW_PRIORITY", "QUICK", "IGNORE"]) {
            i += 1;
        }
        let Some(from) = self.find_kw(i, e, &["FROM"]) else {
            acc.fail();
            return;
        };
        let clauses = ["USING", "WHERE", "RETURNING", "ORDER", "LIMIT"];
        let mut end = self.find_kw(from + 1, e, &clauses).unwrap_or(e);
        self.read_whole(from + 1, end, depth, scope, acc);
        if self.kw(end, e, "USING") {
            let using = end + 1;
            end = self.find_kw(using, e, &clauses[1..]).unwrap_or(e);
            self.read_whole(using, end, depth, scope, acc);
        }
        self.read_expr(end, e, depth, scope, acc);
    }

    /// `MERGE INTO target USING source ON ... WHEN ...`.
    fn read_merge(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        let Some(using) = self.find_kw(s + 1, e, &["USING"]) else {
            acc.fail();
            return;
        };
        let i = s + 1 + usize::from(self.kw(s + 1, e, "INTO"));
        self.read_whole(i, using, depth, scope, acc);
        let when = self.find_kw(using + 1, e, &["WHEN"]).unwrap_or(e);
        self.read_whole(using + 1, when, depth, scope, acc);
        self.read_expr(when, e, depth, scope, acc);
    }

    /// Reads the `FROM`-style list `s..e` and adds its tables, whole.
    fn read_whole(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        let mut items = 0;
        for (table, _) in self.read_from(s, e, depth, scope, &mut items, acc) {
            acc.add(table, Rows::Unknown);
        }
    }

    /// `EXPLAIN [options] statement` reads what its statement reads (a plan, and with
    /// `ANALYZE` its figures, depend on the data); `DESCRIBE t` / `EXPLAIN t` (MySQL) read
    /// the table's definition: `t`.
    fn read_explain(&self, s: usize, e: usize, depth: usize, scope: &Scope<'_>, acc: &mut Acc) {
        let mut i = s + 1;
        while i < e && !self.kw_any(i, e, STATEMENT_START) {
            i = self.next(i, e);
        }
        if i < e {
            self.read_statement(i, e, depth + 1, scope, acc);
            return;
        }
        match self.table_name(s + 1, e) {
            Some((table, _)) => acc.add(table, Rows::Unknown),
            None => acc.fail(),
        }
    }
}

impl Acc {
    /// Fails with a reason a caller can log (the first one recorded is kept).
    pub(super) fn fail_because(&mut self, why: UnknownRead) {
        if !self.unknown {
            self.why = Some(why);
        }
        self.fail();
    }

    /// What was recorded, as reads.
    pub(super) fn finish_reads(self) -> ReadEffect {
        if self.unknown {
            return ReadEffect::Unknown(self.why.unwrap_or(UnknownRead::Unparsable));
        }
        let reads = self.writes.into_iter().map(|(table, set)| TableRead {
            table,
            rows: match set {
                super::RowSet::Ids(list, _) => Rows::Ids(list),
                _ => Rows::Unknown,
            },
        });
        ReadEffect::Reads(reads.collect())
    }
}
