//! querycache-sql's tests, through its public API only: one module per concern (the
//! classifier's source files, roughly), in one test binary. The helpers below build expected
//! effects: every placeholder is bound to text `p<index>`, every primary key is `id`.

use querycache_sql::{Bound, Effect, Rows, TableName, TableWrite, classify};

mod control;
mod ctes;
mod dialects;
mod dml;
mod lexing;
mod locking;
mod reads;
mod robustness;
mod rows;
mod sea_orm;
mod utility;

/// Every placeholder is bound; its value renders as `p<index>` so tests see which one was used.
fn bound(i: usize) -> Option<Bound> {
    Some(Bound::Text(format!("p{i}")))
}

fn unbound(_: usize) -> Option<Bound> {
    None
}

fn id_key(_: &TableName) -> Vec<String> {
    vec!["id".to_string()]
}

fn run(sql: &str) -> Effect {
    classify(sql, &bound, &id_key)
}

fn run_unbound(sql: &str) -> Effect {
    classify(sql, &unbound, &id_key)
}

/// `"songs"` or `"app.songs"`.
fn table(name: &str) -> TableName {
    match name.split_once('.') {
        Some((schema, name)) => TableName {
            schema: Some(schema.to_string()),
            name: name.to_string(),
        },
        None => TableName {
            schema: None,
            name: name.to_string(),
        },
    }
}

fn ids(list: &[&str]) -> Rows {
    Rows::Ids(list.iter().map(|s| s.to_string()).collect())
}

fn writes(list: &[(&str, Rows)]) -> Effect {
    Effect::Writes(
        list.iter()
            .map(|(name, rows)| TableWrite {
                table: table(name),
                rows: rows.clone(),
            })
            .collect(),
    )
}

fn all_rows(name: &str) -> Effect {
    writes(&[(name, Rows::Unknown)])
}

fn rows_of(name: &str, rows: Rows) -> Effect {
    writes(&[(name, rows)])
}

#[track_caller]
fn check(sql: &str, expected: Effect) {
    assert_eq!(run(sql), expected, "{sql}");
}

#[track_caller]
fn check_all(sqls: &[&str], expected: Effect) {
    for sql in sqls {
        check(sql, expected.clone());
    }
}
