//! What a statement reads ([`reads`]): tables at any depth, common table expressions, rows
//! pinned by the primary key, functions, the read side of writes, and the SQL SeaORM and
//! Diesel generate.

use querycache_sql::{ReadEffect, TableRead, UnknownRead, reads};

use super::*;

fn read(sql: &str) -> ReadEffect {
    reads(sql, &bound, &id_key)
}

/// Reads of these tables, in this order.
fn tables(list: &[(&str, Rows)]) -> ReadEffect {
    ReadEffect::Reads(
        list.iter()
            .map(|(name, rows)| TableRead {
                table: table(name),
                rows: rows.clone(),
            })
            .collect(),
    )
}

/// Whole-table reads of these tables, in this order.
fn whole(names: &[&str]) -> ReadEffect {
    let list: Vec<_> = names.iter().map(|name| (*name, Rows::Unknown)).collect();
    tables(&list)
}

fn nothing() -> ReadEffect {
    ReadEffect::Reads(Vec::new())
}

fn function(name: &str) -> ReadEffect {
    ReadEffect::Unknown(UnknownRead::Function(name.into()))
}

#[track_caller]
fn check_reads(sql: &str, expected: ReadEffect) {
    assert_eq!(read(sql), expected, "{sql}");
}

/// `effect` with its tables in name order.
fn sorted(effect: ReadEffect) -> ReadEffect {
    match effect {
        ReadEffect::Reads(mut list) => {
            list.sort_by(|a, b| {
                (&a.table.schema, &a.table.name).cmp(&(&b.table.schema, &b.table.name))
            });
            ReadEffect::Reads(list)
        }
        unknown => unknown,
    }
}

/// Checks the tables read, in any order.
#[track_caller]
fn check_reads_unordered(sqls: &[&str], expected: ReadEffect) {
    for sql in sqls {
        assert_eq!(sorted(read(sql)), sorted(expected.clone()), "{sql}");
    }
}

#[track_caller]
fn check_reads_all(sqls: &[&str], expected: ReadEffect) {
    for sql in sqls {
        check_reads(sql, expected.clone());
    }
}

#[test]
fn from_lists_and_joins() {
    check_reads("SELECT * FROM songs", whole(&["songs"]));
    check_reads_all(
        &[
            "SELECT * FROM songs, users",
            "SELECT * FROM songs s, users AS u WHERE s.user_id = u.id",
            "SELECT * FROM songs JOIN users ON songs.user_id = users.id",
            "SELECT * FROM songs INNER JOIN users USING (id)",
            "SELECT * FROM songs LEFT OUTER JOIN users ON true",
            "SELECT * FROM songs NATURAL JOIN users",
            "SELECT * FROM songs CROSS JOIN users",
            "SELECT * FROM songs STRAIGHT_JOIN users",
            "SELECT * FROM (songs JOIN users ON songs.user_id = users.id)",
            "SELECT * FROM ((songs) JOIN (users) ON (songs.user_id = users.id))",
            "SELECT * FROM songs, users, songs",
            "SELECT * FROM songs s RIGHT JOIN users u ON s.user_id = u.id ORDER BY s.id LIMIT 5",
        ],
        whole(&["songs", "users"]),
    );
    check_reads(
        "SELECT * FROM a JOIN b ON a.x = b.x LEFT JOIN c ON c.y = b.y FULL JOIN d USING (z), e",
        whole(&["a", "b", "c", "d", "e"]),
    );
}

#[test]
fn names_are_folded_as_table_names_are() {
    check_reads_all(
        &[
            r#"SELECT * FROM "app"."Songs""#,
            r#"SELECT * FROM App."Songs" AS s"#,
            "SELECT * FROM app.`Songs`",
            "SELECT * FROM [app].[Songs]",
        ],
        whole(&["app.Songs"]),
    );
    check_reads("SELECT * FROM SONGS", whole(&["songs"]));
    check_reads(
        "SELECT * FROM db.app.songs",
        whole(&["app.songs"]), // catalog dropped, as the write side does
    );
    check_reads(
        "SELECT * FROM ONLY songs",
        // MySQL and SQLite read `only` as the table (`FROM only o`), as the write side does.
        whole(&["only", "songs"]),
    );
}

#[test]
fn subqueries_at_any_depth() {
    check_reads_unordered(
        &[
            "SELECT * FROM (SELECT * FROM songs) s JOIN users ON true",
            "SELECT (SELECT count(*) FROM songs), name FROM users",
            "SELECT * FROM users WHERE id IN (SELECT user_id FROM songs)",
            "SELECT * FROM users WHERE EXISTS (SELECT 1 FROM songs WHERE songs.user_id = users.id)",
            "SELECT * FROM users WHERE NOT EXISTS (SELECT 1 FROM (SELECT * FROM (SELECT user_id FROM songs) a) b)",
            "SELECT * FROM users WHERE id = ANY (SELECT user_id FROM songs)",
            "SELECT * FROM users GROUP BY id HAVING count(*) > (SELECT count(*) FROM songs)",
            "SELECT * FROM users ORDER BY (SELECT max(plays) FROM songs WHERE user_id = users.id)",
            "SELECT * FROM users, LATERAL (SELECT * FROM songs WHERE songs.user_id = users.id) s",
            "SELECT * FROM users u LEFT JOIN LATERAL (SELECT * FROM songs) s ON true",
            "SELECT * FROM users WHERE id IN ((SELECT user_id FROM songs))",
            "SELECT ARRAY(SELECT id FROM songs) FROM users",
            "SELECT * FROM users JOIN songs ON songs.id = (SELECT max(id) FROM songs)",
            "SELECT coalesce((SELECT title FROM songs LIMIT 1), name) FROM users",
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM songs) THEN 1 END FROM users",
        ],
        whole(&["songs", "users"]),
    );
}

#[test]
fn set_operations() {
    check_reads_all(
        &[
            "SELECT id FROM songs UNION SELECT id FROM users",
            "SELECT id FROM songs UNION ALL SELECT id FROM users ORDER BY 1 LIMIT 3",
            "SELECT id FROM songs INTERSECT SELECT id FROM users",
            "SELECT id FROM songs EXCEPT DISTINCT SELECT id FROM users",
            "(SELECT id FROM songs) UNION (SELECT id FROM users) ORDER BY id",
            "((SELECT id FROM songs)) UNION ((SELECT id FROM users))",
            "SELECT id FROM songs UNION TABLE users",
            "SELECT * FROM (SELECT id FROM songs UNION SELECT id FROM users) AS u",
        ],
        whole(&["songs", "users"]),
    );
    check_reads("VALUES (1), (2)", nothing());
    check_reads("VALUES (1, (SELECT max(id) FROM songs))", whole(&["songs"]));
    check_reads("TABLE songs", whole(&["songs"]));
    // Each term of a set operation pins its own table.
    check_reads(
        "SELECT * FROM songs WHERE id = 1 UNION SELECT * FROM songs WHERE id = 2",
        tables(&[("songs", ids(&["1", "2"]))]),
    );
    check_reads(
        "SELECT 1 UNION",
        ReadEffect::Unknown(UnknownRead::Unparsable),
    );
}

#[test]
fn common_table_expressions_are_not_tables() {
    check_reads_all(
        &[
            "WITH s AS (SELECT * FROM songs) SELECT * FROM s",
            "WITH s (id, title) AS (SELECT id, title FROM songs) SELECT * FROM s WHERE s.id = 1",
            "WITH s AS MATERIALIZED (SELECT * FROM songs), t AS (SELECT * FROM s) SELECT * FROM t",
            "WITH s AS (SELECT * FROM songs) SELECT * FROM s a, s b",
            "WITH s AS (SELECT * FROM songs) (SELECT * FROM s)",
            "WITH s AS (SELECT * FROM songs) SELECT * FROM (WITH t AS (SELECT 1) SELECT * FROM s, t) x",
            "WITH s AS (SELECT * FROM songs) TABLE s",
        ],
        whole(&["songs"]),
    );
    check_reads(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
        nothing(),
    );
    check_reads(
        "WITH RECURSIVE tree AS (SELECT id, parent_id FROM nodes WHERE id = $1 UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN tree t ON n.parent_id = t.id) SELECT * FROM tree",
        whole(&["nodes"]), // pinned in the first term, not in the second
    );
    // A qualified name is a table, whatever the CTEs are called.
    check_reads(
        "WITH songs AS (SELECT 1) SELECT * FROM app.songs, songs",
        whole(&["app.songs"]),
    );
    // Without RECURSIVE, a body's own name (or a later one) is a table (MySQL and PostgreSQL
    // read it so): reported, at worst a dependency on a table that does not change.
    check_reads(
        "WITH songs AS (SELECT * FROM songs WHERE id = 1) SELECT * FROM songs",
        tables(&[("songs", ids(&["1"]))]),
    );
    check_reads(
        "WITH a AS (SELECT * FROM b), b AS (SELECT * FROM t) SELECT * FROM a",
        whole(&["b", "t"]),
    );
    // The scope ends with the query that declares it.
    check_reads(
        "SELECT * FROM (WITH s AS (SELECT 1) SELECT * FROM s) x, s",
        whole(&["s"]),
    );
    // Writes in CTEs: their targets and what they read.
    check_reads(
        "WITH moved AS (DELETE FROM old WHERE id = 1 RETURNING *) INSERT INTO archive SELECT * FROM moved",
        whole(&["old", "archive"]),
    );
    check_reads(
        "WITH RECURSIVE t(id) AS (SELECT 1) SEARCH DEPTH FIRST BY id SET ord SELECT * FROM t",
        nothing(),
    );
    check_reads(
        "WITH a AS (SELECT 1)",
        ReadEffect::Unknown(UnknownRead::Unparsable),
    );
}

#[test]
fn a_pinned_primary_key_reads_those_rows() {
    let one = tables(&[("songs", ids(&["1"]))]);
    check_reads_all(
        &[
            "SELECT * FROM songs WHERE id = 1",
            "SELECT * FROM songs WHERE (id = 1)",
            "SELECT * FROM songs WHERE 1 = id",
            "SELECT * FROM songs WHERE songs.id = 1",
            "SELECT * FROM songs s WHERE s.id = 1",
            "SELECT * FROM songs AS s WHERE s.id = 1 AND s.plays > 3",
            "SELECT * FROM songs WHERE id = 1 ORDER BY title LIMIT 1 OFFSET 0",
            "SELECT * FROM songs WHERE id = 1 GROUP BY title HAVING count(*) > 0",
            "SELECT * FROM songs WHERE id = 1 FOR UPDATE",
            "SELECT count(*) FROM songs WHERE id = '1'",
            "SELECT * FROM songs WHERE id == 1",
            "SELECT * FROM songs WHERE plays > 3 AND (id = 1 AND title LIKE 'a%')",
        ],
        one,
    );
    check_reads(
        "SELECT * FROM app.songs WHERE app.songs.id IN (1, 2, 1)",
        tables(&[("app.songs", ids(&["1", "2"]))]),
    );
    check_reads(
        "SELECT * FROM songs WHERE id = $2",
        tables(&[("songs", ids(&["p1"]))]),
    );
    // Not pinned: another column, OR, ranges, expressions, an alias not used, a subquery.
    check_reads_all(
        &[
            "SELECT * FROM songs WHERE user_id = 1",
            "SELECT * FROM songs WHERE id = 1 OR id = 2",
            "SELECT * FROM songs WHERE id > 1",
            "SELECT * FROM songs WHERE id + 0 = 1",
            "SELECT * FROM songs s WHERE songs.id = 1",
            "SELECT * FROM songs WHERE other.id = 1",
            "SELECT * FROM songs WHERE id = '05'",
            "SELECT * FROM songs WHERE id IN (1, x)",
            "SELECT * FROM songs WHERE NOT id = 1",
            "SELECT * FROM songs",
            "SELECT * FROM songs GROUP BY id HAVING id = 1",
        ],
        whole(&["songs"]),
    );
    check_reads(
        "SELECT * FROM songs WHERE id = (SELECT song_id FROM plays WHERE id = 3)",
        tables(&[("songs", Rows::Unknown), ("plays", ids(&["3"]))]),
    );
    // Another key column.
    let slug = |t: &TableName| {
        if t.name == "posts" {
            vec!["slug".into()]
        } else {
            vec!["id".into()]
        }
    };
    assert_eq!(
        reads(
            "SELECT * FROM posts WHERE slug = 'hello' AND id = 3",
            &bound,
            &slug
        ),
        tables(&[("posts", ids(&["hello"]))])
    );
}

#[test]
fn with_joins_only_a_qualified_key_pins() {
    check_reads(
        "SELECT * FROM songs s JOIN users u ON s.user_id = u.id WHERE s.id = 7",
        tables(&[("songs", ids(&["7"])), ("users", Rows::Unknown)]),
    );
    check_reads(
        "SELECT * FROM songs JOIN users ON songs.user_id = users.id WHERE users.id IN (1, 2) AND songs.id = 3",
        tables(&[("songs", ids(&["3"])), ("users", ids(&["1", "2"]))]),
    );
    // Unqualified: which table's `id`?
    check_reads(
        "SELECT * FROM songs, users WHERE id = 7",
        whole(&["songs", "users"]),
    );
    check_reads(
        "WITH s AS (SELECT 1) SELECT * FROM songs, s WHERE id = 7",
        whole(&["songs"]),
    );
    check_reads(
        "SELECT * FROM songs, (SELECT 1) x WHERE id = 7",
        whole(&["songs"]),
    );
    // The same table twice: one unpinned read is the whole table.
    check_reads(
        "SELECT * FROM songs a JOIN songs b ON a.user_id = b.user_id WHERE a.id = 1",
        whole(&["songs"]),
    );
    check_reads(
        "SELECT * FROM songs a JOIN songs b ON a.user_id = b.user_id WHERE a.id = 1 AND b.id = 2",
        tables(&[("songs", ids(&["1", "2"]))]),
    );
}

/// A read's row tag and a write's row tag render identically.
#[test]
fn ids_render_as_the_write_side_renders_them() {
    let select = "SELECT * FROM songs WHERE id = ?";
    let update = "UPDATE songs SET title = 'x' WHERE id = ?";
    let texts = querycache_sql::NUMERIC_LOOKING_TEXT.iter().copied();
    for id in texts.chain(["5", "-5", "0", "abc", "Song-5", "e5"]) {
        let param = |_: usize| Some(Bound::Text(id.to_owned()));
        let read_rows = match reads(select, &param, &id_key) {
            ReadEffect::Reads(list) => list[0].rows.clone(),
            other => panic!("{other:?}"),
        };
        let write_rows = match classify(update, &param, &id_key) {
            Effect::Writes(list) => list[0].rows.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(read_rows, write_rows, "{id:?}");
    }
    for literal in ["5", "007", "-3", "'abc'", "'05'", "'5'"] {
        let select = format!("SELECT * FROM songs WHERE id = {literal}");
        let delete = format!("DELETE FROM songs WHERE id = {literal}");
        let ReadEffect::Reads(read_list) = read(&select) else {
            panic!("{select}")
        };
        let Effect::Writes(write_list) = run(&delete) else {
            panic!("{delete}")
        };
        assert_eq!(read_list[0].rows, write_list[0].rows, "{literal}");
    }
    let integer = |_: usize| Some(Bound::Integer(42));
    assert_eq!(
        reads(select, &integer, &id_key),
        tables(&[("songs", ids(&["42"]))])
    );
    assert_eq!(reads(select, &unbound, &id_key), whole(&["songs"]));
}

#[test]
fn built_in_functions_read_nothing() {
    check_reads_all(
        &[
            "SELECT count(*), sum(plays), avg(plays), min(id), max(id) FROM songs",
            "SELECT COALESCE(title, ''), lower(title), UPPER(title), length(title), substr(title, 1, 2) FROM songs",
            "SELECT CAST(plays AS numeric(10, 2)), plays::varchar(20), CAST(id AS CHAR(10)) FROM songs",
            "SELECT now(), current_timestamp, CURRENT_TIMESTAMP(3), date_trunc('day', created_at) FROM songs",
            "SELECT json_build_object('id', id), json_agg(title), jsonb_array_length(tags) FROM songs",
            "SELECT string_agg(title, ','), group_concat(title), array_agg(id ORDER BY id) FROM songs",
            "SELECT row_number() OVER (PARTITION BY user_id ORDER BY id), rank() OVER w FROM songs WINDOW w AS (ORDER BY id)",
            "SELECT abs(plays), round(plays, 2), EXTRACT(YEAR FROM created_at), SUBSTRING(title FROM 2 FOR 3) FROM songs",
            "SELECT TRIM(BOTH ' ' FROM title), POSITION('a' IN title), count(*) FILTER (WHERE plays > 0) FROM songs",
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY plays) FROM songs",
            "SELECT pg_catalog.lower(title), random(), gen_random_uuid() FROM songs",
            "SELECT IF(plays > 0, 'a', 'b'), IFNULL(title, ''), DATE_FORMAT(created_at, '%Y'), LEFT(title, 3) FROM songs",
            "SELECT strftime('%Y', created_at), julianday(created_at), typeof(id), iif(id, 1, 2) FROM songs",
            "SELECT * FROM songs WHERE MATCH (title) AGAINST ('x' IN BOOLEAN MODE)",
            "SELECT * FROM songs WHERE title IS DISTINCT FROM (SELECT 'x') AND tags @> ARRAY['a']",
            "SELECT * FROM songs WHERE (id, user_id) IN ((1, 2)) AND ROW(id) IS NOT NULL",
            "SELECT * FROM songs GROUP BY GROUPING SETS ((user_id), ()) , ROLLUP (title)",
            "SELECT DISTINCT ON (user_id) * FROM songs",
            "SELECT * FROM songs TABLESAMPLE SYSTEM (10) REPEATABLE (1)",
            "SELECT * FROM songs USE INDEX (by_title) WHERE title > 'a'",
            "SELECT * FROM songs PARTITION (p0) s",
            "SELECT SUBSTRING(title FROM (1) FOR (2)), TRIM(LEADING ('x') FROM title) FROM songs",
            "SELECT created_at AT TIME ZONE ('UTC'), OVERLAY(title PLACING 'x' FROM 1) FROM songs",
            "SELECT * FROM songs FORCE INDEX FOR ORDER BY (by_title)",
        ],
        whole(&["songs"]),
    );
    check_reads("SELECT 1", nothing());
    check_reads("SELECT now()", nothing());
    check_reads("SELECT * FROM generate_series(1, 10) AS g(n)", nothing());
    check_reads_unordered(
        &[
            "SELECT * FROM songs, json_each(songs.tags)",
            "SELECT * FROM songs CROSS JOIN LATERAL jsonb_array_elements(songs.tags) WITH ORDINALITY AS t(tag, n)",
            "SELECT * FROM songs, unnest(songs.tags) tag",
            "SELECT * FROM songs, JSON_TABLE(songs.doc, '$[*]' COLUMNS (id INT PATH '$.id', name VARCHAR(20) PATH '$.n')) AS jt",
        ],
        whole(&["songs"]),
    );
    check_reads(
        "SELECT name FROM pragma_table_info('Songs')",
        whole(&["songs"]),
    );
}

#[test]
fn unknown_functions_fail_safe() {
    check_reads("SELECT my_func(id) FROM songs", function("my_func"));
    check_reads("SELECT * FROM songs WHERE visible(id)", function("visible"));
    check_reads("SELECT app.score(id) FROM songs", function("app.score"));
    check_reads(r#"SELECT "Score"(id) FROM songs"#, function("Score"));
    check_reads("SELECT * FROM songs_for(1)", function("songs_for"));
    check_reads(
        "SELECT * FROM app.songs_for(1) s",
        function("app.songs_for"),
    );
    check_reads(
        "SELECT * FROM songs JOIN users ON users.id = owner_of(songs.id)",
        function("owner_of"),
    );
    check_reads(
        "SELECT * FROM songs WHERE id IN (SELECT f(x) FROM t)",
        function("f"),
    );
    check_reads(
        "SELECT * FROM pragma_table_info(name)",
        function("pragma_table_info"),
    );
    // Side effects or session state: never cacheable as plain reads.
    for (sql, name) in [
        ("SELECT nextval('songs_id_seq')", "nextval"),
        ("SELECT setval('songs_id_seq', 1)", "setval"),
        ("SELECT currval('songs_id_seq')", "currval"),
        ("SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
        (
            "SELECT pg_try_advisory_xact_lock(1)",
            "pg_try_advisory_xact_lock",
        ),
        ("SELECT set_config('a', 'b', true)", "set_config"),
        ("SELECT pg_sleep(1)", "pg_sleep"),
        ("SELECT SLEEP(1)", "sleep"),
        ("SELECT LAST_INSERT_ID()", "last_insert_id"),
        ("SELECT last_insert_rowid()", "last_insert_rowid"),
        ("SELECT changes()", "changes"),
        ("SELECT GET_LOCK('a', 1)", "get_lock"),
        ("SELECT pg_notify('c', 'x')", "pg_notify"),
        ("SELECT lo_import('/etc/passwd')", "lo_import"),
        ("SELECT dblink('x', 'SELECT 1')", "dblink"),
        ("SELECT other.lower(title) FROM songs", "other.lower"),
    ] {
        check_reads(sql, function(name));
    }
    let why = match read("SELECT refresh()") {
        ReadEffect::Unknown(why) => why.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(why, "calls `refresh`, whose effect is not known");
}

#[test]
fn the_read_side_of_writes() {
    // The targets are read whole: RETURNING, a row count or a conflict depends on them.
    check_reads(
        "INSERT INTO archive (id, title) SELECT id, title FROM songs WHERE id = 1",
        tables(&[("archive", Rows::Unknown), ("songs", ids(&["1"]))]),
    );
    check_reads(
        "INSERT INTO archive SELECT * FROM songs JOIN users ON true ON CONFLICT (id) DO NOTHING RETURNING id",
        whole(&["archive", "songs", "users"]),
    );
    check_reads(
        "INSERT INTO archive (SELECT * FROM songs)",
        whole(&["archive", "songs"]),
    );
    check_reads(
        "INSERT INTO archive WITH s AS (SELECT * FROM songs) SELECT * FROM s",
        whole(&["archive", "songs"]),
    );
    check_reads(
        "INSERT INTO songs (id, title) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET title = excluded.title RETURNING id",
        whole(&["songs"]),
    );
    check_reads(
        "INSERT INTO songs (user_id) VALUES ((SELECT id FROM users WHERE id = 2))",
        tables(&[("songs", Rows::Unknown), ("users", ids(&["2"]))]),
    );
    check_reads(
        "INSERT INTO songs SET title = 'x' ON DUPLICATE KEY UPDATE title = VALUES(title)",
        whole(&["songs"]),
    );
    check_reads(
        "UPDATE songs SET plays = plays + 1 WHERE id = 1 RETURNING plays",
        whole(&["songs"]),
    );
    check_reads(
        "UPDATE songs s SET title = u.name FROM users u WHERE s.user_id = u.id",
        whole(&["songs", "users"]),
    );
    check_reads(
        "UPDATE songs SET title = (SELECT name FROM users WHERE users.id = songs.user_id)",
        whole(&["songs", "users"]),
    );
    check_reads(
        "UPDATE songs s JOIN users u ON s.user_id = u.id SET s.title = u.name",
        whole(&["songs", "users"]),
    );
    check_reads(
        "DELETE FROM songs WHERE user_id IN (SELECT id FROM users WHERE banned)",
        whole(&["songs", "users"]),
    );
    check_reads(
        "DELETE FROM songs USING users WHERE songs.user_id = users.id",
        whole(&["songs", "users"]),
    );
    check_reads(
        "DELETE s FROM songs s JOIN users u ON s.user_id = u.id",
        whole(&["songs", "users"]),
    );
    check_reads(
        "MERGE INTO songs t USING staged s ON t.id = s.id WHEN MATCHED THEN UPDATE SET title = s.title WHEN NOT MATCHED THEN INSERT (id, title) VALUES (s.id, s.title)",
        whole(&["songs", "staged"]),
    );
    check_reads(
        "MERGE INTO songs USING (SELECT * FROM staged) s ON songs.id = s.id WHEN MATCHED THEN DELETE",
        whole(&["songs", "staged"]),
    );
    check_reads("REPLACE INTO songs (id) VALUES (1)", whole(&["songs"]));
    check_reads("UPDATE songs SET plays = bump(plays)", function("bump"));
}

#[test]
fn statements_that_read_nothing_or_are_unknown() {
    check_reads_all(
        &[
            "",
            "  -- nothing",
            "BEGIN",
            "BEGIN ISOLATION LEVEL SERIALIZABLE",
            "START TRANSACTION READ ONLY",
            "COMMIT",
            "ROLLBACK TO SAVEPOINT a",
            "SAVEPOINT a",
            "RELEASE SAVEPOINT a",
            "SET search_path TO app, public",
            "SET LOCAL statement_timeout = '5s'",
            "SET NAMES utf8mb4",
            "RESET ALL",
            "BEGIN; SELECT 1; COMMIT",
        ],
        nothing(),
    );
    check_reads("SET @n = (SELECT count(*) FROM songs)", whole(&["songs"]));
    check_reads(
        "BEGIN; SELECT * FROM songs WHERE id = 1; SELECT * FROM users; COMMIT",
        tables(&[("songs", ids(&["1"])), ("users", Rows::Unknown)]),
    );
    check_reads(
        "EXPLAIN ANALYZE SELECT * FROM songs WHERE id = 1",
        tables(&[("songs", ids(&["1"]))]),
    );
    check_reads(
        "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM songs",
        whole(&["songs"]),
    );
    check_reads("DESCRIBE songs", whole(&["songs"]));
    for (sql, verb) in [
        ("CALL refresh()", "CALL"),
        ("EXECUTE stmt(1)", "EXECUTE"),
        ("SHOW TABLES", "SHOW"),
        ("PRAGMA table_info(songs)", "PRAGMA"),
        ("CREATE TABLE t AS SELECT * FROM songs", "CREATE"),
        ("DO $$ BEGIN PERFORM 1; END $$", "DO"),
        ("EXPLAIN EXECUTE stmt", "EXECUTE"),
        ("COPY songs TO STDOUT", "COPY"),
    ] {
        check_reads(
            sql,
            ReadEffect::Unknown(UnknownRead::Statement(verb.into())),
        );
    }
    for sql in [
        "SELECT 'unterminated",
        "SELECT (1",
        "SELECT 1)",
        "SELECT * FROM",
        "SELECT * FROM 1",
        "BEGIN NOT ATOMIC SELECT 1; END",
    ] {
        check_reads(sql, ReadEffect::Unknown(UnknownRead::Unparsable));
    }
}

#[test]
fn dialects_are_unioned() {
    check_reads(
        "SELECT * FROM `songs` WHERE `id` = 1",
        tables(&[("songs", ids(&["1"]))]),
    );
    // MySQL reads `#` as a comment, the others as an operator: both readings count.
    check_reads(
        "SELECT * FROM songs # , users\n",
        whole(&["songs", "users"]),
    );
    // A MySQL backslash escape hides a table from the other lexings.
    check_reads(
        r"SELECT 'a\', (SELECT 1 FROM users) -- '",
        whole(&["users"]),
    );
    check_reads(
        "SELECT * FROM songs WHERE id = :id",
        whole(&["songs"]), // SQLite named parameters are never ids
    );
    check_reads(
        "SELECT * FROM [songs] WHERE [songs].[id] = ?1",
        tables(&[("songs", ids(&["p0"]))]),
    );
    check_reads(
        "SELECT * FROM songs INDEXED BY by_title WHERE id = 3",
        tables(&[("songs", ids(&["3"]))]),
    );
}

/// SQL generated by SeaORM (PostgreSQL and SQLite/MySQL placeholders).
#[test]
fn sea_orm_queries() {
    // find_by_id
    check_reads(
        r#"SELECT "songs"."id", "songs"."title" FROM "songs" WHERE "songs"."id" = $1 LIMIT $2"#,
        tables(&[("songs", ids(&["p0"]))]),
    );
    check_reads(
        "SELECT `songs`.`id`, `songs`.`title` FROM `songs` WHERE `songs`.`id` = ? LIMIT ?",
        tables(&[("songs", ids(&["p0"]))]),
    );
    // find().filter(...).all()
    check_reads(
        r#"SELECT "songs"."id" FROM "songs" WHERE "songs"."title" LIKE $1 AND "songs"."plays" > $2 ORDER BY "songs"."id" ASC"#,
        whole(&["songs"]),
    );
    // find_with_related / find_also_related
    check_reads(
        r#"SELECT "songs"."id" AS "A_id", "songs"."title" AS "A_title", "users"."id" AS "B_id", "users"."name" AS "B_name" FROM "songs" LEFT JOIN "users" ON "songs"."user_id" = "users"."id" ORDER BY "songs"."id" ASC, "users"."id" ASC"#,
        whole(&["songs", "users"]),
    );
    check_reads(
        r#"SELECT "songs"."id" AS "A_id", "users"."id" AS "B_id" FROM "songs" LEFT JOIN "users" ON "songs"."user_id" = "users"."id" WHERE "songs"."id" = $1"#,
        tables(&[("songs", ids(&["p0"])), ("users", Rows::Unknown)]),
    );
    // loader load_many: the related rows by foreign key
    check_reads(
        r#"SELECT "posts"."id", "posts"."user_id" FROM "posts" WHERE "posts"."user_id" IN ($1, $2)"#,
        whole(&["posts"]),
    );
    // load by primary keys
    check_reads(
        r#"SELECT "users"."id", "users"."name" FROM "users" WHERE "users"."id" IN ($1, $2, $3)"#,
        tables(&[("users", ids(&["p0", "p1", "p2"]))]),
    );
    // LoaderTrait::load_one by primary key on PostgreSQL: a one-column row value
    // `(key) IN ((v), ...)`, which pins the rows as `key IN (v, ...)` does
    check_reads(
        r#"SELECT "users"."id", "users"."name" FROM "users" WHERE ("users"."id") IN (($1), ($2))"#,
        tables(&[("users", ids(&["p0", "p1"]))]),
    );
    check_reads(
        r#"SELECT "users"."id" FROM "users" WHERE ("users"."id") = ($1)"#,
        tables(&[("users", ids(&["p0"]))]),
    );
    // ...but not a row value of several columns, nor a value that is not an id
    check_reads_all(
        &[
            r#"SELECT "users"."id" FROM "users" WHERE ("users"."id", "users"."org") IN (($1, $2))"#,
            r#"SELECT "users"."id" FROM "users" WHERE ("users"."id") IN (($1), ("users"."org"))"#,
            r#"SELECT "users"."id" FROM "users" WHERE ("users"."id") IN ((SELECT 1), ($1))"#,
        ],
        whole(&["users"]),
    );
    // paginator num_items, and .count()
    check_reads(
        r#"SELECT COUNT(*) AS num_items FROM (SELECT "songs"."id" FROM "songs" WHERE "songs"."user_id" = $1) AS "sub_query""#,
        whole(&["songs"]),
    );
    check_reads(
        r#"SELECT COUNT(*) AS num_items FROM (SELECT "songs"."id" FROM "songs" WHERE "songs"."id" = $1) AS "sub_query""#,
        tables(&[("songs", ids(&["p0"]))]),
    );
    // many-to-many through a junction table
    check_reads(
        r#"SELECT "tags"."id", "tags"."name" FROM "tags" INNER JOIN "song_tags" ON "song_tags"."tag_id" = "tags"."id" INNER JOIN "songs" ON "songs"."id" = "song_tags"."song_id" WHERE "songs"."id" = $1"#,
        tables(&[
            ("tags", Rows::Unknown),
            ("song_tags", Rows::Unknown),
            ("songs", ids(&["p0"])),
        ]),
    );
    // cursor pagination
    check_reads(
        r#"SELECT "songs"."id" FROM "songs" WHERE ("songs"."id" > $1) ORDER BY "songs"."id" ASC LIMIT $2"#,
        whole(&["songs"]),
    );
    // find().one() with a limit
    check_reads(
        r#"SELECT "songs"."id" FROM "songs" LIMIT $1"#,
        whole(&["songs"]),
    );
}

/// SQL generated by Diesel (PostgreSQL, MySQL and SQLite backends).
#[test]
fn diesel_queries() {
    // find / filter(id.eq(..)).first(): parenthesised condition
    check_reads(
        r#"SELECT "songs"."id", "songs"."title" FROM "songs" WHERE ("songs"."id" = $1) LIMIT $2"#,
        tables(&[("songs", ids(&["p0"]))]),
    );
    check_reads(
        "SELECT `songs`.`id`, `songs`.`title` FROM `songs` WHERE (`songs`.`id` = ?) LIMIT ?",
        tables(&[("songs", ids(&["p0"]))]),
    );
    // filter(id.eq_any(..)): PostgreSQL sends `= ANY($1)`, an array: not narrowed
    check_reads(
        r#"SELECT "songs"."id" FROM "songs" WHERE ("songs"."id" = ANY($1))"#,
        whole(&["songs"]),
    );
    // ...unless the array is bound: its elements are the ids, when each is one
    let array = |items: Vec<Bound>| move |i: usize| (i == 0).then(|| Bound::List(items.clone()));
    let any = r#"SELECT "songs"."id" FROM "songs" WHERE ("songs"."id" = ANY($1))"#;
    let ints = vec![Bound::Integer(1), Bound::Integer(2)];
    assert_eq!(
        reads(any, &array(ints.clone()), &id_key),
        tables(&[("songs", ids(&["1", "2"]))])
    );
    assert_eq!(
        reads(
            r#"SELECT "songs"."id" FROM "songs" WHERE "songs"."id" = SOME (($1))"#,
            &array(ints),
            &id_key
        ),
        tables(&[("songs", ids(&["1", "2"]))])
    );
    for not_ids in [
        vec![],
        vec![Bound::Integer(1), Bound::Text("05".into())],
        vec![Bound::List(vec![Bound::Integer(1)])],
    ] {
        assert_eq!(reads(any, &array(not_ids), &id_key), whole(&["songs"]));
    }
    // an array compared the other way round, or a subquery, is not narrowed
    let ints = vec![Bound::Integer(1)];
    for sql in [
        r#"SELECT "songs"."id" FROM "songs" WHERE ($1 = ANY("songs"."id"))"#,
        r#"SELECT "songs"."id" FROM "songs" WHERE "songs"."id" = ANY($1) + 0"#,
        r#"SELECT "songs"."id" FROM "songs" WHERE "songs"."id" = ALL($1)"#,
    ] {
        assert_eq!(
            reads(sql, &array(ints.clone()), &id_key),
            whole(&["songs"]),
            "{sql}"
        );
    }
    check_reads(
        r#"SELECT `songs`.`id` FROM `songs` WHERE (`songs`.`id` IN (?, ?))"#,
        tables(&[("songs", ids(&["p0", "p1"]))]),
    );
    // inner_join / left_join: parenthesised joins
    check_reads(
        r#"SELECT "songs"."id", "users"."name" FROM ("songs" INNER JOIN "users" ON ("songs"."user_id" = "users"."id")) WHERE ("songs"."id" = $1)"#,
        tables(&[("songs", ids(&["p0"])), ("users", Rows::Unknown)]),
    );
    check_reads(
        r#"SELECT "songs"."id" FROM (("songs" LEFT OUTER JOIN "users" ON ("songs"."user_id" = "users"."id")) INNER JOIN "albums" ON ("songs"."album_id" = "albums"."id"))"#,
        whole(&["songs", "users", "albums"]),
    );
    // belonging_to
    check_reads(
        r#"SELECT "posts"."id", "posts"."user_id" FROM "posts" WHERE ("posts"."user_id" = $1)"#,
        whole(&["posts"]),
    );
    check_reads(
        r#"SELECT "posts"."id" FROM "posts" WHERE ("posts"."user_id" IN ($1, $2))"#,
        whole(&["posts"]),
    );
    // boxed queries with several filters, count, exists
    check_reads(
        r#"SELECT "songs"."id" FROM "songs" WHERE (("songs"."plays" > $1) AND ("songs"."id" = $2)) ORDER BY "songs"."title" LIMIT $3 OFFSET $4"#,
        tables(&[("songs", ids(&["p1"]))]),
    );
    check_reads(
        r#"SELECT COUNT(*) FROM "songs" WHERE ("songs"."user_id" = $1)"#,
        whole(&["songs"]),
    );
    check_reads(
        r#"SELECT EXISTS (SELECT "songs"."id" FROM "songs" WHERE ("songs"."id" = $1))"#,
        tables(&[("songs", ids(&["p0"]))]),
    );
    // sql_query with a schema
    check_reads(
        r#"SELECT * FROM "app"."songs" WHERE "app"."songs"."id" = $1"#,
        tables(&[("app.songs", ids(&["p0"]))]),
    );
}
