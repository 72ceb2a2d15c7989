//! PostgreSQL "trigger mode" change feed: the SQL that installs statement-level `AFTER`
//! triggers with transition tables on each application table, so that every write
//! `NOTIFY`s a channel with the table and the primary keys it touched, and the parser for
//! those notifications.
//!
//! Everything here is pure (no database access); the caller runs the statements (ideally in
//! one transaction) and listens on the channel with `PgListener`.
//!
//! # Payload
//!
//! One notification per statement per table that touched at least one row:
//!
//! ```text
//! {"s":"<schema>","t":"<table>","k":[["7"],["8"]]}
//! ```
//!
//! `s` and `t` are JSON strings (escaped by PostgreSQL's `to_json`), `k` is the list of the
//! distinct primary keys the statement touched (old and new keys of an `UPDATE`), each key
//! an array of its column values cast to `text`, in key column order, sorted (collation
//! "C") by their JSON text. `k` is `null` (the whole table changed, or the rows are unknown)
//! for `TRUNCATE`, for tables without a primary key, and when the payload would exceed
//! [`MAX_PAYLOAD`] bytes (`NOTIFY` refuses payloads of 8000 bytes or more).
//!
//! # Cost (per statement, per table written)
//!
//! One PL/pgSQL call, one subtransaction (the `EXCEPTION` block that turns a renamed key
//! column into a whole-table notice instead of a failed write; it assigns no XID), one
//! dynamic query (planned on each call: `EXECUTE` does not cache plans) that reads the
//! transition table(s) once, de-duplicates at most [`MAX_KEYS`]` + 1` keys and sorts
//! them, and one `pg_notify`. The larger cost is
//! upstream of the function: with transition tables, PostgreSQL stores a copy of every
//! inserted / updated (old and new) / deleted row of the statement in a tuplestore (in
//! `work_mem`, spilling to a temporary file beyond it), whether or not the function reads
//! them. Tables without a primary key get triggers without transition tables (no copy),
//! and therefore notify even for statements that touched no row.

/// Prefix of the name of every trigger (and of the function) this module installs.
pub(crate) const TRIGGER_PREFIX: &str = "querycache_feed_";

/// Name of the PL/pgSQL trigger function (in the schema given to [`install_sql`]).
pub(crate) const FUNCTION_NAME: &str = "querycache_feed_notify";

/// Names of the four triggers installed on each table: insert, update, delete, truncate.
pub(crate) const TRIGGER_NAMES: [&str; 4] = [
    "querycache_feed_ins",
    "querycache_feed_upd",
    "querycache_feed_del",
    "querycache_feed_trunc",
];

/// Largest payload (in bytes, `octet_length`) sent with keys; above it `k` is `null`.
/// `NOTIFY` accepts payloads shorter than 8000 bytes; schema and table names fit in the
/// difference, even for the `"k":null` fallback.
pub(crate) const MAX_PAYLOAD: usize = 7900;

/// Most distinct keys a payload of [`MAX_PAYLOAD`] bytes can hold: each key takes at
/// least 5 bytes (`[""],`) and the rest of the payload at least 22 (`{"s":"","t":"","k":[]}`).
/// The trigger de-duplicates at most one more key than this, so its cost is bounded
/// however many rows a statement touched.
pub(crate) const MAX_KEYS: usize = (MAX_PAYLOAD - 22 + 1) / 5;

/// One table to install on: schema, name, primary-key columns in key order (may be
/// empty: no primary key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TriggerTable {
    /// Schema (namespace) of the table, unquoted.
    pub schema: String,
    /// Name of the table, unquoted.
    pub name: String,
    /// Primary-key columns in key order, unquoted; empty when the table has no primary key.
    pub key: Vec<String>,
}

/// Quotes an SQL identifier: wraps it in `"` and doubles every `"` inside.
pub(crate) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes an SQL string literal: wraps it in `'` and doubles every `'` inside. A value
/// with a backslash becomes an `E'...'` literal with backslashes doubled too, so the
/// literal means the same whatever `standard_conforming_strings` is (as PostgreSQL's own
/// `quote_literal` does).
pub(crate) fn quote_literal(value: &str) -> String {
    if value.contains('\\') {
        format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// `"schema"."name"`, both parts quoted.
fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// The `CREATE OR REPLACE FUNCTION` statement of the notify function in `fn_schema`.
///
/// Trigger arguments: `TG_ARGV[0]` is the channel, `TG_ARGV[1..]` the key columns (none:
/// notify the whole table). The body holds no caller-supplied text (names arrive as
/// arguments and are quoted with `format('%I')`), so its dollar quoting cannot be broken.
fn function_sql(fn_schema: &str) -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION {func}() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER VOLATILE AS $querycache$
-- querycache change feed: one NOTIFY per statement, see the querycache docs.
-- Cost per statement: this call, one dynamic query over the transition table(s)
-- (planned each time) de-duplicating at most {limit} keys, one pg_notify, plus one
-- subtransaction for the EXCEPTION block. PostgreSQL also stores every changed row in
-- the transition tables (work_mem, then temp files). Reinstall after key changes.
DECLARE
  nkeys integer := TG_NARGS - 1;
  cols text := '';
  expr text;
  src text;
  cnt bigint;
  keys text;
  head text;
  payload text;
BEGIN
  head := '{{"s":' || pg_catalog.to_json(TG_TABLE_SCHEMA::text)::text
       || ',"t":' || pg_catalog.to_json(TG_TABLE_NAME::text)::text || ',"k":';
  IF TG_OP = 'TRUNCATE' OR nkeys < 1 THEN
    PERFORM pg_catalog.pg_notify(TG_ARGV[0], head || 'null}}');
    RETURN NULL;
  END IF;
  FOR i IN 1..nkeys LOOP
    IF i > 1 THEN cols := cols || ', '; END IF;
    cols := cols || pg_catalog.format('%I::text', TG_ARGV[i]);
  END LOOP;
  expr := pg_catalog.format('pg_catalog.array_to_json(ARRAY[%s])::text', cols);
  IF TG_OP = 'INSERT' THEN
    src := pg_catalog.format('SELECT %s AS k FROM querycache_new', expr);
  ELSIF TG_OP = 'DELETE' THEN
    src := pg_catalog.format('SELECT %s AS k FROM querycache_old', expr);
  ELSE
    src := pg_catalog.format(
      'SELECT %1$s AS k FROM querycache_old UNION ALL SELECT %1$s AS k FROM querycache_new', expr);
  END IF;
  BEGIN
    EXECUTE pg_catalog.format(
      'SELECT count(*), string_agg(k, '','' ORDER BY k COLLATE "C") '
      'FROM (SELECT DISTINCT k FROM (%s) r LIMIT %s) d', src, {limit})
      INTO cnt, keys;
  EXCEPTION WHEN undefined_column THEN
    -- A key column was renamed since install: never fail the write, report the table.
    cnt := {limit};
  END;
  IF cnt = 0 THEN
    RETURN NULL;
  END IF;
  IF cnt > {max_keys} THEN
    payload := head || 'null}}';
  ELSE
    payload := head || '[' || keys || ']}}';
    IF pg_catalog.octet_length(payload) > {max_payload} THEN
      payload := head || 'null}}';
    END IF;
  END IF;
  PERFORM pg_catalog.pg_notify(TG_ARGV[0], payload);
  RETURN NULL;
END
$querycache$"#,
        func = qualified(fn_schema, FUNCTION_NAME),
        limit = MAX_KEYS + 1,
        max_keys = MAX_KEYS,
        max_payload = MAX_PAYLOAD,
    )
}

/// The statements that install (idempotently: `CREATE OR REPLACE FUNCTION`, `DROP TRIGGER
/// IF EXISTS` + `CREATE TRIGGER`) the notify function in schema `fn_schema` and the
/// triggers on every table, notifying `channel`.
///
/// Each table gets four statement-level triggers ([`TRIGGER_NAMES`]): `AFTER INSERT`
/// (`NEW TABLE`), `AFTER UPDATE` (`OLD TABLE` and `NEW TABLE`: a key change reports both
/// keys), `AFTER DELETE` (`OLD TABLE`) and `AFTER TRUNCATE`. A table without a primary key
/// gets the same four triggers without transition tables, and every statement notifies
/// the whole table. `channel` must be shorter than 64 bytes (`pg_notify` refuses longer
/// names); listen on it with `LISTEN` + [`quote_ident`]`(channel)` or `PgListener`.
/// Run the statements in one transaction so that no write sees a half-installed table.
pub(crate) fn install_sql(fn_schema: &str, channel: &str, tables: &[TriggerTable]) -> Vec<String> {
    let func = qualified(fn_schema, FUNCTION_NAME);
    let mut out = Vec::with_capacity(1 + tables.len() * 8);
    out.push(function_sql(fn_schema));
    for table in tables {
        let target = qualified(&table.schema, &table.name);
        for name in TRIGGER_NAMES {
            out.push(format!(
                "DROP TRIGGER IF EXISTS {} ON {target}",
                quote_ident(name)
            ));
        }
        let mut args = vec![quote_literal(channel)];
        args.extend(table.key.iter().map(|column| quote_literal(column)));
        let keyed_args = args.join(", ");
        let channel_arg = quote_literal(channel);
        let keyed = !table.key.is_empty();
        let (ins, upd, del) = if keyed {
            (
                " REFERENCING NEW TABLE AS querycache_new",
                " REFERENCING OLD TABLE AS querycache_old NEW TABLE AS querycache_new",
                " REFERENCING OLD TABLE AS querycache_old",
            )
        } else {
            ("", "", "")
        };
        let [n_ins, n_upd, n_del, n_trunc] = TRIGGER_NAMES.map(quote_ident);
        out.push(format!(
            "CREATE TRIGGER {n_ins} AFTER INSERT ON {target}{ins} FOR EACH STATEMENT EXECUTE FUNCTION {func}({keyed_args})"
        ));
        out.push(format!(
            "CREATE TRIGGER {n_upd} AFTER UPDATE ON {target}{upd} FOR EACH STATEMENT EXECUTE FUNCTION {func}({keyed_args})"
        ));
        out.push(format!(
            "CREATE TRIGGER {n_del} AFTER DELETE ON {target}{del} FOR EACH STATEMENT EXECUTE FUNCTION {func}({keyed_args})"
        ));
        out.push(format!(
            "CREATE TRIGGER {n_trunc} AFTER TRUNCATE ON {target} FOR EACH STATEMENT EXECUTE FUNCTION {func}({channel_arg})"
        ));
    }
    out
}

/// The statements that remove every trigger named by [`TRIGGER_PREFIX`] on any table of
/// the database (found in `pg_trigger`, one `DO` block), then the notify function in
/// `fn_schema`. Idempotent.
pub(crate) fn uninstall_all_sql(fn_schema: &str) -> Vec<String> {
    let pattern = quote_literal(&format!("{}%", TRIGGER_PREFIX.replace('_', "\\_")));
    vec![
        format!(
            r"DO $querycache$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT n.nspname, c.relname, t.tgname
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal AND t.tgname LIKE {pattern}
  LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %I.%I', r.tgname, r.nspname, r.relname);
  END LOOP;
END
$querycache$"
        ),
        format!(
            "DROP FUNCTION IF EXISTS {}()",
            qualified(fn_schema, FUNCTION_NAME)
        ),
    ]
}

/// A query listing the user tables to install on, one row each: `schema text`,
/// `table text`, `key text[]` (primary-key columns in key order, empty without a primary
/// key), ordered by schema and table.
///
/// It lists ordinary tables and partitioned tables (`relkind` `r` and `p`) but not
/// partitions (`relispartition`): a statement on a partitioned table fires the statement
/// triggers of that table only, with transition tables holding the rows of every
/// partition it touched, and is reported under the parent's name. (Writes addressed to a
/// partition directly fire only the partition's triggers, so they are not seen.) It skips
/// system schemas (`pg_*`, `information_schema`), temporary schemas and tables that
/// belong to an extension. `schemas`: only these schemas (`Some(&[])`: none).
pub(crate) fn tables_sql(schemas: Option<&[String]>) -> String {
    let filter = match schemas {
        None => String::new(),
        Some(list) => {
            let items: Vec<String> = list.iter().map(|s| quote_literal(s)).collect();
            format!(
                "\n  AND n.nspname = ANY (ARRAY[{}]::text[])",
                items.join(", ")
            )
        }
    };
    format!(
        r#"SELECT n.nspname::text AS schema,
       c.relname::text AS "table",
       COALESCE((SELECT pg_catalog.array_agg(a.attname::text ORDER BY k.ord)
                 FROM pg_catalog.pg_constraint con
                 CROSS JOIN LATERAL pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                 WHERE con.conrelid = c.oid AND con.contype = 'p'),
                ARRAY[]::text[]) AS key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname !~ '^pg_'
  AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.objid = c.oid AND d.deptype = 'e'){filter}
ORDER BY 1, 2"#
    )
}

/// What one notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    /// These rows of the table changed (bump `model:<table>` and each row tag).
    Rows {
        /// Schema of the table.
        schema: String,
        /// Name of the table.
        table: String,
        /// Distinct primary keys, each its column values as text in key column order.
        keys: Vec<Vec<String>>,
    },
    /// The table changed, rows unknown (bump `model:<table>` and `model:<table>#bulk`).
    Table {
        /// Schema of the table.
        schema: String,
        /// Name of the table.
        table: String,
    },
}

/// Parses a notification payload (see the module docs). Unknown object members are
/// ignored. The error names the payload (its first 100 characters).
pub(crate) fn parse_payload(payload: &str) -> Result<Notice, String> {
    use serde_json::Value as Json;
    let fail = |why: &str| {
        let head: String = payload.chars().take(100).collect();
        format!("invalid querycache feed payload {head:?}: {why}")
    };
    let value: Json = serde_json::from_str(payload).map_err(|e| fail(&e.to_string()))?;
    let Json::Object(members) = value else {
        return Err(fail("not an object"));
    };
    let schema = match members.get("s") {
        Some(Json::String(s)) => s.clone(),
        _ => return Err(fail("\"s\" is not a string")),
    };
    let table = match members.get("t") {
        Some(Json::String(t)) => t.clone(),
        _ => return Err(fail("\"t\" is not a string")),
    };
    match members.get("k") {
        Some(Json::Null) => Ok(Notice::Table { schema, table }),
        Some(Json::Array(items)) => {
            let mut keys = Vec::with_capacity(items.len());
            for item in items {
                let Json::Array(parts) = item else {
                    return Err(fail("a key is not an array"));
                };
                if parts.is_empty() {
                    return Err(fail("a key is empty"));
                }
                let mut key = Vec::with_capacity(parts.len());
                for part in parts {
                    let Json::String(text) = part else {
                        return Err(fail("a key value is not a string"));
                    };
                    key.push(text.clone());
                }
                keys.push(key);
            }
            Ok(Notice::Rows {
                schema,
                table,
                keys,
            })
        }
        _ => Err(fail("\"k\" is neither null nor an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(schema: &str, name: &str, key: &[&str]) -> TriggerTable {
        TriggerTable {
            schema: schema.to_string(),
            name: name.to_string(),
            key: key.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("My \"Tab\""), "\"My \"\"Tab\"\"\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b'c"), "E'a\\\\b''c'");
    }

    #[test]
    fn max_keys_is_the_bound() {
        // 1575 one-char keys plus the smallest head are within the limit, one more is not.
        let head = "{\"s\":\"\",\"t\":\"\",\"k\":[]}".len();
        assert!(head + MAX_KEYS * 5 - 1 <= MAX_PAYLOAD);
        assert!(head + (MAX_KEYS + 1) * 5 - 1 > MAX_PAYLOAD);
    }

    #[test]
    fn install_quotes_everything() {
        let sql = install_sql(
            "my fn",
            "qc's chan",
            &[table("Sales Data", "Order \"Items\"", &["Id", "line"])],
        );
        assert_eq!(sql.len(), 9);
        assert!(
            sql[0].starts_with("CREATE OR REPLACE FUNCTION \"my fn\".\"querycache_feed_notify\"()")
        );
        assert!(sql[0].contains("SECURITY INVOKER"));
        assert_eq!(
            sql[1],
            "DROP TRIGGER IF EXISTS \"querycache_feed_ins\" ON \"Sales Data\".\"Order \"\"Items\"\"\""
        );
        assert_eq!(
            sql[5],
            "CREATE TRIGGER \"querycache_feed_ins\" AFTER INSERT ON \"Sales Data\".\"Order \"\"Items\"\"\" \
             REFERENCING NEW TABLE AS querycache_new FOR EACH STATEMENT EXECUTE FUNCTION \
             \"my fn\".\"querycache_feed_notify\"('qc''s chan', 'Id', 'line')"
        );
        assert!(
            sql[6].contains("REFERENCING OLD TABLE AS querycache_old NEW TABLE AS querycache_new")
        );
        assert!(
            sql[7].contains("AFTER DELETE")
                && sql[7].contains("REFERENCING OLD TABLE AS querycache_old FOR")
        );
        assert!(sql[8].contains("AFTER TRUNCATE") && sql[8].ends_with("('qc''s chan')"));
        assert!(!sql[8].contains("REFERENCING"));
    }

    #[test]
    fn install_without_key_has_no_transition_tables() {
        let sql = install_sql("public", "c", &[table("public", "log", &[])]);
        assert_eq!(sql.len(), 9);
        for statement in &sql[5..] {
            assert!(!statement.contains("REFERENCING"), "{statement}");
            assert!(statement.ends_with("('c')"), "{statement}");
        }
    }

    #[test]
    fn install_with_no_tables_is_just_the_function() {
        assert_eq!(install_sql("public", "c", &[]).len(), 1);
    }

    #[test]
    fn tables_sql_filters_schemas() {
        assert!(!tables_sql(None).contains("ANY"));
        let sql = tables_sql(Some(&["public".to_string(), "O'Brien".to_string()]));
        assert!(sql.contains("n.nspname = ANY (ARRAY['public', 'O''Brien']::text[])"));
    }

    #[test]
    fn parses_rows() {
        let notice = parse_payload(r#"{"s":"public","t":"users","k":[["7"],["8"]]}"#);
        assert_eq!(
            notice,
            Ok(Notice::Rows {
                schema: "public".into(),
                table: "users".into(),
                keys: vec![vec!["7".into()], vec!["8".into()]],
            })
        );
    }

    #[test]
    fn parses_composite_escaped_and_spaced() {
        let payload = " { \"t\" : \"Tab \\\"1\\\"\", \"s\":\"Sch\\u00e9ma \\ud83d\\ude00\", \"k\": [ [\"a,b\", \"\\\\n\"] ] , \"x\": 1.5e3 } ";
        assert_eq!(
            parse_payload(payload),
            Ok(Notice::Rows {
                schema: "Schéma 😀".into(),
                table: "Tab \"1\"".into(),
                keys: vec![vec!["a,b".into(), "\\n".into()]],
            })
        );
    }

    #[test]
    fn parses_table() {
        assert_eq!(
            parse_payload(r#"{"s":"public","t":"Ünïcode","k":null}"#),
            Ok(Notice::Table {
                schema: "public".into(),
                table: "Ünïcode".into()
            })
        );
    }

    #[test]
    fn rejects_bad_payloads() {
        for bad in [
            "",
            "null",
            "[]",
            r#"{"s":"a","t":"b"}"#,
            r#"{"s":"a","t":"b","k":1}"#,
            r#"{"s":"a","t":"b","k":[7]}"#,
            r#"{"s":"a","t":"b","k":[[7]]}"#,
            r#"{"s":"a","t":"b","k":[[]]}"#,
            r#"{"s":1,"t":"b","k":null}"#,
            r#"{"s":"a","t":"b","k":null} x"#,
            r#"{"s":"a","t":"b","k":null"#,
            r#"{"s":"a\ud800","t":"b","k":null}"#,
            "{\"s\":\"a\nb\",\"t\":\"b\",\"k\":null}",
            &"[".repeat(100),
        ] {
            let err = parse_payload(bad).expect_err(bad);
            assert!(err.starts_with("invalid querycache feed payload"), "{err}");
        }
    }

    #[test]
    fn error_names_the_first_100_chars() {
        let long = format!("{{\"s\":\"é{}", "x".repeat(300));
        let err = parse_payload(&long).expect_err("invalid");
        let head: String = long.chars().take(100).collect();
        assert!(err.contains(&format!("{head:?}")), "{err}");
        assert!(!err.contains(&"x".repeat(100)));
    }
}
