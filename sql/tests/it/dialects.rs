//! Dialect quirks: writes hidden from one lexing (PostgreSQL, MySQL, SQLite rules) are still
//! found by another.

use super::*;

#[test]
fn mysql_hash_comment() {
    check("SELECT 1 # comment", Effect::Read);
    // PostgreSQL reads `#` as XOR, so the DELETE runs there.
    check("SELECT 5 # 3; DELETE FROM x", all_rows("x"));
}

#[test]
fn mysql_backslash_escape() {
    // Standard SQL: two strings and a comment. MySQL: one string, then a DELETE.
    check(r"SELECT 'x\', ' ; DELETE FROM y; -- '", all_rows("y"));
    // Only MySQL escapes the quote here, and the DELETE is inside its string.
    check(r"SELECT 'C:\'; DELETE FROM x; SELECT '", Effect::Unknown);
}

#[test]
fn mysql_dash_comment_needs_space() {
    check("SELECT 1 --1; DELETE FROM x", all_rows("x"));
    check("SELECT 1 -- 1; DELETE FROM x", Effect::Read);
}

#[test]
fn mysql_dash_without_space_is_minus() {
    // MySQL reads `--note` as `- -note`, which breaks the `id = 1` shape.
    check("DELETE FROM t WHERE id = 1 --note", all_rows("t"));
    check(
        "DELETE FROM t WHERE id = 1 -- note",
        rows_of("t", ids(&["1"])),
    );
}

#[test]
fn mysql_executable_comment() {
    check("SELECT 1 /*!; DELETE FROM x */", all_rows("x"));
    check("SELECT 1 /*!50000 ; DELETE FROM x */", all_rows("x"));
    check("SELECT 1 /* ; DELETE FROM x */", Effect::Read);
}

#[test]
fn flat_comments_of_mysql_and_sqlite() {
    // PostgreSQL nests the comment to the end; MySQL and SQLite end it at the first `*/`.
    check(
        "SELECT 1 /* x /* y */ ; DELETE FROM t; -- */",
        all_rows("t"),
    );
}

#[test]
fn brackets_cannot_hide_quotes() {
    // SQLite reads `[']` as a name and the rest as a string; PostgreSQL runs the DELETE.
    check(
        "SELECT ARRAY[']']; DELETE FROM x; SELECT 1 -- '",
        all_rows("x"),
    );
}

#[test]
fn dollar_quoted_function_bodies() {
    let function =
        "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql";
    check(function, Effect::Read);
    check("DO $$ BEGIN DELETE FROM x; END $$", Effect::Unknown);
    // Read as MySQL, the body's statements are syntax errors, except real statements.
    let body = "CREATE FUNCTION f(x int) RETURNS int AS $body$ BEGIN x := x + 1; RETURN x; END; $body$ LANGUAGE plpgsql";
    check(body, Effect::Read);
    let body = "CREATE FUNCTION f() RETURNS void AS $$ BEGIN PERFORM 1; DELETE FROM audit; END $$ LANGUAGE plpgsql";
    check(body, all_rows("audit"));
    // ... and MariaDB runs `IF ... THEN ...; END IF` outside stored programs.
    let body = "CREATE FUNCTION f() RETURNS void AS $$ BEGIN PERFORM 1; IF true THEN NULL; END IF; END $$ LANGUAGE plpgsql";
    check(body, Effect::Unknown);
}

#[test]
fn syntax_errors_of_other_dialects_stop_there() {
    // MySQL and SQLite read the dollar quotes as code with an unclosed parenthesis: a syntax
    // error, after the statements before it ran.
    check("SELECT $$ ( $$", Effect::Read);
    check("DELETE FROM x; SELECT $$ ( $$", all_rows("x"));
    check("SELECT $$ ) $$; DELETE FROM x", all_rows("x"));
}

#[test]
fn mysql_double_quotes_with_and_without_ansi_quotes() {
    // Default MySQL: a string with a backslash escape, so no DELETE. With ANSI_QUOTES (and
    // on PostgreSQL and SQLite): the identifier `x\`, then a DELETE.
    check(r#"SELECT "x\"; DELETE FROM t; -- ""#, all_rows("t"));
    // Both readings agree: a quoted name either way.
    check(
        r#"UPDATE "songs" SET title = 'a' WHERE id = 1"#,
        rows_of("songs", ids(&["1"])),
    );
    // A doubled quote is the same escape in both modes.
    check(r#"SELECT "a""; DELETE FROM t; --""#, Effect::Read);
}
