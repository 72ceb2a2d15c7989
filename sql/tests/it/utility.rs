//! Everything but DML: DDL, `EXPLAIN`, SQLite maintenance, opaque statements, `COPY`,
//! `PREPARE`, `REFRESH` / `RENAME` / `LOAD`, other reads.

use super::*;

#[test]
fn truncate() {
    check(
        "TRUNCATE TABLE a, b",
        writes(&[("a", Rows::Unknown), ("b", Rows::Unknown)]),
    );
    check(
        "TRUNCATE songs RESTART IDENTITY RESTRICT",
        all_rows("songs"),
    );
    check("TRUNCATE a CASCADE", Effect::Unknown);
    check("TRUNCATE", Effect::Unknown);
}

#[test]
fn drop() {
    check(
        "DROP TABLE IF EXISTS a, app.b",
        writes(&[("a", Rows::Unknown), ("app.b", Rows::Unknown)]),
    );
    check("DROP TEMPORARY TABLE t", all_rows("t"));
    check("DROP TABLE t CASCADE", all_rows("t"));
    check("DROP MATERIALIZED VIEW IF EXISTS mv", all_rows("mv"));
    check_all(
        &[
            "DROP INDEX idx",
            "DROP VIEW v",
            "DROP INDEX IF EXISTS idx_songs",
            "DROP TRIGGER trg",
        ],
        Effect::Read,
    );
    check_all(
        &[
            "DROP SCHEMA app CASCADE",
            "DROP DATABASE d",
            "DROP TYPE mood CASCADE",
            "DROP TABLE",
        ],
        Effect::Unknown,
    );
}

#[test]
fn alter() {
    check("ALTER TABLE t ADD COLUMN c INT DEFAULT 0", all_rows("t"));
    check(
        "ALTER TABLE IF EXISTS ONLY t RENAME TO u",
        writes(&[("only", Rows::Unknown), ("t", Rows::Unknown)]),
    );
    check(
        "ALTER TABLE t EXCHANGE PARTITION p WITH TABLE u",
        writes(&[("t", Rows::Unknown), ("u", Rows::Unknown)]),
    );
    check_all(
        &[
            "ALTER INDEX i RENAME TO j",
            "ALTER SEQUENCE s RESTART",
            "ALTER ROLE r LOGIN",
        ],
        Effect::Read,
    );
    check_all(
        &["ALTER TYPE mood RENAME VALUE 'a' TO 'b'", "ALTER TABLE"],
        Effect::Unknown,
    );
}

#[test]
fn create_is_a_read() {
    check_all(
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, update_time TEXT)",
            "CREATE TABLE IF NOT EXISTS t AS SELECT * FROM u",
            "CREATE UNIQUE INDEX i ON t (a)",
            "CREATE VIEW v AS SELECT * FROM t",
            "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql",
            "CREATE TRIGGER trg AFTER INSERT ON t BEGIN DELETE FROM u WHERE id = 1",
        ],
        Effect::Read,
    );
    // Replacing changes what an existing name reads as.
    check("CREATE OR REPLACE VIEW v AS SELECT 1", all_rows("v"));
    check("CREATE OR REPLACE TABLE t (id INT)", all_rows("t"));
}

#[test]
fn create_trigger_split_body_over_reports() {
    // The `;` inside a trigger body splits the text; reporting its statements is merely
    // conservative.
    check(
        "CREATE TRIGGER trg AFTER INSERT ON t BEGIN DELETE FROM u WHERE id = 1; UPDATE v SET a = 1; END;",
        all_rows("v"),
    );
}

#[test]
fn explain() {
    check("EXPLAIN DELETE FROM x", Effect::Read);
    check(
        "EXPLAIN QUERY PLAN DELETE FROM x WHERE id = 1",
        Effect::Read,
    );
    check(
        "EXPLAIN ANALYZE DELETE FROM x WHERE id = 1",
        rows_of("x", ids(&["1"])),
    );
    check("EXPLAIN ANALYZE VERBOSE UPDATE x SET a = 1", all_rows("x"));
    check(
        "EXPLAIN (ANALYZE, BUFFERS) UPDATE x SET a = 1",
        all_rows("x"),
    );
    check(
        "EXPLAIN (ANALYZE true, FORMAT JSON) DELETE FROM x",
        all_rows("x"),
    );
    check("EXPLAIN (ANALYZE false) DELETE FROM x", Effect::Read);
    check("EXPLAIN (ANALYZE off) DELETE FROM x", Effect::Read);
    check("EXPLAIN ANALYZE FORMAT=TREE SELECT 1", Effect::Read);
    check("EXPLAIN ANALYZE EXECUTE p", Effect::Unknown);
    check("DESCRIBE songs", Effect::Read);
    check("EXPLAIN ANALYZE", Effect::Unknown);
}

#[test]
fn sqlite_maintenance_and_pragmas() {
    check_all(
        &[
            "PRAGMA foreign_keys",
            "PRAGMA foreign_keys = ON",
            "PRAGMA main.journal_mode = WAL",
            "VACUUM",
            "VACUUM INTO 'backup.db'",
            "ANALYZE",
            "ANALYZE songs",
            "REINDEX",
            "ATTACH DATABASE 'other.db' AS other",
            "DETACH other",
        ],
        Effect::Read,
    );
}

#[test]
fn opaque_statements_are_unknown() {
    check_all(
        &[
            "CALL archive_songs()",
            "DO $$ BEGIN NULL; END $$",
            "EXECUTE p(1)",
            "EXEC sp_who",
            "LOAD 'plugin'",
            "FROBNICATE t",
            "42",
            "'DELETE FROM x'",
            "\"songs\"",
            "$$ x $$",
            "= 1",
        ],
        Effect::Unknown,
    );
}

#[test]
fn copy() {
    check("COPY t FROM STDIN", all_rows("t"));
    check(
        "COPY t (a, b) FROM '/tmp/f.csv' WITH (FORMAT csv)",
        all_rows("t"),
    );
    check("COPY t TO STDOUT", Effect::Read);
    check("COPY (SELECT * FROM t) TO STDOUT", Effect::Read);
    check("COPY (DELETE FROM t RETURNING *) TO STDOUT", all_rows("t"));
    check_all(
        &["COPY", "COPY t", "COPY (SELECT 1) FROM x"],
        Effect::Unknown,
    );
}

#[test]
fn prepare() {
    // Parameters of the body are bound by a later EXECUTE: not the ones given here.
    check(
        "PREPARE p (int) AS DELETE FROM t WHERE id = $1",
        all_rows("t"),
    );
    check(
        "PREPARE p AS DELETE FROM t WHERE id = 3",
        rows_of("t", ids(&["3"])),
    );
    check("PREPARE p AS SELECT 1", Effect::Read);
    check("PREPARE s FROM 'DELETE FROM t WHERE id = ?'", all_rows("t"));
    check("PREPARE s FROM 'SELECT ''x'''", Effect::Read);
    check_all(
        &["PREPARE s FROM @sql", "PREPARE", "PREPARE p AS CALL f()"],
        Effect::Unknown,
    );
}

#[test]
fn refresh_rename_load() {
    check(
        "REFRESH MATERIALIZED VIEW CONCURRENTLY app.mv",
        all_rows("app.mv"),
    );
    check(
        "RENAME TABLE a TO b, c TO d",
        writes(&[
            ("a", Rows::Unknown),
            ("b", Rows::Unknown),
            ("c", Rows::Unknown),
            ("d", Rows::Unknown),
        ]),
    );
    check(
        "LOAD DATA LOCAL INFILE 'f.csv' REPLACE INTO TABLE songs FIELDS TERMINATED BY ','",
        all_rows("songs"),
    );
    check_all(
        &["REFRESH x", "RENAME TABLE a", "LOAD DATA INFILE 'f'"],
        Effect::Unknown,
    );
}

#[test]
fn other_reads() {
    check_all(
        &[
            "VALUES (1, 2), (3, 4)",
            "TABLE songs",
            "SELECT * INTO new_table FROM songs",
            "DECLARE c CURSOR FOR SELECT * FROM t",
            "FETCH NEXT FROM c",
            "SELECT 1 FROM t WHERE update_count = 1",
        ],
        Effect::Read,
    );
}
