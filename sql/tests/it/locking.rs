//! Locking reads (`SELECT .. FOR UPDATE`): seen wherever a dialect runs them, never in
//! strings, quoted names or comments.

use querycache_sql::locks;

#[test]
fn every_locking_clause_is_seen() {
    for sql in [
        r#"SELECT "songs"."id" FROM "songs" WHERE "songs"."id" = $1 LIMIT $2 FOR UPDATE"#,
        "select * from songs for update nowait",
        "SELECT * FROM songs FOR UPDATE OF songs SKIP LOCKED",
        "SELECT * FROM songs FOR NO KEY UPDATE",
        "SELECT * FROM songs FOR SHARE",
        "SELECT * FROM songs FOR KEY SHARE",
        "SELECT * FROM `songs` WHERE id = ? LOCK IN SHARE MODE",
        "SELECT * FROM songs WHERE id IN (SELECT id FROM songs FOR UPDATE)",
        "SELECT * FROM songs -- plain\nFOR\n  UPDATE",
        "SELECT * FROM songs /* c */ FOR /* c */ SHARE",
        // Hidden from MySQL by `#`, run by PostgreSQL: the union sees it.
        "SELECT 1 # x\n FROM songs FOR UPDATE",
        // A comment to SQLite and PostgreSQL, code to MySQL, which runs it.
        "SELECT title FROM songs WHERE id = ? /*! FOR UPDATE */",
        // Unterminated: cannot be read, counts as locking.
        "SELECT 'for",
    ] {
        assert!(locks(sql), "{sql}");
    }
}

#[test]
fn plain_reads_and_lookalikes_do_not_lock() {
    for sql in [
        r#"SELECT "songs"."id" FROM "songs" WHERE "songs"."id" = $1 LIMIT $2"#,
        "SELECT 'FOR UPDATE' FROM songs",
        r#"SELECT "for", "update" FROM songs"#,
        "SELECT * FROM songs -- FOR UPDATE",
        "SELECT * FROM songs /* FOR SHARE */",
        "SELECT format FROM forms",
        "CREATE TRIGGER t BEFORE UPDATE ON songs FOR EACH ROW EXECUTE FUNCTION f()",
        "SELECT * FROM locks",
        "",
    ] {
        assert!(!locks(sql), "{sql}");
    }
}
