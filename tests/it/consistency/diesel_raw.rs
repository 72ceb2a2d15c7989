//! The checker's Diesel writer: transactions driven by raw SQL texts on an instrumented
//! Diesel connection, the forms `CacheInstrumentation` follows statement by statement —
//! `BEGIN`, then the `UPDATE`, then `COMMIT -- done` as three texts; `BEGIN; UPDATE ..` then
//! `COMMIT`; `BEGIN` then `UPDATE ..; COMMIT`; `BEGIN TRANSACTION` .. `END`; each also ending
//! in `ROLLBACK` (`ABORT` on PostgreSQL) instead. While such a transaction is open, the
//! SeaORM readers keep caching the committed row: only the COMMIT may invalidate it.

use diesel::connection::SimpleConnection;
use parking_lot::Mutex;
use rand::Rng;
use rand::rngs::StdRng;

use crate::support::Db;
use crate::support::diesel::{AnyConnection, DieselDb};

/// Instrumented Diesel connections per instance, reused across operations.
pub struct DieselWriters {
    dbs: Vec<DieselDb>,
    idle: Vec<Mutex<Vec<AnyConnection>>>,
}

/// How a raw transaction ended.
pub enum Ended {
    Committed,
    RolledBack,
    /// PostgreSQL chose it as a deadlock's victim, or SQLite was busy: nothing landed.
    Failed,
}

impl DieselWriters {
    /// One writer per cache, on the database at `url`.
    pub fn new(db: Db, url: &str, caches: &[querycache::Cache]) -> Self {
        let dbs: Vec<DieselDb> = caches
            .iter()
            .map(|cache| DieselDb::attach(db, url.to_owned(), cache.clone()))
            .collect();
        let idle = dbs.iter().map(|_| Mutex::new(Vec::new())).collect();
        DieselWriters { dbs, idle }
    }

    /// Sets the title of row `id` to `value` in a raw transaction through writer
    /// `instance`, in a form `rng` picks, committed or (one time in five) rolled back.
    pub async fn retitle(
        self: &std::sync::Arc<Self>,
        rng: &mut StdRng,
        instance: usize,
        id: i32,
        value: &str,
    ) -> Ended {
        let instance = instance % self.dbs.len();
        let commit = rng.random_range(0..5) != 0;
        let form = rng.random_range(0..4);
        let this = std::sync::Arc::clone(self);
        let update = format!("UPDATE songs SET title = '{value}' WHERE id = {id}");
        tokio::task::spawn_blocking(move || this.run(instance, form, commit, &update))
            .await
            .expect("the Diesel writer panicked")
    }

    fn run(&self, instance: usize, form: u8, commit: bool, update: &str) -> Ended {
        let db = &self.dbs[instance];
        let end = match (commit, db.db) {
            (true, _) => "COMMIT -- done",
            (false, Db::Postgres) => "ABORT",
            (false, Db::Sqlite | Db::MySql) => "ROLLBACK",
        };
        let texts: Vec<String> = match form {
            0 => vec!["BEGIN".into(), update.into(), end.into()],
            1 => vec![format!("BEGIN; {update}"), end.into()],
            2 => vec!["BEGIN".into(), format!("{update}; {end}")],
            // MySQL spells it START TRANSACTION and has no END.
            _ if db.db == Db::MySql => vec![
                "START TRANSACTION".into(),
                update.into(),
                if commit { "COMMIT WORK" } else { end }.into(),
            ],
            _ => vec![
                "BEGIN TRANSACTION".into(),
                update.into(),
                if commit { "END" } else { end }.into(),
            ],
        };
        let mut conn = self.idle[instance]
            .lock()
            .pop()
            .unwrap_or_else(|| db.conn());
        for text in &texts {
            if let Err(error) = conn.batch_execute(text) {
                let text = error.to_string();
                assert!(
                    text.contains("deadlock detected")
                        || text.contains("database is locked")
                        || text.contains("Deadlock found")
                        || text.contains("Lock wait timeout"),
                    "raw transaction through Diesel: {text}"
                );
                // Ends the transaction whatever state it is in; the connection stays usable.
                let _ = conn.batch_execute("ROLLBACK");
                self.idle[instance].lock().push(conn);
                return Ended::Failed;
            }
        }
        self.idle[instance].lock().push(conn);
        if commit {
            Ended::Committed
        } else {
            Ended::RolledBack
        }
    }
}
