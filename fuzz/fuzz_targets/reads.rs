//! The SQL classifier's read side (`querycache-sql`: `reads`) on arbitrary text: never a
//! panic, the same answer twice, each table listed once with no id twice and never an insert
//! count, every table it reports spelled in the text (unless an escape or a doubled quote may
//! have built the name), and no read narrowed to ids that a text without `WHERE` could not
//! have pinned.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use querycache_sql::{Bound, ReadEffect, Rows, TableName, reads};

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

/// Whether `name` is spelled in `text`, ignoring ASCII case (see the `classify` target).
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
    let effect = reads(sql, &param, &primary_key);
    assert_eq!(effect, reads(sql, &param, &primary_key), "{sql:?}");
    let ReadEffect::Reads(list) = &effect else {
        return;
    };
    let has_where = sql.to_ascii_lowercase().contains("where");
    let mut tables = HashSet::new();
    for read in list {
        assert!(tables.insert(&read.table), "{sql:?}: {:?} twice", read.table);
        let TableName { schema, name } = &read.table;
        assert!(spelled(sql, name), "{sql:?}: {name:?} is not in the text");
        if let Some(schema) = schema {
            assert!(spelled(sql, schema), "{sql:?}: {schema:?} is not in the text");
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
});
