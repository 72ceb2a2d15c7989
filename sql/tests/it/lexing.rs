//! The tokenizer: comments, strings, quoted names, placeholders, unterminated text, odd
//! characters.

use super::*;

#[test]
fn comments_hide_keywords() {
    check_all(
        &[
            "SELECT 1 -- DELETE FROM x",
            "SELECT 1 -- DELETE FROM x\n",
            "SELECT /* DELETE FROM x; */ 1",
            "/* UPDATE t SET a = 1 */ SELECT 1",
            "SELECT /* a /* nested; DELETE FROM x */ still comment */ 1",
            "-- only a comment",
            "/* only */ /* comments */",
            "",
            "   \n\t ",
            ";;;",
        ],
        Effect::Read,
    );
}

#[test]
fn strings_hide_keywords() {
    check_all(
        &[
            "SELECT 'UPDATE x SET'",
            "SELECT 'it''s; DELETE FROM x'",
            r"SELECT E'it\'s; DELETE FROM x'",
            "SELECT $$ DELETE FROM x $$",
            "SELECT $fn$ it's; DELETE FROM x; $fn$",
            r#"SELECT "DELETE FROM x" FROM t"#,
            "SELECT `DELETE FROM x` FROM t",
            "SELECT [DELETE FROM x] FROM t",
        ],
        Effect::Read,
    );
}

#[test]
fn quoted_identifiers() {
    check(
        r#"DELETE FROM "My ""Table""" WHERE "id" = 1"#,
        rows_of(r#"My "Table""#, ids(&["1"])),
    );
    check(
        "DELETE FROM `songs` WHERE `songs`.`id` = 5",
        rows_of("songs", ids(&["5"])),
    );
    check(
        "DELETE FROM [songs] WHERE [id] = 5",
        rows_of("songs", ids(&["5"])),
    );
    check(r#"DELETE FROM "Songs""#, all_rows("Songs"));
}

#[test]
fn unquoted_names_fold_to_lower_case() {
    check(
        "DELETE FROM Songs WHERE ID = 5",
        rows_of("songs", ids(&["5"])),
    );
    check(
        "delete from SONGS where Songs.Id = 5",
        rows_of("songs", ids(&["5"])),
    );
    check(
        "DELETE FROM café WHERE id = 1",
        rows_of("café", ids(&["1"])),
    );
}

#[test]
fn placeholders() {
    check("DELETE FROM t WHERE id = ?3", rows_of("t", ids(&["p2"])));
    check("DELETE FROM t WHERE id = $12", rows_of("t", ids(&["p11"])));
    check(
        "UPDATE a SET x = ? WHERE id = ?; DELETE FROM b WHERE id = ?",
        writes(&[("a", ids(&["p1"])), ("b", ids(&["p2"]))]),
    );
    // Numbering differs between drivers when styles mix: no placeholder is trusted.
    check("UPDATE t SET a = $1 WHERE id = ?", all_rows("t"));
    check("UPDATE t SET a = ?2 WHERE id = ?", all_rows("t"));
    // `$0`, `?0` and overflowing numbers are no index at all.
    check("DELETE FROM t WHERE id = $0", all_rows("t"));
    check(
        "DELETE FROM t WHERE id = ?999999999999999999999999",
        all_rows("t"),
    );
    // A placeholder inside a string is not a placeholder.
    check(
        "DELETE FROM t WHERE name = '?' AND id = ?",
        rows_of("t", ids(&["p0"])),
    );
}

#[test]
fn unusable_parameter_values() {
    assert_eq!(
        run_unbound(r#"DELETE FROM "songs" WHERE "songs"."id" = ?"#),
        all_rows("songs")
    );
    assert_eq!(
        run_unbound(r#"DELETE FROM "songs" WHERE "id" IN (?, ?)"#),
        all_rows("songs")
    );
    let only_first = |i: usize| (i == 0).then_some(Bound::Integer(7));
    assert_eq!(
        classify("DELETE FROM t WHERE id IN (?, ?)", &only_first, &id_key),
        all_rows("t")
    );
}

#[test]
fn unterminated_or_unbalanced_text_is_unknown() {
    for sql in [
        "SELECT 'abc",
        "SELECT \"abc",
        "SELECT `abc",
        "SELECT 1 /* comment",
        "SELECT /* a /* b */ 1",
        "SELECT $$ abc",
        "SELECT $tag$ abc $other$",
        r"SELECT E'abc\'",
        "SELECT (1",
        "SELECT 1)",
        "SELECT (1)) + (1",
        "DELETE FROM t WHERE id IN (1, 2",
    ] {
        assert_eq!(run(sql), Effect::Unknown, "{sql}");
    }
}

#[test]
fn odd_characters_are_tolerated() {
    check_all(
        &[
            "SELECT $",
            "SELECT $ 1",
            "SELECT ?",
            "SELECT a[1], b[1:2], ARRAY[1, 2] FROM t",
            "SELECT 1 \\ 2",
            "SELECT 'é', \"ü\", x FROM ñ",
            "SELECT 0x1F, 1e-5, .5, 1_000",
        ],
        Effect::Read,
    );
}
