//! The checker with writes from outside the application: a separate `psql` process writes
//! (not through the ORM, so no cache hears of it from the application), a change feed brings
//! the writes in, and reads are judged against the feed's bound ([`FEED_BOUND`]) instead of
//! "at once".

use std::process::Stdio;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{Run, SEED_ROWS};
use crate::support::pg_server::PgServer;

/// The instance number writes from outside are recorded under: no reader's, so every read
/// is judged with the lag allowed between instances.
pub const OUTSIDE: usize = 2;
/// How long a write from outside may stay unseen: the README's measured bound is a p99 of
/// a few milliseconds; this allows for a loaded CI machine.
pub const FEED_BOUND: Duration = Duration::from_secs(3);

/// A `psql` process the checker's writes go through, one statement (or transaction) at a
/// time; each is known to have returned when psql echoes the marker sent after it.
pub struct Psql {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    sent: u64,
}

impl Psql {
    pub fn start(server: &PgServer, db: &str) -> Psql {
        let mut child = Command::new(server.program("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At"])
            .arg(server.url(db))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the outside writer (psql)");
        let stdin = child.stdin.take().expect("psql's stdin");
        let stdout = BufReader::new(child.stdout.take().expect("psql's stdout"));
        Psql {
            _child: child,
            stdin,
            stdout,
            sent: 0,
        }
    }

    /// Runs `sql` (autocommit statements, or a whole transaction) and waits for it.
    pub async fn run(&mut self, sql: &str) {
        self.sent += 1;
        let marker = format!("qc-done-{}", self.sent);
        let script = format!("{sql};\n\\echo {marker}\n");
        self.stdin
            .write_all(script.as_bytes())
            .await
            .expect("write to psql");
        self.stdin.flush().await.expect("flush psql's stdin");
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.stdout.read_line(&mut line).await.expect("read psql");
            assert!(read > 0, "psql ended (an error in {sql:?}?)");
            if line.trim_end() == marker {
                return;
            }
        }
    }
}

impl Run {
    /// A write from outside the application, through `psql`.
    pub(super) async fn outside_write(&self, rng: &mut StdRng) {
        let Some(psql) = &self.outside else {
            return;
        };
        let mut psql = psql.lock().await;
        match rng.random_range(0..100) {
            0..55 => {
                let (id, value) = (self.pick_row(rng), self.value());
                let start = self.now();
                psql.run(&format!(
                    "UPDATE songs SET title = '{value}' WHERE id = {id}"
                ))
                .await;
                self.record_write(id, Some(value), (start, self.now()), OUTSIDE);
            }
            55..65 => {
                let ids: Vec<i32> = (0..4).map(|_| self.pick_row(rng)).collect();
                let value = self.value();
                let list = ids
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let start = self.now();
                psql.run(&format!(
                    "UPDATE songs SET title = '{value}' WHERE id IN ({list})"
                ))
                .await;
                let span = (start, self.now());
                let mut ids = ids;
                ids.sort_unstable();
                ids.dedup();
                for id in ids {
                    self.record_write(id, Some(value.clone()), span, OUTSIDE);
                }
            }
            65..75 if self.rows.lock().len() > SEED_ROWS as usize / 2 => {
                let id = {
                    let mut rows = self.rows.lock();
                    let at = rng.random_range(0..rows.len());
                    rows.swap_remove(at)
                };
                let start = self.now();
                psql.run(&format!("DELETE FROM songs WHERE id = {id}"))
                    .await;
                self.record_write(id, None, (start, self.now()), OUTSIDE);
                let mut deleted = self.deleted.lock();
                deleted.push_back(id);
                if deleted.len() > 16 {
                    deleted.pop_front();
                }
            }
            65..88 => {
                let id = self
                    .next_id
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let value = self.value();
                let start = self.now();
                psql.run(&format!(
                    "INSERT INTO songs (id, title, artist, author_id, content, archived, created_at, updated_at) \
                     VALUES ({id}, '{value}', 'outside', {}, '', false, now(), now())",
                    self.author
                ))
                .await;
                self.push_write(id, Some(value), (start, self.now()), OUTSIDE, true);
                self.rows.lock().push(id);
            }
            88..95 => {
                let writes = [
                    (self.pick_row(rng), self.value()),
                    (self.pick_row(rng), self.value()),
                ];
                let start = self.now();
                psql.run(&format!(
                    "BEGIN; UPDATE songs SET title = '{}' WHERE id = {}; \
                     UPDATE songs SET title = '{}' WHERE id = {}; COMMIT",
                    writes[0].1, writes[0].0, writes[1].1, writes[1].0
                ))
                .await;
                let span = (start, self.now());
                for (id, value) in writes {
                    self.record_write(id, Some(value), span, OUTSIDE);
                }
            }
            _ => {
                let (id, value) = (self.pick_row(rng), self.value());
                psql.run(&format!(
                    "BEGIN; UPDATE songs SET title = '{value}' WHERE id = {id}; ROLLBACK"
                ))
                .await;
                self.history.lock().rolled_back.push(value);
            }
        }
    }
}
