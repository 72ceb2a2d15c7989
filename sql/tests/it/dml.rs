//! `INSERT`, `UPDATE`, `DELETE`, `MERGE`, and several statements in one text: which tables
//! they write (which rows: `rows.rs`).

use super::*;

#[test]
fn multiple_statements() {
    check("SELECT 1; SELECT 2;", Effect::Read);
    check(
        "BEGIN; DELETE FROM a WHERE id = 1; COMMIT",
        rows_of("a", ids(&["1"])),
    );
    check("DELETE FROM a WHERE id = 1; CALL f()", Effect::Unknown);
    check(
        "DELETE FROM b; DELETE FROM a; DELETE FROM b",
        writes(&[("b", Rows::Unknown), ("a", Rows::Unknown)]),
    );
}

#[test]
fn merging_rows_of_one_table() {
    check(
        "DELETE FROM t WHERE id = 1; DELETE FROM t WHERE id IN (2, 1, 3)",
        rows_of("t", ids(&["1", "2", "3"])),
    );
    check(
        "DELETE FROM t WHERE id = 1; UPDATE t SET a = 1; DELETE FROM t WHERE id = 2",
        all_rows("t"),
    );
    check(
        "DELETE FROM t WHERE id IN (1, 1, 01)",
        rows_of("t", ids(&["1"])),
    );
}

#[test]
fn insert_literal_keys() {
    check(
        "INSERT INTO t (id, name) VALUES (1, 'a'), ('x', 'b'), (-2, 'c')",
        rows_of("t", ids(&["1", "x", "-2"])),
    );
    // Keys the text does not give: the one row inserted, known only by what it returns.
    check_all(
        &[
            "INSERT INTO t (id) VALUES (1 + 1)",
            "INSERT INTO t (id) VALUES (DEFAULT)",
            "INSERT INTO t (id) VALUES (1.5)",
        ],
        rows_of("t", Rows::Inserted(1)),
    );
    check("INSERT INTO t (id, a) VALUES (1)", all_rows("t"));
}

#[test]
fn insert_without_usable_keys() {
    check(
        "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
        rows_of("t", Rows::Inserted(2)),
    );
    check(
        "INSERT INTO t (a, b) VALUES (1, 2)",
        rows_of("t", Rows::Inserted(1)),
    );
    // How many rows come from a query or DEFAULT VALUES is not in the text.
    check_all(
        &[
            "INSERT INTO t (id, a) SELECT id, a FROM u",
            "INSERT INTO t SELECT * FROM u",
            "INSERT INTO t DEFAULT VALUES",
            r#"INSERT INTO "t" DEFAULT VALUES RETURNING "id""#,
            "INSERT INTO t SET id = 1",
            "INSERT INTO t (a) VALUES ROW(1)",
        ],
        all_rows("t"),
    );
}

/// `Rows::Inserted` promises that the statement's own returned rows are exactly the rows
/// it wrote: only a lone, top-level INSERT that cannot update or replace other rows.
#[test]
fn only_a_lone_top_level_plain_insert_counts_its_rows() {
    let inserted = |n| rows_of("t", Rows::Inserted(n));
    check_all(
        &[
            "INSERT INTO t (a) VALUES (1) RETURNING id",
            "INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING RETURNING id",
            "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) WHERE a > 0 DO NOTHING",
            "INSERT OR IGNORE INTO t (a) VALUES (1) RETURNING id",
            "INSERT\nOR IGNORE INTO t (a) VALUES (1) RETURNING id",
            "INSERT IGNORE INTO t (a) VALUES (1)",
            "INSERT INTO t (a) VALUES (1);",
        ],
        inserted(1),
    );
    check_all(
        &[
            // Replaces delete rows that conflict on any unique key, whatever the spelling.
            "REPLACE INTO t (a) VALUES (1)",
            "INSERT OR REPLACE INTO t (a) VALUES (1) RETURNING id",
            "INSERT\nOR REPLACE INTO t (a) VALUES (1) RETURNING id",
            "INSERT\tOR\tREPLACE INTO t (a) VALUES (1) RETURNING id",
            "INSERT/* x */OR/**/REPLACE INTO t (a) VALUES (1) RETURNING id",
            "INSERT -- x\nOR REPLACE INTO t (a) VALUES (1) RETURNING id",
            "UPSERT INTO t (a) VALUES (1)",
            // Updates of rows the statement does not insert.
            "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 2 RETURNING id",
            "INSERT INTO t (a) VALUES (1) ON CONFLICT\nDO UPDATE SET b = 2",
            "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE b = 2",
            "INSERT INTO t (a) VALUES (1) AS n ON DUPLICATE KEY UPDATE b = n.b",
            // Several statements: the rows returned are not those of one INSERT.
            "INSERT INTO t (a) VALUES (1); INSERT INTO t (a) VALUES (2)",
            "INSERT INTO t (a) VALUES (1); UPDATE t SET b = 1",
            // Another write to the same table in the statement.
            "INSERT INTO t (a) VALUES ((WITH d AS (DELETE FROM t RETURNING a) SELECT 1))",
        ],
        all_rows("t"),
    );
    // Nested or explained inserts return other rows (a CTE's SELECT, a plan).
    check_all(
        &[
            "WITH x AS (INSERT INTO t (a) VALUES (1) RETURNING id) SELECT 42 AS id",
            "WITH x AS (SELECT 1) INSERT INTO t (a) VALUES (1) RETURNING id",
            "EXPLAIN ANALYZE INSERT INTO t (a) VALUES (1) RETURNING id",
        ],
        all_rows("t"),
    );
    check(
        "INSERT INTO t (a) VALUES (1); SELECT 2 AS id",
        all_rows("t"),
    );
}

#[test]
fn insert_variants() {
    check(
        "INSERT OR IGNORE INTO t (id) VALUES (?)",
        rows_of("t", ids(&["p0"])),
    );
    check(
        "INSERT OR ABORT INTO t (id) VALUES (1)",
        rows_of("t", ids(&["1"])),
    );
    check(
        "INSERT IGNORE INTO t (id) VALUES (1)",
        rows_of("t", ids(&["1"])),
    );
    check("INSERT t (id) VALUES (1)", rows_of("t", ids(&["1"])));
    check("INSERT INTO t (id) VALUE (1)", rows_of("t", ids(&["1"])));
    check(
        "INSERT INTO t AS x (id) VALUES (1)",
        rows_of("t", ids(&["1"])),
    );
    check("UPSERT INTO t (id) VALUES (1)", rows_of("t", ids(&["1"])));
    check(
        "INSERT INTO t (id) OVERRIDING SYSTEM VALUE VALUES (1)",
        rows_of("t", ids(&["1"])),
    );
    check("INSERT OR WHATEVER INTO t (id) VALUES (1)", Effect::Unknown);
    check(
        "INSERT INTO app.t (id) VALUES (1)",
        rows_of("app.t", ids(&["1"])),
    );
}

#[test]
fn replace_may_delete_other_rows() {
    // REPLACE deletes rows that conflict on any unique key, whatever their id.
    check_all(
        &[
            "REPLACE INTO t (id, email) VALUES (1, 'a')",
            "INSERT OR REPLACE INTO t (id, email) VALUES (1, 'a')",
        ],
        all_rows("t"),
    );
}

#[test]
fn upserts() {
    check(
        "INSERT INTO t (id, a) VALUES (1, 2) ON CONFLICT DO NOTHING",
        rows_of("t", ids(&["1"])),
    );
    check(
        "INSERT INTO t (id, a) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET a = excluded.a WHERE t.a < 3 RETURNING *",
        rows_of("t", ids(&["1"])),
    );
    // Another conflict target, or none, updates a row whose id is not in the statement.
    check_all(
        &[
            "INSERT INTO t (id, email) VALUES (1, 'a') ON CONFLICT (email) DO UPDATE SET id = 1",
            "INSERT INTO t (id, email) VALUES (1, 'a') ON CONFLICT (email) DO UPDATE SET n = 1",
            "INSERT INTO t (id, email) VALUES (1, 'a') ON CONFLICT DO UPDATE SET n = 1",
            "INSERT INTO t (id, email) VALUES (1, 'a') ON CONFLICT ON CONSTRAINT u DO UPDATE SET n = 1",
            "INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET id = excluded.id + 1",
            "INSERT INTO t (id, a) VALUES (1, 2) ON DUPLICATE KEY UPDATE a = VALUES(a)",
            "INSERT INTO t (id, a) VALUES (1, 2) AS new ON DUPLICATE KEY UPDATE a = new.a",
        ],
        all_rows("t"),
    );
}

#[test]
fn insert_unreadable_target() {
    check_all(
        &[
            "INSERT INTO",
            "INSERT INTO (a) VALUES (1)",
            "INSERT ALL INTO a VALUES (1) SELECT 1",
        ],
        Effect::Unknown,
    );
}

#[test]
fn update_aliases() {
    check(
        "UPDATE songs AS s SET x = 1 WHERE s.id = 3",
        rows_of("songs", ids(&["3"])),
    );
    check(
        "UPDATE songs s SET x = 1 WHERE s.id = 3",
        rows_of("songs", ids(&["3"])),
    );
    check(
        "UPDATE songs s SET x = 1 WHERE id = 3",
        rows_of("songs", ids(&["3"])),
    );
    // Once aliased, `songs.id` is not the target's column.
    check(
        "UPDATE songs AS s SET x = 1 WHERE songs.id = 3",
        all_rows("songs"),
    );
    check(
        "UPDATE songs SET x = 1 WHERE other.id = 3",
        all_rows("songs"),
    );
}

#[test]
fn update_only_and_sqlite_forms() {
    check(
        "UPDATE ONLY songs SET x = 1 WHERE id = 4",
        writes(&[("only", Rows::Unknown), ("songs", ids(&["4"]))]),
    );
    check(
        "UPDATE OR IGNORE t SET a = 1 WHERE id = 1",
        rows_of("t", ids(&["1"])),
    );
    check("UPDATE OR REPLACE t SET a = 1 WHERE id = 1", all_rows("t"));
    check(
        "UPDATE t INDEXED BY i SET a = 1 WHERE id = 1",
        rows_of("t", ids(&["1"])),
    );
    check(
        "UPDATE main.t SET a = 1 WHERE main.t.id = 1",
        rows_of("main.t", ids(&["1"])),
    );
    check(
        "UPDATE LOW_PRIORITY t SET a = 1 WHERE id = 2 LIMIT 1",
        rows_of("t", ids(&["2"])),
    );
}

#[test]
fn update_from() {
    check(
        "UPDATE songs SET x = a.y FROM authors a WHERE songs.id = 5 AND a.id = songs.author_id",
        rows_of("songs", ids(&["5"])),
    );
    check(
        "UPDATE songs SET x = a.y FROM authors a WHERE a.id = 5",
        all_rows("songs"),
    );
}

#[test]
fn update_assigning_the_key_moves_rows() {
    check_all(
        &[
            "UPDATE t SET id = 7 WHERE id = 5",
            "UPDATE t SET a = 1, t.id = 7 WHERE id = 5",
            "UPDATE t SET (a, id) = (1, 7) WHERE id = 5",
        ],
        all_rows("t"),
    );
}

#[test]
fn mysql_multi_table_update() {
    check(
        "UPDATE songs JOIN authors ON songs.author_id = authors.id SET songs.x = 1 WHERE songs.id = 1",
        writes(&[("songs", Rows::Unknown), ("authors", Rows::Unknown)]),
    );
    check(
        "UPDATE a, b AS bb SET a.x = bb.y WHERE a.id = bb.id",
        writes(&[("a", Rows::Unknown), ("b", Rows::Unknown)]),
    );
    check(
        "UPDATE a JOIN (SELECT id FROM c) AS d USING (id) SET a.x = 1",
        all_rows("a"),
    );
}

#[test]
fn update_unreadable() {
    check_all(
        &[
            "UPDATE SET a = 1",
            "UPDATE t",
            "UPDATE (a JOIN b) SET x = 1",
            "UPDATE",
        ],
        Effect::Unknown,
    );
}

#[test]
fn delete_clauses() {
    check(
        "DELETE FROM t WHERE id = 1 RETURNING *",
        rows_of("t", ids(&["1"])),
    );
    check(
        "DELETE FROM t WHERE id IN (1, 2) ORDER BY id LIMIT 1",
        rows_of("t", ids(&["1", "2"])),
    );
    check(
        "DELETE FROM ONLY t WHERE id = 1",
        writes(&[("only", Rows::Unknown), ("t", ids(&["1"]))]),
    );
    check(
        "DELETE FROM t AS x WHERE x.id = 1",
        rows_of("t", ids(&["1"])),
    );
    check("DELETE FROM t WHERE CURRENT OF c", all_rows("t"));
}

#[test]
fn delete_using() {
    check(
        "DELETE FROM songs USING authors WHERE songs.author_id = authors.id AND songs.id = 2",
        rows_of("songs", ids(&["2"])),
    );
    // MySQL: the target may be an alias declared in USING.
    check(
        "DELETE FROM s USING songs AS s JOIN authors a ON s.author_id = a.id",
        writes(&[("s", Rows::Unknown), ("songs", Rows::Unknown)]),
    );
    check(
        "DELETE FROM a, b USING a JOIN b ON a.id = b.id",
        writes(&[("a", Rows::Unknown), ("b", Rows::Unknown)]),
    );
}

#[test]
fn mysql_multi_table_delete() {
    check(
        "DELETE s FROM songs s JOIN authors a ON s.author_id = a.id WHERE a.id = 1",
        writes(&[("songs", Rows::Unknown), ("authors", Rows::Unknown)]),
    );
    check(
        "DELETE LOW_PRIORITY QUICK IGNORE FROM t WHERE id = 3",
        rows_of("t", ids(&["3"])),
    );
}

#[test]
fn delete_unreadable() {
    check_all(
        &[
            "DELETE FROM",
            "DELETE",
            "DELETE t WHERE id = 1",
            "DELETE FROM (SELECT 1)",
        ],
        Effect::Unknown,
    );
}

#[test]
fn merge() {
    check(
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT (id, a) VALUES (s.id, s.a)",
        all_rows("t"),
    );
    check(
        "MERGE INTO app.t AS x USING s ON x.id = s.id WHEN MATCHED THEN DELETE",
        all_rows("app.t"),
    );
    check_all(
        &["MERGE INTO", "MERGE INTO (SELECT 1) USING s ON true"],
        Effect::Unknown,
    );
}
