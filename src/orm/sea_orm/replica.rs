//! A [`CachedConnection`](super::CachedConnection) declared a read replica of another: the
//! check its computations' statements pass before they are sent (see `orm::replica` for the
//! race and why the check closes it).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::cache::observe::Observation;
use crate::orm::replica::{
    PRIMARY_POSITION_SQL, REPLAYED_POSITION_SQL, Replayed, caught_up, primary_from_answer,
};

/// The primary a replica connection follows.
#[derive(Debug)]
pub(super) struct Replica {
    /// The primary's connection (unwrapped: asking it its position is not a read the
    /// computation depends on).
    pub(super) primary: DatabaseConnection,
}

impl Replica {
    /// Before a statement of the computation `observation` is sent to `replica`, once the
    /// versions of what it reads are recorded: reads the primary's WAL position, and waits
    /// for `replica` to replay it (at most `CACHE_REPLICA_WAIT_MS`). If the replica stays
    /// behind, or either query fails, the computation's value is not stored.
    pub(super) async fn check(&self, replica: &DatabaseConnection, observation: &Observation) {
        let wait = observation.replica_wait();
        let checked = async {
            let target = primary_from_answer(
                position(&self.primary, PRIMARY_POSITION_SQL, "the primary")
                    .await?
                    .as_deref(),
            )?;
            caught_up(target, wait, || async {
                let replayed = position(replica, REPLAYED_POSITION_SQL, "the replica").await?;
                Replayed::from_answer(replayed.as_deref())
            })
            .await
        }
        .await;
        if let Err(why) = checked {
            tracing::debug!(reason = %why, "a computation read a replica that lags: its value is answered, not cached");
            observation.replica_behind(why).await;
        }
    }
}

/// One text column, `position`, of `sql`'s one row on `conn` (`server` names it in errors).
async fn position(
    conn: &DatabaseConnection,
    sql: &str,
    server: &str,
) -> Result<Option<String>, String> {
    let failed =
        |error: sea_orm::DbErr| format!("asking {server} its WAL position ({sql}): {error}");
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .map_err(failed)?;
    match row {
        Some(row) => row
            .try_get::<Option<String>>("", "position")
            .map_err(failed),
        None => Ok(None),
    }
}
