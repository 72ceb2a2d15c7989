//! Which rows a write touches: primary-key values from `WHERE` clauses and bound or literal
//! keys, and when text is no id.

use super::*;

/// Bound text goes through the rule string literals follow: SQLite and MySQL read text
/// that looks like a number as that number when it meets an integer key.
#[test]
fn bound_text_that_may_read_as_another_number_is_no_id() {
    let sql = "UPDATE songs SET title = ? WHERE id = ?";
    let with = |id: &str| {
        let id = id.to_owned();
        move |i: usize| Some(Bound::Text(if i == 1 { id.clone() } else { "x".into() }))
    };
    for &id in querycache_sql::NUMERIC_LOOKING_TEXT {
        assert_eq!(
            classify(sql, &with(id), &id_key),
            all_rows("songs"),
            "{id:?}"
        );
    }
    for id in ["5", "-5", "0", "123456789012345", "abc", "Song-5", "e5"] {
        assert_eq!(
            classify(sql, &with(id), &id_key),
            rows_of("songs", ids(&[id])),
            "{id:?}"
        );
    }
    let integer = |i: usize| Some(Bound::Integer(if i == 1 { 5 } else { 0 }));
    assert_eq!(
        classify(sql, &integer, &id_key),
        rows_of("songs", ids(&["5"]))
    );
    // The same rule for literals.
    check("DELETE FROM songs WHERE id = '05'", all_rows("songs"));
    check("DELETE FROM songs WHERE id = '5abc'", all_rows("songs"));
    check(
        "DELETE FROM songs WHERE id = '9007199254740993'",
        all_rows("songs"),
    );
    check(
        "DELETE FROM songs WHERE id = '5'",
        rows_of("songs", ids(&["5"])),
    );
}

#[test]
fn where_shapes_that_narrow() {
    let one = rows_of("t", ids(&["1"]));
    check_all(
        &[
            "DELETE FROM t WHERE id = 1",
            "DELETE FROM t WHERE (id = 1)",
            "DELETE FROM t WHERE ((id = 1))",
            "DELETE FROM t WHERE 1 = id",
            "DELETE FROM t WHERE id == 1",
            "DELETE FROM t WHERE id=1",
            "DELETE FROM t WHERE t.id = 1",
            "DELETE FROM t WHERE id = 1 AND x > 2",
            "DELETE FROM t WHERE x > 2 AND id = 1",
            "DELETE FROM t WHERE x BETWEEN 1 AND 2 AND id = 1",
            "DELETE FROM t WHERE id = 1 AND (a OR b)",
            "DELETE FROM t WHERE (a = 2 AND id = 1) AND b = 3",
            "DELETE FROM t WHERE id = 1 AND CASE WHEN a OR b THEN 1 END = 1",
            "DELETE FROM t WHERE id = 001",
            "DELETE FROM t WHERE id = '1'",
            "DELETE FROM t WHERE id IN (1)",
        ],
        one,
    );
    check("DELETE FROM t WHERE id = -3", rows_of("t", ids(&["-3"])));
    check(
        "DELETE FROM t WHERE id = 'a''b'",
        rows_of("t", ids(&["a'b"])),
    );
    check(
        r"DELETE FROM t WHERE id = E'a\'b'",
        rows_of("t", ids(&["a'b"])),
    );
    check("DELETE FROM t WHERE id IN ()", rows_of("t", ids(&[])));
    check(
        "DELETE FROM t WHERE (id IN ('a', 'b'))",
        rows_of("t", ids(&["a", "b"])),
    );
}

#[test]
fn where_shapes_that_do_not_narrow() {
    check_all(
        &[
            "DELETE FROM t WHERE id = 1 OR id = 2",
            "DELETE FROM t WHERE id = 1 AND a OR b",
            "DELETE FROM t WHERE a OR b AND id = 1",
            "DELETE FROM t WHERE id = 1 XOR a",
            "DELETE FROM t WHERE id = 1 AND a || b",
            "DELETE FROM t WHERE id > 1",
            "DELETE FROM t WHERE id <> 1",
            "DELETE FROM t WHERE id != 1",
            "DELETE FROM t WHERE NOT id = 1",
            "DELETE FROM t WHERE id NOT IN (1, 2)",
            "DELETE FROM t WHERE id IN (SELECT id FROM u)",
            "DELETE FROM t WHERE id IN (1, x)",
            "DELETE FROM t WHERE id = 1 + 1",
            "DELETE FROM t WHERE id = 1.0",
            "DELETE FROM t WHERE id = 1e3",
            "DELETE FROM t WHERE id = 0x10",
            "DELETE FROM t WHERE id = '01'",
            "DELETE FROM t WHERE id = ' 1'",
            "DELETE FROM t WHERE id = 'a '",
            "DELETE FROM t WHERE id = ''",
            "DELETE FROM t WHERE id = '1'::int",
            "DELETE FROM t WHERE id = ? COLLATE nocase",
            "DELETE FROM t WHERE id = other_column",
            "DELETE FROM t WHERE id = NULL",
            "DELETE FROM t WHERE id IS 1",
            "DELETE FROM t WHERE x BETWEEN 1 AND id = 5",
            "DELETE FROM t WHERE CASE WHEN a AND id = 5 AND b THEN 1 END = 1",
            "DELETE FROM t WHERE author_id = 1",
            "DELETE FROM t WHERE u.t.id = 1",
            "DELETE FROM t WHERE x.y.t.id = 1",
            "DELETE FROM t WHERE",
            // MySQL reads `$q$x$q$` as a column name.
            "DELETE FROM t WHERE id = $q$x$q$",
        ],
        all_rows("t"),
    );
}

#[test]
fn custom_primary_key() {
    let key = |t: &TableName| vec![if t.name == "songs" { "song_id" } else { "id" }.to_string()];
    assert_eq!(
        classify("DELETE FROM songs WHERE song_id = 4", &bound, &key),
        rows_of("songs", ids(&["4"]))
    );
    assert_eq!(
        classify("DELETE FROM songs WHERE id = 4", &bound, &key),
        all_rows("songs")
    );
    assert_eq!(
        classify(r#"INSERT INTO songs ("song_id") VALUES (?)"#, &bound, &key),
        rows_of("songs", ids(&["p0"]))
    );
}

#[test]
fn schema_qualified_names() {
    check(
        r#"DELETE FROM "app"."songs" WHERE "app"."songs"."id" = 1"#,
        rows_of("app.songs", ids(&["1"])),
    );
    check(
        "DELETE FROM main.songs WHERE songs.id = 2",
        rows_of("main.songs", ids(&["2"])),
    );
    check(
        "DELETE FROM main.songs WHERE other.songs.id = 2",
        all_rows("main.songs"),
    );
    check(
        "DELETE FROM songs WHERE main.songs.id = 2",
        all_rows("songs"),
    );
    check("DELETE FROM db.app.songs", all_rows("app.songs"));
}

/// PostgreSQL's `key = ANY($1)` (Diesel's `eq_any`) with the array bound: its elements are
/// the rows written, when each is an id; a one-column row value pins as its column does.
#[test]
fn a_bound_array_of_ids_and_a_one_column_row_value_pin_rows() {
    let array = |items: Vec<Bound>| move |i: usize| (i == 0).then(|| Bound::List(items.clone()));
    let sql = r#"DELETE FROM "songs" WHERE ("songs"."id" = ANY($1))"#;
    assert_eq!(
        classify(
            sql,
            &array(vec![Bound::Integer(3), Bound::Text("7".into())]),
            &id_key
        ),
        rows_of("songs", ids(&["3", "7"]))
    );
    assert_eq!(
        classify(sql, &array(vec![Bound::Text("05".into())]), &id_key),
        all_rows("songs")
    );
    assert_eq!(classify(sql, &array(vec![]), &id_key), all_rows("songs"));
    assert_eq!(run(sql), all_rows("songs"), "text bound: not an array");
    check(
        r#"DELETE FROM "songs" WHERE ("songs"."id") IN ((3), (7))"#,
        rows_of("songs", ids(&["3", "7"])),
    );
}

/// A key of several columns pins a row only when every column is pinned to one value; the
/// id is the values' `row_id`, on the write side and the read side alike.
#[test]
fn composite_keys_pin_a_row_only_when_every_column_is_pinned() {
    use querycache_sql::{ReadEffect, TableRead, reads, row_id};
    let key = |_: &TableName| vec!["tenant_id".to_string(), "id".to_string()];
    let one = |t: &str, i: &str| row_id(&[t.to_string(), i.to_string()]);
    let write = |sql: &str| classify(sql, &unbound, &key);
    let read = |sql: &str| reads(sql, &unbound, &key);
    let pinned = one("1", "7");
    assert_eq!(pinned, r#"["1","7"]"#);
    for sql in [
        "DELETE FROM t WHERE tenant_id = 1 AND id = 7",
        "DELETE FROM t WHERE id = 7 AND tenant_id = '1'",
        "DELETE FROM t WHERE (id = 7 AND x > 2) AND (tenant_id IN (1))",
        "UPDATE t SET a = 1 WHERE t.id = 7 AND t.tenant_id = 1",
        "INSERT INTO t (a, id, tenant_id) VALUES (0, 7, 1)",
        "INSERT INTO t (tenant_id, id) VALUES (1, 7) ON CONFLICT (id, tenant_id) DO UPDATE SET a = 1",
    ] {
        assert_eq!(write(sql), rows_of("t", ids(&[&pinned])), "{sql}");
    }
    for sql in [
        "DELETE FROM t WHERE id = 7",
        "DELETE FROM t WHERE tenant_id = 1",
        "DELETE FROM t WHERE tenant_id = 1 AND id IN (7, 8)",
        "DELETE FROM t WHERE tenant_id = 1 OR id = 7",
        "UPDATE t SET tenant_id = 2 WHERE tenant_id = 1 AND id = 7",
        "INSERT INTO t (id) VALUES (7)",
        "INSERT INTO t (tenant_id, id) VALUES (1, 7) ON CONFLICT (id) DO UPDATE SET a = 1",
    ] {
        assert!(
            matches!(write(sql), Effect::Writes(w) if w[0].rows != Rows::Ids(vec![pinned.clone()])),
            "{sql}"
        );
    }
    // With several tables, the key columns must be qualified.
    let joined = "SELECT t.a FROM t JOIN u ON u.x = t.id WHERE t.tenant_id = 1 AND t.id = 7";
    let ReadEffect::Reads(tables) = read(joined) else {
        panic!("{joined}")
    };
    assert_eq!(tables[0].rows, Rows::Ids(vec![pinned.clone()]));
    assert_eq!(tables[1].rows, Rows::Unknown);
    let unqualified = "SELECT t.a FROM t JOIN u ON u.x = t.id WHERE tenant_id = 1 AND id = 7";
    let ReadEffect::Reads(tables) = read(unqualified) else {
        panic!("{unqualified}")
    };
    assert_eq!(tables[0].rows, Rows::Unknown);
    let table = TableName {
        schema: None,
        name: "t".into(),
    };
    assert_eq!(
        read("SELECT * FROM t WHERE id = 7 AND tenant_id = 1"),
        ReadEffect::Reads(vec![TableRead {
            table: table.clone(),
            rows: Rows::Ids(vec![pinned])
        }])
    );
    assert_eq!(
        read("SELECT * FROM t WHERE id = 7"),
        ReadEffect::Reads(vec![TableRead {
            table,
            rows: Rows::Unknown
        }])
    );
}

/// An empty key (not known) pins nothing.
#[test]
fn an_unknown_key_pins_nothing() {
    let none = |_: &TableName| Vec::new();
    assert_eq!(
        classify("DELETE FROM t WHERE id = 7", &unbound, &none),
        all_rows("t")
    );
}

/// A UUID renders canonically (lower case, hyphenated) whatever its spelling, bound or
/// written; one starting with a digit only when hyphenated and not read as a float.
#[test]
fn uuids_render_canonically() {
    let key = |_: &TableName| vec!["uuid".to_string()];
    let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    for spelled in [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
    ] {
        let param = |_: usize| Some(Bound::Text(spelled.to_string()));
        assert_eq!(
            classify("DELETE FROM t WHERE uuid = ?", &param, &key),
            rows_of("t", ids(&[canonical])),
            "{spelled}"
        );
        let literal = format!("DELETE FROM t WHERE uuid = '{spelled}'");
        assert_eq!(
            classify(&literal, &unbound, &key),
            rows_of("t", ids(&[canonical]))
        );
    }
    let digit = |text: &str| {
        let param = |_: usize| Some(Bound::Text(text.to_string()));
        classify("DELETE FROM t WHERE uuid = ?", &param, &key)
    };
    assert_eq!(
        digit("12345678-9C0B-4EF8-BB6D-6BB9BD380A11"),
        rows_of("t", ids(&["12345678-9c0b-4ef8-bb6d-6bb9bd380a11"]))
    );
    assert_eq!(digit("123456789c0b4ef8bb6d6bb9bd380a11"), all_rows("t"));
    assert_eq!(digit("1234567e-9c0b-4ef8-bb6d-6bb9bd380a11"), all_rows("t"));
}
