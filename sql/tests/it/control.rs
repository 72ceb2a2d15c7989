//! Transaction control: the classifier reads it as writing nothing, and
//! `transaction_walk` splits a text at its control statements.

use querycache_sql::{Control, Step, Walk, transaction_walk};

use super::*;

#[test]
fn transactions_and_settings() {
    check_all(
        &[
            "BEGIN",
            "BEGIN IMMEDIATE TRANSACTION",
            "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, NOT DEFERRABLE",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT",
            "COMMIT",
            "END",
            "ROLLBACK",
            "ROLLBACK TO SAVEPOINT s",
            "SAVEPOINT s",
            "RELEASE SAVEPOINT s",
            "SET search_path TO app",
            "SET NAMES utf8mb4",
            "SHOW TABLES",
            "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
            "GRANT SELECT ON t TO r",
            "LISTEN channel",
            "NOTIFY channel, 'x'",
            "PREPARE TRANSACTION 'tx'",
            "DEALLOCATE p",
        ],
        Effect::Read,
    );
    check_all(
        &["BEGIN NOT ATOMIC DELETE FROM x", "START SLAVE"],
        Effect::Unknown,
    );
}

fn walk(sql: &str) -> Option<Walk<'_>> {
    transaction_walk(sql)
}

fn controls(sql: &str) -> Vec<Control> {
    walk(sql)
        .map(|w| {
            w.steps
                .into_iter()
                .filter_map(|s| match s {
                    Step::Control(c) => Some(c),
                    Step::Statements(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ordinary_statements_skip_the_walk() {
    assert_eq!(walk("SELECT 1"), None);
    assert_eq!(walk("UPDATE songs SET title = 'x' WHERE id = 1"), None);
    assert_eq!(walk("UPDATE a SET x = 1; UPDATE b SET y = 2"), None);
    assert_eq!(walk("SET TIME ZONE 'UTC'"), None);
    assert_eq!(walk("PREPARE q AS SELECT 1"), None);
    assert_eq!(walk("SELECT 'COMMIT; BEGIN'"), None);
}

#[test]
fn begin_then_a_write_in_one_text() {
    let w = walk("BEGIN; UPDATE songs SET title = 'new' WHERE id = 1").unwrap();
    assert!(!w.doubtful);
    assert_eq!(
        w.steps,
        vec![
            Step::Control(Control::Begin),
            Step::Statements(" UPDATE songs SET title = 'new' WHERE id = 1"),
        ]
    );
    let w = walk("UPDATE a SET x = 1; UPDATE b SET y = ';'; COMMIT;").unwrap();
    assert_eq!(
        w.steps,
        vec![
            Step::Statements("UPDATE a SET x = 1; UPDATE b SET y = ';'"),
            Step::Control(Control::Commit { chain: false }),
        ]
    );
}

#[test]
fn every_spelling_of_an_end() {
    let commit = Control::Commit { chain: false };
    let rollback = Control::Rollback { chain: false };
    for (sql, control) in [
        ("COMMIT -- done", commit.clone()),
        ("COMMIT /* x */", commit.clone()),
        ("/* x */ commit;", commit.clone()),
        ("END", commit.clone()),
        ("end transaction", commit.clone()),
        ("COMMIT WORK AND NO CHAIN", commit.clone()),
        ("COMMIT AND CHAIN", Control::Commit { chain: true }),
        ("ROLLBACK AND CHAIN", Control::Rollback { chain: true }),
        ("ABORT", rollback.clone()),
        ("rollback work", rollback.clone()),
        ("ROLLBACK TO SAVEPOINT x", Control::RollbackTo("x".into())),
        ("ROLLBACK TRANSACTION TO y", Control::RollbackTo("y".into())),
        ("SAVEPOINT \"Sp\"", Control::Savepoint("sp".into())),
        ("RELEASE SAVEPOINT x", Control::Release("x".into())),
        ("RELEASE x", Control::Release("x".into())),
        ("PREPARE TRANSACTION 'g1'", Control::Prepare),
        ("COMMIT PREPARED 'g1'", Control::CommitPrepared),
        ("ROLLBACK PREPARED 'g1'", Control::Neutral),
        ("XA START 'g'", Control::Begin),
        ("XA END 'g'", Control::Neutral),
        ("XA PREPARE 'g'", Control::Prepare),
        ("XA COMMIT 'g'", Control::CommitPrepared),
        ("XA COMMIT 'g' ONE PHASE", commit.clone()),
        ("XA ROLLBACK 'g'", rollback.clone()),
        ("START TRANSACTION READ ONLY", Control::Begin),
        ("BEGIN WORK", Control::Begin),
        ("BEGIN IMMEDIATE TRANSACTION", Control::Begin),
        (
            "BEGIN ISOLATION LEVEL SERIALIZABLE, READ WRITE",
            Control::Begin,
        ),
        ("SET autocommit = 0", Control::Autocommit(false)),
        ("SET SESSION autocommit TO ON", Control::Autocommit(true)),
        ("SET @@autocommit=OFF", Control::Autocommit(false)),
        ("SET autocommit = 0, sql_mode = ''", Control::Unknown),
        ("BEGIN NOT ATOMIC UPDATE t SET a = 1", Control::Unknown),
        ("COMMIT RELEASE", Control::Unknown),
    ] {
        assert_eq!(controls(sql), vec![control], "{sql}");
    }
}

#[test]
fn a_hidden_separator_makes_the_walk_doubtful() {
    // MySQL reads `#` as a comment: there the COMMIT is not run.
    let w = walk("UPDATE t SET a = 1 # x\n; COMMIT").unwrap();
    assert!(!w.doubtful, "the same control statements either way");
    let w = walk("UPDATE t SET a = 'it\\'; COMMIT; --'").unwrap();
    assert!(w.doubtful, "MySQL sees a COMMIT PostgreSQL does not");
    let w = walk("BEGIN; SELECT 'unterminated").unwrap();
    assert!(w.doubtful);
    assert_eq!(
        w.steps,
        vec![Step::Statements("BEGIN; SELECT 'unterminated")]
    );
}

#[test]
fn a_statement_after_comments_and_empty_statements() {
    assert_eq!(
        controls(";; BEGIN ;; /* c */ COMMIT -- x"),
        vec![Control::Begin, Control::Commit { chain: false }]
    );
}

#[test]
fn statements_mysql_commits_the_transaction_before() {
    for sql in [
        "CREATE TABLE t (id INT)",
        "create or replace table t (id int)",
        "CREATE INDEX i ON t (a)",
        "CREATE DATABASE d",
        "CREATE VIEW v AS SELECT 1",
        "ALTER TABLE t ADD COLUMN b INT",
        "DROP TABLE t",
        "DROP TABLE IF EXISTS `t`",
        "RENAME TABLE t TO u",
        "TRUNCATE TABLE t",
        "LOCK TABLES t WRITE",
        "UNLOCK TABLES",
        "GRANT SELECT ON d.* TO u",
        "REVOKE SELECT ON d.* FROM u",
        "SET PASSWORD = 'x'",
        "ANALYZE TABLE t",
        "CHECK TABLE t",
        "OPTIMIZE TABLE t",
        "REPAIR TABLE t",
        "CACHE INDEX t IN k",
        "LOAD INDEX INTO CACHE t",
        "FLUSH TABLES",
        "RESET QUERY CACHE",
        "INSTALL PLUGIN p SONAME 'p.so'",
        "START SLAVE",
        "STOP REPLICA",
        "CHANGE MASTER TO MASTER_HOST = 'h'",
        "/* note */ CREATE TABLE t (id INT)",
    ] {
        assert_eq!(controls(sql), vec![Control::ImplicitCommit], "{sql}");
        // The statement itself follows the commit, for its own writes.
        let steps = walk(sql).unwrap().steps;
        assert_eq!(steps.len(), 2, "{sql}: {steps:?}");
        assert!(
            matches!(steps[1], Step::Statements(s) if sql.ends_with(s.trim())),
            "{sql}"
        );
    }
}

#[test]
fn statements_that_commit_nothing_skip_the_walk() {
    for sql in [
        "CREATE TEMPORARY TABLE t (id INT)",
        "CREATE OR REPLACE TEMPORARY TABLE t (id INT)",
        "DROP TEMPORARY TABLE IF EXISTS t",
        "CREATE TEMP TABLE t (id INT)",
        "LOAD DATA INFILE 'x' INTO TABLE t",
        "START TRANSACTION",
        "SELECT 'CREATE TABLE t (id INT)'",
        "UPDATE t SET a = 1 -- DROP TABLE t",
    ] {
        assert!(
            !controls(sql).contains(&Control::ImplicitCommit),
            "{sql}: {:?}",
            controls(sql)
        );
    }
}

#[test]
fn an_implicit_commit_in_the_middle_of_a_text_splits_it() {
    let w = walk("BEGIN; UPDATE a SET x = 1; DROP TABLE b; UPDATE c SET y = 2; ROLLBACK").unwrap();
    assert!(!w.doubtful);
    assert_eq!(
        w.steps,
        vec![
            Step::Control(Control::Begin),
            Step::Statements(" UPDATE a SET x = 1"),
            Step::Control(Control::ImplicitCommit),
            Step::Statements(" DROP TABLE b; UPDATE c SET y = 2"),
            Step::Control(Control::Rollback { chain: false }),
        ]
    );
}
