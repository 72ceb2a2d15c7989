//! The audit of undeclared dependencies (`CACHE_AUDIT=warn`, [`Audit`](crate::config::Audit)):
//! what it found, kept per cache ([`Cache::audit_findings`]) and logged once per function and
//! table.

use std::collections::HashSet;

use serde::Serialize;

use crate::Cache;

/// How many findings a cache keeps (and logs) at most.
pub const MAX_FINDINGS: usize = 4096;

/// A table a cached function read but did not declare in its `models`: a dependency the
/// declaration forgot. Observation covers it (the entry is invalidated by writes to it all
/// the same); the finding says the declaration is wrong, or not needed at all.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), querycache::Error> {
/// use querycache::{Cache, config::Audit};
///
/// let cache = Cache::builder().audit(Audit::Warn).build()?;
/// // Nothing computed yet, so nothing found.
/// assert!(cache.audit_findings().is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct AuditFinding {
    /// The function (`module::function`), or for `get_or_compute` and its kin the entry's
    /// key, as `entry <key>`.
    pub function: String,
    /// The table read and not declared (in another database than the default one, as
    /// `@<database>/<table>`).
    pub table: String,
    /// The statement that read it (its first 1000 characters).
    pub statement: String,
}

/// The findings of one cache.
#[derive(Debug, Default)]
pub(crate) struct AuditLog {
    seen: parking_lot::Mutex<Findings>,
}

/// The (function, table) pairs found, and the findings in the order they were found.
#[derive(Debug, Default)]
struct Findings {
    pairs: HashSet<(String, String)>,
    list: Vec<AuditFinding>,
}

impl AuditLog {
    /// Records that `function` read `table` (undeclared) with `sql`; the first time for the
    /// pair, keeps it and logs it at warn level.
    pub(crate) fn found(&self, function: &str, table: &str, sql: &str) {
        let mut seen = self.seen.lock();
        if seen.list.len() >= MAX_FINDINGS
            || !seen.pairs.insert((function.to_owned(), table.to_owned()))
        {
            return;
        }
        let statement: String = sql.chars().take(1000).collect();
        tracing::warn!(
            function,
            table,
            sql = %statement,
            "CACHE_AUDIT: `{function}` reads table `{table}`, which its `models` do not \
             declare (observed, so writes to it invalidate the entry all the same: declare \
             it, or declare nothing)"
        );
        seen.list.push(AuditFinding {
            function: function.to_owned(),
            table: table.to_owned(),
            statement,
        });
    }
}

impl Cache {
    /// What the audit of undeclared dependencies found so far (`CACHE_AUDIT=warn`, see
    /// [`Audit`](crate::config::Audit)), oldest first: each table a function declaring
    /// `models` read without declaring it, once per function and table. Empty when the
    /// audit is off. A test can assert that it stays empty.
    ///
    /// ```
    /// let cache = querycache::Cache::new();
    /// assert!(cache.audit_findings().is_empty());
    /// ```
    pub fn audit_findings(&self) -> Vec<AuditFinding> {
        self.audit_log().seen.lock().list.clone()
    }
}
