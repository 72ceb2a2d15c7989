//! The SQL classifier (`querycache-sql`: `classify`, `locks`, `transaction_walk`) on
//! arbitrary text: never a panic, the same answer twice, a write's tables and ids listed once
//! each, every table it reports spelled in the text (unless an escape or a doubled quote may
//! have built the name), and a transaction walk whose statements are pieces of the text.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use querycache_sql::{Bound, Effect, Rows, Step, TableName, classify, locks, transaction_walk};

/// Placeholders alternate between text and integers, so both kinds of bound id are used.
fn param(i: usize) -> Option<Bound> {
    Some(if i % 2 == 0 {
        Bound::Text(format!("p{i}"))
    } else {
        Bound::Integer(i as i128)
    })
}

fn primary_key(_: &TableName) -> String {
    "id".to_owned()
}

/// Whether `name` is spelled in `text`, ignoring ASCII case (unquoted names fold to lower
/// case). Names with a quote character may come from a doubled quote (`"a""b"` is `a"b`),
/// and text with a backslash may spell a name through an escape: both are not checked.
fn spelled(text: &str, name: &str) -> bool {
    name.contains(['"', '\'', '`'])
        || text.contains('\\')
        || text
            .to_ascii_lowercase()
            .contains(&name.to_ascii_lowercase())
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(sql) = std::str::from_utf8(bytes) else {
        return;
    };
    let effect = classify(sql, &param, &primary_key);
    assert_eq!(effect, classify(sql, &param, &primary_key), "{sql:?}");
    if let Effect::Writes(writes) = &effect {
        assert!(!writes.is_empty(), "{sql:?}");
        let mut tables = HashSet::new();
        for write in writes {
            assert!(
                tables.insert(&write.table),
                "{sql:?}: {:?} twice",
                write.table
            );
            let TableName { schema, name } = &write.table;
            assert!(spelled(sql, name), "{sql:?}: {name:?} is not in the text");
            if let Some(schema) = schema {
                assert!(
                    spelled(sql, schema),
                    "{sql:?}: {schema:?} is not in the text"
                );
            }
            if let Rows::Ids(ids) = &write.rows {
                let unique: HashSet<_> = ids.iter().collect();
                assert_eq!(unique.len(), ids.len(), "{sql:?}: an id twice in {ids:?}");
            }
        }
    }
    assert_eq!(locks(sql), locks(sql), "{sql:?}");
    let walk = transaction_walk(sql);
    assert_eq!(walk, transaction_walk(sql), "{sql:?}");
    for step in walk.iter().flat_map(|walk| &walk.steps) {
        if let Step::Statements(statements) = step {
            let start = statements.as_ptr() as usize - sql.as_ptr() as usize;
            assert!(start + statements.len() <= sql.len(), "{sql:?}");
            assert!(!statements.is_empty(), "{sql:?}");
        }
    }
});
