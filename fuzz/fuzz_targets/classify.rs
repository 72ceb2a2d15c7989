//! The SQL classifier (`querycache-sql`: `classify`, `reads`, `locks`, `transaction_walk`)
//! on arbitrary text: never a panic, the same answer twice, a write's (and a read's) tables
//! and ids listed once each, every table reported spelled in the text (unless an escape or a
//! doubled quote may have built the name), no read narrowed to ids without a `WHERE` nor to
//! an insert count, and a transaction walk whose statements are pieces of the text.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use querycache_sql::{
    Bound, Effect, ReadEffect, Rows, Step, TableName, classify, locks, reads, transaction_walk,
};

/// Placeholders alternate between text and integers, so both kinds of bound id are used.
fn param(i: usize) -> Option<Bound> {
    Some(if i % 2 == 0 {
        Bound::Text(format!("p{i}"))
    } else {
        Bound::Integer(i as i128)
    })
}

fn primary_key(_: &TableName) -> Vec<String> {
    vec!["id".to_owned()]
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
    let read = reads(sql, &param, &primary_key);
    assert_eq!(read, reads(sql, &param, &primary_key), "{sql:?}");
    if let ReadEffect::Reads(list) = &read {
        let has_where = sql.to_ascii_lowercase().contains("where");
        let mut tables = HashSet::new();
        for read in list {
            assert!(
                tables.insert(&read.table),
                "{sql:?}: {:?} read twice",
                read.table
            );
            let TableName { schema, name } = &read.table;
            assert!(spelled(sql, name), "{sql:?}: {name:?} is not in the text");
            if let Some(schema) = schema {
                assert!(
                    spelled(sql, schema),
                    "{sql:?}: {schema:?} is not in the text"
                );
            }
            match &read.rows {
                Rows::Ids(ids) => {
                    assert!(has_where, "{sql:?}: ids without a WHERE");
                    let unique: HashSet<_> = ids.iter().collect();
                    assert_eq!(unique.len(), ids.len(), "{sql:?}: an id twice in {ids:?}");
                }
                Rows::Inserted(_) => panic!("{sql:?}: an insert count in a read"),
                Rows::Unknown => {}
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
