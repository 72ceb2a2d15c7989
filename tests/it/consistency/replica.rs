//! The checker reading through a streaming replica: each instance writes through its
//! connection to the primary and reads through one to a replica, declared with
//! `CachedConnection::replica_of` (see the README's *Read replicas*).
//!
//! The caches wait up to [`WAIT`] for the replica, far longer than a private replica on
//! loopback lags, so every computation stores or answers what the primary had when its
//! versions were read: the history is judged exactly as for reads of the primary.

use std::time::Duration;

use querycache::orm::sea_orm::CachedConnection;

use crate::support::TestDb;
use crate::support::pg_server::PgServer;

/// `CACHE_REPLICA_WAIT_MS` of the checker's caches.
pub const WAIT: Duration = Duration::from_secs(10);

/// A private primary and its streaming replica.
pub struct Servers {
    primary: PgServer,
    replica: PgServer,
}

impl Servers {
    /// Starts both (`None`: PostgreSQL's binaries are missing). The replica sends
    /// `hot_standby_feedback`, so the primary's pruning of rows the replica's statements
    /// still read does not cancel them; commits are synchronous (without `fsync`, cheap),
    /// so their WAL streams at once rather than at the WAL writer's next round (200 ms), as
    /// on a production primary.
    pub async fn start() -> Option<Servers> {
        tokio::task::spawn_blocking(|| {
            let (primary, replica) = PgServer::start_with_replica(&[
                ("hot_standby_feedback", "on"),
                ("synchronous_commit", "on"),
            ])?;
            Some(Servers { primary, replica })
        })
        .await
        .expect("starting the primary and its replica panicked")
    }

    /// The primary's maintenance URL, where the run's database is created.
    pub fn primary_admin_url(&self) -> String {
        self.primary.url("postgres")
    }

    /// One reader per instance: a connection to the replica, declared a replica of the
    /// instance's connection to the primary, once the replica has replayed the schema and
    /// the rows written so far.
    pub async fn readers(
        &self,
        t: &TestDb,
        instances: &[CachedConnection],
    ) -> Vec<CachedConnection> {
        let replica_url = self.replica.url(&t.server_database_name());
        let (primary, replica) = (&self.primary, &self.replica);
        tokio::task::block_in_place(|| replica.wait_replayed(primary));
        let mut readers = Vec::new();
        for instance in instances {
            let conn = sea_orm::Database::connect(replica_url.as_str())
                .await
                .expect("connect to the replica");
            readers.push(
                CachedConnection::new(conn, instance.cache().clone())
                    .replica_of(instance)
                    .expect("a PostgreSQL replica"),
            );
        }
        readers
    }
}
