//! Any input — truncated, mutated, deep, huge — classifies without panicking, in linear
//! time, and to a sane effect.

use std::collections::HashSet;

use querycache_sql::{ReadEffect, reads};

use super::*;

/// Statements exercising most code paths, used for truncation and mutation tests.
const SEEDS: &[&str] = &[
    r#"INSERT INTO "songs" ("id", "title") VALUES (?, ?), (?, ?) ON CONFLICT ("id") DO UPDATE SET "title" = "excluded"."title" RETURNING "id""#,
    r#"UPDATE "songs" SET "title" = $1 WHERE "songs"."id" = $2 AND (x BETWEEN 1 AND 2) RETURNING "id", "title""#,
    "WITH RECURSIVE a(n) AS (DELETE FROM x WHERE id IN (1, 2) RETURNING *), b AS (SELECT 1) INSERT INTO y SELECT * FROM a; COMMIT",
    r"SELECT E'it\'s', $tag$ x; y $tag$, 'a''b', `c`, [d], /* e /* f */ */ 1 -- g",
    "DELETE s FROM songs s JOIN authors a ON s.author_id = a.id WHERE a.id = ?3 LIMIT 5",
    "EXPLAIN (ANALYZE, BUFFERS) MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "COPY (DELETE FROM t RETURNING *) TO STDOUT; TRUNCATE TABLE ONLY a, b RESTART IDENTITY",
    "PREPARE s FROM 'UPDATE t SET a = 1 WHERE id = 3'; ALTER TABLE t ADD COLUMN c INT",
    "DELETE FROM t WHERE CASE WHEN a AND id = 5 THEN 1 END = 1 OR id = -7 # x\n; SELECT 1 --1",
    "INSERT OR REPLACE INTO main.t (id) VALUES (1) /*!50000 ; DELETE FROM q */; DROP TABLE IF EXISTS z",
    r#"WITH RECURSIVE r AS (SELECT id FROM "a" WHERE id = $1 UNION ALL SELECT a.id FROM a JOIN r ON a.p = r.id) SELECT count(*), (SELECT max(x) FROM b) FROM r, LATERAL json_each(r.doc) j WHERE EXISTS (SELECT 1 FROM c WHERE c.id IN (1, 2))"#,
    r#"SELECT "s"."id" FROM ("songs" AS "s" INNER JOIN "users" ON ("s"."user_id" = "users"."id")) WHERE ("s"."id" = $1) AND f(x) UNION (TABLE t) ORDER BY 1 LIMIT $2"#,
];

/// Checks the invariants every result must satisfy, of [`classify`] and of [`reads`].
fn check_sane(sql: &str) {
    if let ReadEffect::Reads(list) = reads(sql, &bound, &id_key) {
        let mut seen = HashSet::new();
        for read in &list {
            assert!(
                seen.insert(read.table.clone()),
                "duplicate read for {sql:?}"
            );
            match &read.rows {
                Rows::Ids(ids) => {
                    let unique: HashSet<_> = ids.iter().collect();
                    assert_eq!(unique.len(), ids.len(), "duplicate id for {sql:?}");
                }
                Rows::Inserted(_) => panic!("{sql:?}: an insert count in {list:?}"),
                Rows::Unknown => {}
            }
        }
    }
    if let Effect::Writes(list) = run(sql) {
        assert!(!list.is_empty(), "{sql:?}");
        let mut seen = HashSet::new();
        for write in &list {
            assert!(
                seen.insert(write.table.clone()),
                "duplicate table for {sql:?}"
            );
            if let Rows::Ids(ids) = &write.rows {
                let unique: HashSet<_> = ids.iter().collect();
                assert_eq!(unique.len(), ids.len(), "duplicate id for {sql:?}");
            }
        }
    }
}

#[test]
fn every_truncation_and_substring_is_handled() {
    for seed in SEEDS {
        let bounds: Vec<usize> = (0..=seed.len())
            .filter(|&i| seed.is_char_boundary(i))
            .collect();
        for (n, &start) in bounds.iter().enumerate() {
            for &end in &bounds[n..] {
                check_sane(&seed[start..end]);
            }
        }
    }
}

/// xorshift64*: a deterministic generator with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_mutations_are_handled() {
    const INTERESTING: &[&[u8]] = &[
        b"'",
        b"\"",
        b"`",
        b"[",
        b"]",
        b"$",
        b"$$",
        b"$a$",
        b"(",
        b")",
        b";",
        b"\\",
        b"/*",
        b"*/",
        b"--",
        b"#",
        b"?",
        b"?9",
        b"$1",
        b"E'",
        b"/*!",
        b" AND ",
        b" OR ",
        b" WHERE ",
        b"\xc3\xa9",
        b"\xff",
        b"\0",
        b" DELETE FROM ",
        b" (UPDATE ",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..4000 {
        let seed = SEEDS[round % SEEDS.len()];
        let mut bytes = seed.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 if at < bytes.len() => bytes[at] = rng.next() as u8,
                _ => {
                    let insert = INTERESTING[rng.below(INTERESTING.len())];
                    bytes.splice(at..at, insert.iter().copied());
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        check_sane(&text);
        // Classification is deterministic.
        assert_eq!(run(&text), run(&text));
        let read = |sql: &str| reads(sql, &bound, &id_key);
        assert_eq!(read(&text), read(&text));
    }
}

#[test]
fn writes_survive_appended_garbage_only_as_unknown_or_writes() {
    // Appending text to a write can never turn it into a read.
    for suffix in [
        "",
        " ",
        ";",
        "; SELECT 1",
        " --",
        " /* x */",
        " '",
        ")",
        "(",
        "$$",
        " #",
    ] {
        let sql = format!("DELETE FROM t WHERE id = 1{suffix}");
        assert_ne!(run(&sql), Effect::Read, "{sql:?}");
    }
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 100_000;
    let parens = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
    check(&parens, Effect::Read);
    let nested = format!("{}DELETE FROM x{}", "(".repeat(depth), ")".repeat(depth));
    check(&nested, all_rows("x"));
    let ctes = format!(
        "{}SELECT 1{}",
        "(WITH a AS ".repeat(depth),
        ")".repeat(depth)
    );
    assert_eq!(run(&ctes), Effect::Unknown);
    let condition = format!(
        "DELETE FROM t WHERE {}id = 1{}",
        "(a AND ".repeat(depth),
        ")".repeat(depth)
    );
    check(&condition, all_rows("t"));
    check(&"(".repeat(depth), Effect::Unknown);
}

#[test]
fn large_inputs_are_linear() {
    use std::time::{Duration, Instant};
    let values: Vec<String> = (0..45_000).map(|i| format!("({i}, 'title {i}')")).collect();
    let insert = format!("INSERT INTO t (id, title) VALUES {}", values.join(", "));
    let in_list: Vec<String> = (0..170_000).map(|i| i.to_string()).collect();
    let delete = format!("DELETE FROM t WHERE id IN ({})", in_list.join(","));
    let select = format!("SELECT {} FROM t", vec!["a + (b * c)"; 80_000].join(", "));
    let statements = "UPDATE t SET a = 1 WHERE id = 2;".repeat(33_000);
    let tables: Vec<String> = (0..130_000).map(|i| format!("t{i}")).collect();
    let drop = format!("DROP TABLE {}", tables.join(", "));
    for sql in [&insert, &delete, &select, &statements, &drop] {
        assert!(sql.len() >= 1_000_000, "{}", sql.len());
        let started = Instant::now();
        let effect = run(sql);
        eprintln!("{} bytes: {:?}", sql.len(), started.elapsed());
        assert_ne!(effect, Effect::Unknown);
        // Generous for unoptimised test builds; a release build takes a few milliseconds.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    match run(&insert) {
        Effect::Writes(list) => {
            assert!(matches!(&list[0].rows, Rows::Ids(ids) if ids.len() == 45_000))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_of_deep_and_large_inputs() {
    use std::time::{Duration, Instant};
    let read = |sql: &str| reads(sql, &bound, &id_key);
    let depth = 30_000;
    // Wrapping parentheses and expression parentheses cost no nesting level.
    let wrapped = format!("{}SELECT * FROM t{}", "(".repeat(depth), ")".repeat(depth));
    assert!(matches!(read(&wrapped), ReadEffect::Reads(list) if list.len() == 1));
    let parens = format!("SELECT {}1{} FROM t", "(".repeat(depth), ")".repeat(depth));
    assert!(matches!(read(&parens), ReadEffect::Reads(list) if list.len() == 1));
    // Nested subqueries, joins and CTEs beyond the limit are unknown, not a stack overflow.
    for deep in [
        format!("{}1{}", "SELECT (".repeat(depth), ")".repeat(depth)),
        format!(
            "SELECT * FROM {}t{}",
            "(SELECT * FROM ".repeat(depth),
            ")".repeat(depth)
        ),
        format!(
            "SELECT * FROM {}t{}",
            "(a JOIN ".repeat(depth),
            " ON x)".repeat(depth)
        ),
        format!(
            "{}SELECT 1{}",
            "(WITH a AS ".repeat(depth),
            ")".repeat(depth)
        ),
    ] {
        assert!(
            matches!(read(&deep), ReadEffect::Unknown(_)),
            "{}",
            &deep[..40]
        );
    }
    let tables: Vec<String> = (0..15_000).map(|i| format!("t{i} a{i}")).collect();
    let joins = format!("SELECT * FROM {}", tables.join(", "));
    let in_list: Vec<String> = (0..40_000).map(|i| i.to_string()).collect();
    let pinned = format!("SELECT * FROM t WHERE id IN ({})", in_list.join(","));
    let subqueries = format!(
        "SELECT {} FROM t",
        vec!["(SELECT max(a) FROM u)"; 8_000].join(", ")
    );
    let ctes: Vec<String> = (0..8_000)
        .map(|i| format!("c{i} AS (SELECT * FROM c{})", i + 1))
        .collect();
    let with = format!("WITH {} SELECT * FROM c0", ctes.join(", "));
    let statements = "SELECT * FROM t WHERE id = 2;".repeat(7_000);
    for sql in [&joins, &pinned, &subqueries, &with, &statements] {
        assert!(sql.len() >= 190_000, "{}", sql.len());
        let started = Instant::now();
        let effect = read(sql);
        eprintln!("{} bytes: {:?}", sql.len(), started.elapsed());
        assert!(matches!(effect, ReadEffect::Reads(_)));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}
