//! Read replicas that lag: what keeps a computation that read a PostgreSQL streaming
//! replica from caching rows the replica had not caught up on.
//!
//! # The race
//!
//! A write commits on the primary and bumps its tags. A computation starts after the bump,
//! so its snapshot holds the new versions; it reads a replica that has not replayed the
//! write yet, and would store the pre-write rows under the post-write versions, where every
//! later reader finds them valid. Tag versions cannot see this: they are current. What they
//! do not say is which of the primary's commits the rows behind them include.
//!
//! # The rule
//!
//! Before each statement a computation sends through a connection declared a replica, once
//! the versions of what it reads are recorded ([`Observation::before_read`]), the
//! connection asks the *primary* for its WAL insert position (`pg_current_wal_insert_lsn()`), then waits
//! until the replica has replayed that far (`pg_last_wal_replay_lsn()`), at most
//! `CACHE_REPLICA_WAIT_MS`; if it has not, the computation's value goes to its caller and
//! is not stored.
//!
//! Why that is enough: a write whose bump the recorded versions include had committed
//! before the bump, so before they were read, so before the primary's position was asked
//! for: its commit record lies at or below that position. A replica that replayed that far
//! shows the write to every statement from then on (replay only moves forward). A write
//! whose bump comes after the versions were read moves them, and the store refuses the
//! value as it refuses any value computed across a write. The primary's position covers
//! *every* commit, so writes the application never sent (psql, other services, reaching the
//! cache through a change feed) are covered as well as its own, and nothing is recorded on
//! the write path.
//!
//! [`Observation::before_read`]: crate::cache::observe::Observation::before_read

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// The query that asks the primary for its WAL position: the *insert* position, which
/// includes every commit record inserted so far. Not `pg_current_wal_lsn()`, the write
/// position: with `synchronous_commit = off` a commit returns before its record is written,
/// so the write position can lie below a commit that already returned (and bumped).
pub(crate) const PRIMARY_POSITION_SQL: &str =
    "SELECT pg_current_wal_insert_lsn()::text AS position";

/// The query that asks a replica how far it has replayed the primary's WAL (`NULL` on a
/// server that is not in recovery: a primary, or a replica promoted since).
pub(crate) const REPLAYED_POSITION_SQL: &str = "SELECT pg_last_wal_replay_lsn()::text AS position";

/// A position in PostgreSQL's write-ahead log (a `pg_lsn`, written `16/B374D848`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Lsn(u64);

impl Lsn {
    /// Parses `pg_lsn`'s text form: two hexadecimal halves around a `/`.
    pub(crate) fn parse(text: &str) -> Option<Lsn> {
        let (high, low) = text.trim().split_once('/')?;
        let high = u32::from_str_radix(high, 16).ok()?;
        let low = u32::from_str_radix(low, 16).ok()?;
        Some(Lsn((u64::from(high) << 32) | u64::from(low)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Where a replica stands, as [`REPLAYED_POSITION_SQL`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replayed {
    /// In recovery, replayed up to this position.
    Upto(Lsn),
    /// Not in recovery: the server is a primary (promoted, or declared a replica by
    /// mistake), and its reads see its own commits.
    NotInRecovery,
}

impl Replayed {
    /// Reads [`REPLAYED_POSITION_SQL`]'s answer.
    pub(crate) fn from_answer(answer: Option<&str>) -> Result<Replayed, String> {
        match answer {
            None => Ok(Replayed::NotInRecovery),
            Some(text) => Lsn::parse(text)
                .map(Replayed::Upto)
                .ok_or_else(|| format!("the replica answered {text:?} for its replay position")),
        }
    }
}

/// Reads the primary's position answer ([`PRIMARY_POSITION_SQL`]).
pub(crate) fn primary_from_answer(answer: Option<&str>) -> Result<Lsn, String> {
    let text = answer.ok_or("the primary answered no WAL position")?;
    Lsn::parse(text).ok_or_else(|| format!("the primary answered {text:?} for its WAL position"))
}

/// Waits until the replica has replayed `target`, asking `replayed` (one query on the
/// replica) with pauses of 1 ms doubling up to 20 ms, for at most `wait` (zero: asks once).
/// `Err` says why the computation's value must not be stored: the replica stayed behind, or
/// a query failed.
pub(crate) async fn caught_up<F, Fut>(
    target: Lsn,
    wait: Duration,
    mut replayed: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Replayed, String>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let last = match replayed().await? {
            Replayed::NotInRecovery => return Ok(()),
            Replayed::Upto(position) if position >= target => return Ok(()),
            Replayed::Upto(position) => position,
        };
        let waited = started.elapsed();
        if waited >= wait {
            return Err(format!(
                "the replica had replayed the primary's WAL to {last}, not to {target}, after {} ms (CACHE_REPLICA_WAIT_MS): what it read may miss a write",
                waited.as_millis()
            ));
        }
        tokio::time::sleep(pause.min(wait - waited)).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_print_and_order() {
        let lsn = Lsn::parse("16/B374D848").unwrap();
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!(Lsn::parse("0/0"), Some(Lsn(0)));
        assert!(Lsn::parse("0/1") < Lsn::parse("1/0"));
        assert!(Lsn::parse("0/FFFFFFFF") < Lsn::parse("1/0"));
        for bad in ["", "16", "16/", "/1", "G/1", "1/2/3", "100000000/0"] {
            assert_eq!(Lsn::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn answers_are_read_or_named() {
        assert_eq!(Replayed::from_answer(None), Ok(Replayed::NotInRecovery));
        assert_eq!(
            Replayed::from_answer(Some("0/10")),
            Ok(Replayed::Upto(Lsn(16)))
        );
        assert!(
            Replayed::from_answer(Some("x"))
                .unwrap_err()
                .contains("\"x\"")
        );
        assert!(primary_from_answer(None).is_err());
        assert_eq!(primary_from_answer(Some("1/0")), Ok(Lsn(1 << 32)));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_ends_when_the_replay_reaches_the_target_or_the_wait_runs_out() {
        let target = Lsn(100);
        let mut asked = 0;
        let result = caught_up(target, Duration::from_millis(50), || {
            asked += 1;
            let at = if asked < 4 { 90 } else { 100 };
            async move { Ok(Replayed::Upto(Lsn(at))) }
        })
        .await;
        assert_eq!(result, Ok(()));
        assert_eq!(asked, 4);

        let result = caught_up(target, Duration::from_millis(50), || async {
            Ok(Replayed::Upto(Lsn(99)))
        })
        .await;
        let why = result.unwrap_err();
        assert!(why.contains("0/63, not to 0/64"), "{why}");

        let mut asked = 0;
        let result = caught_up(target, Duration::ZERO, || {
            asked += 1;
            async { Ok(Replayed::Upto(Lsn(1))) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(asked, 1, "no wait: asked once");

        let result = caught_up(target, Duration::ZERO, || async {
            Ok(Replayed::NotInRecovery)
        })
        .await;
        assert_eq!(result, Ok(()));
        let result = caught_up(target, Duration::ZERO, || async { Err("gone".to_string()) }).await;
        assert_eq!(result, Err("gone".to_string()));
    }
}
