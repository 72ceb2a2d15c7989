//! The warmer registry of a cache, the progress of its current run, and the run itself.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use tracing::Instrument;

use super::{BoxError, WarmContext, WarmReport, WarmState, WarmStatus, WarmerReport, refresh};
use crate::clock::now_ms;
use crate::{Cache, Error};

/// A registered warmer: its future reports how many entries it warmed.
pub(crate) type WarmFn =
    Arc<dyn Fn(WarmContext) -> BoxFuture<'static, Result<usize, BoxError>> + Send + Sync>;

/// The warmers of one cache and the state of its runs.
#[derive(Default)]
pub(crate) struct Warming {
    /// In registration order.
    warmers: RwLock<Vec<(Arc<str>, WarmFn)>>,
    status: Mutex<WarmStatus>,
}

/// Milliseconds of `started.elapsed()`.
fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Warming {
    /// Adds `warmer` under `name`, replacing one of the same name.
    pub(crate) fn register(&self, name: &str, warmer: WarmFn) {
        let mut warmers = self.warmers.write();
        if let Some(slot) = warmers.iter_mut().find(|(n, _)| &**n == name) {
            tracing::debug!(warmer = name, "warmer replaced");
            slot.1 = warmer;
        } else {
            warmers.push((Arc::from(name), warmer));
        }
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.warmers
            .read()
            .iter()
            .map(|(n, _)| n.to_string())
            .collect()
    }

    pub(crate) fn status(&self) -> WarmStatus {
        self.status.lock().clone()
    }

    /// The warmers `types` names (all when `None` or empty, each once, in the order given),
    /// or the first unknown name.
    pub(crate) fn select(
        &self,
        types: Option<&[String]>,
    ) -> Result<Vec<(Arc<str>, WarmFn)>, Error> {
        let warmers = self.warmers.read();
        let Some(types) = types.filter(|t| !t.is_empty()) else {
            return Ok(warmers.clone());
        };
        let mut selected: Vec<(Arc<str>, WarmFn)> = Vec::with_capacity(types.len());
        for name in types {
            if selected.iter().any(|(n, _)| &**n == name) {
                continue;
            }
            match warmers.iter().find(|(n, _)| &**n == name.as_str()) {
                Some(found) => selected.push(found.clone()),
                None => {
                    return Err(Error::UnknownWarmer {
                        name: name.clone(),
                        known: warmers.iter().map(|(n, _)| n.to_string()).collect(),
                    });
                }
            }
        }
        Ok(selected)
    }

    /// Marks a run of `types` as started, unless one is in progress. Returns its start.
    pub(crate) fn begin(&self, types: &[String], force: bool) -> Result<u64, Error> {
        let mut status = self.status.lock();
        if status.state == WarmState::Running {
            return Err(Error::WarmInProgress {
                types: status.types.clone(),
                started_at_ms: status.started_at_ms.unwrap_or(0),
            });
        }
        let started_at_ms = now_ms();
        *status = WarmStatus {
            state: WarmState::Running,
            types: types.to_vec(),
            force,
            warmers_done: 0,
            warmers_total: types.len(),
            entries: 0,
            last_error: None,
            started_at_ms: Some(started_at_ms),
            finished_at_ms: None,
        };
        Ok(started_at_ms)
    }

    fn warmer_done(&self, report: &WarmerReport) {
        let mut status = self.status.lock();
        status.warmers_done += 1;
        status.entries += report.entries;
        if let Some(error) = &report.error {
            status.last_error = Some(format!("{}: {error}", report.name));
        }
    }

    fn finish(&self, failed: bool) {
        let mut status = self.status.lock();
        status.state = if failed {
            WarmState::Failed
        } else {
            WarmState::Finished
        };
        status.finished_at_ms = Some(now_ms());
    }
}

/// Marks the run failed if it is dropped before it finished (its task was cancelled or
/// never ran, or the runtime shut down).
struct Unfinished {
    cache: Cache,
    done: bool,
}

impl Unfinished {
    /// The run completed: nothing to do on drop.
    fn disarm(&mut self) {
        self.done = true;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.done {
            let warming = self.cache.warming();
            warming.status.lock().last_error =
                Some("the warming run was cancelled before it finished".to_owned());
            warming.finish(true);
            tracing::warn!("cache warming cancelled before it finished");
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("panicked: {text}")
}

/// Runs one warmer, its panics caught, in the refresh scope when `force`.
async fn run_one(cache: &Cache, name: &Arc<str>, warmer: &WarmFn, force: bool) -> WarmerReport {
    let started = Instant::now();
    let ctx = WarmContext {
        cache: cache.clone(),
        name: Arc::clone(name),
        force,
    };
    // The closure itself may panic before returning its future.
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| warmer(ctx))) {
        Ok(future) => refresh::scope(force, AssertUnwindSafe(future).catch_unwind())
            .instrument(tracing::info_span!("querycache.warm", warmer = &**name))
            .await
            .unwrap_or_else(|panic| Err(panic_message(&*panic).into())),
        Err(panic) => Err(panic_message(&*panic).into()),
    };
    let (entries, error) = match outcome {
        Ok(entries) => (entries, None),
        Err(error) => (0, Some(error.to_string())),
    };
    let report = WarmerReport {
        name: name.to_string(),
        entries,
        duration_ms: elapsed_ms(started),
        error,
    };
    match &report.error {
        None => tracing::info!(
            warmer = %report.name,
            entries = report.entries,
            duration_ms = report.duration_ms,
            "cache warmer {} done: {} entries in {} ms",
            report.name, report.entries, report.duration_ms
        ),
        Some(error) => tracing::warn!(
            warmer = %report.name,
            duration_ms = report.duration_ms,
            %error,
            "cache warmer {} failed: {error}",
            report.name
        ),
    }
    report
}

/// A whole run, begun by [`Warming::begin`]: each warmer in turn. Dropping the future,
/// polled or not, before it completes marks the run failed.
pub(crate) fn run(
    cache: Cache,
    warmers: Vec<(Arc<str>, WarmFn)>,
    force: bool,
    started_at_ms: u64,
) -> impl Future<Output = WarmReport> + Send + 'static {
    let mut guard = Unfinished { cache, done: false };
    async move {
        let report = run_all(&guard.cache, &warmers, force, started_at_ms).await;
        guard.disarm();
        report
    }
}

async fn run_all(
    cache: &Cache,
    warmers: &[(Arc<str>, WarmFn)],
    force: bool,
    started_at_ms: u64,
) -> WarmReport {
    let warming = cache.warming();
    let started = Instant::now();
    let names: Vec<&str> = warmers.iter().map(|(n, _)| &**n).collect();
    tracing::info!(warmers = ?names, force, "cache warming started: {} warmers", names.len());
    let mut reports = Vec::with_capacity(warmers.len());
    for (name, warmer) in warmers {
        let report = run_one(cache, name, warmer, force).await;
        warming.warmer_done(&report);
        reports.push(report);
    }
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    warming.finish(failed > 0);
    let report = WarmReport {
        entries: reports.iter().map(|r| r.entries).sum(),
        warmers: reports,
        duration_ms: elapsed_ms(started),
        force,
        started_at_ms,
        finished_at_ms: now_ms(),
    };
    tracing::info!(
        entries = report.entries,
        duration_ms = report.duration_ms,
        failed,
        "cache warming finished: {} entries in {} ms, {failed} warmers failed",
        report.entries,
        report.duration_ms
    );
    report
}
