//! `WITH` and writes nested in queries (data-modifying CTEs) at any depth.

use super::*;

#[test]
fn data_modifying_ctes() {
    check(
        "WITH a AS (DELETE FROM x WHERE id = 1 RETURNING *), b AS (SELECT 1) INSERT INTO y SELECT * FROM a",
        writes(&[("x", ids(&["1"])), ("y", Rows::Unknown)]),
    );
    check(
        "WITH RECURSIVE a (n) AS NOT MATERIALIZED (UPDATE t SET c = 1 WHERE id = $1 RETURNING id) SELECT * FROM a",
        rows_of("t", ids(&["p0"])),
    );
    check(
        "WITH a AS (SELECT * FROM t WHERE x IN (WITH d AS (DELETE FROM x RETURNING id) SELECT id FROM d)) SELECT * FROM a",
        all_rows("x"),
    );
    check(
        "WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b (id) SELECT id FROM moved",
        writes(&[("a", Rows::Unknown), ("b", Rows::Unknown)]),
    );
}

#[test]
fn read_only_ctes() {
    check_all(
        &[
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
            "WITH a AS MATERIALIZED (SELECT 1), b AS (SELECT 2) SELECT * FROM a, b",
            "WITH RECURSIVE t(id) AS (SELECT 1) SEARCH DEPTH FIRST BY id SET ord SELECT * FROM t",
            "WITH a AS (SELECT 1) (SELECT * FROM a)",
            "WITH a AS (SELECT * FROM t FOR UPDATE) SELECT * FROM a",
        ],
        Effect::Read,
    );
    check_all(
        &[
            "WITH",
            "WITH a",
            "WITH a AS (SELECT 1)",
            "WITH a AS SELECT 1",
        ],
        Effect::Unknown,
    );
}

#[test]
fn nested_writes_in_queries() {
    check("SELECT * FROM (DELETE FROM x RETURNING *) d", all_rows("x"));
    check("(SELECT 1) UNION (SELECT 2)", Effect::Read);
    check("((((DELETE FROM x))))", all_rows("x"));
    check("SELECT INSERT('abc', 1, 1, 'x')", Effect::Read);
    check("SELECT (INSERT('abc', 1, 1, 'x'))", Effect::Read);
}
