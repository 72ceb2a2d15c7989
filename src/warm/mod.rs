//! Cache warming: named warmers registered on a cache, run on request, at start-up, or
//! from a management endpoint.
//!
//! A warmer is an async closure that fills the cache — typically by calling the
//! application's `#[cached_query]` functions for the data everyone asks for first — and
//! says how many entries it warmed. A run executes the selected warmers one after another
//! (gentle on a database that is starting up too), catches their errors and panics, and
//! reports progress in the logs (`tracing` info events) and in
//! [`Health::warming`](crate::Health::warming).
//!
//! A forced run (`force: true`) recomputes and overwrites entries even when they are
//! present: cached calls made by its warmers skip the lookup. Each value is still stored
//! under the tag versions read before its computation, so a write that races the warmer
//! makes its value a miss, exactly as for any other computation.

mod refresh;
mod run;

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub(crate) use refresh::refreshing;
pub(crate) use run::Warming;

use crate::{Cache, Error};

/// The error a warmer may return: any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a warmer is given: the cache, its own name, and whether the run is forced.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, EntryOptions, warm::{BoxError, WarmContext, WarmRequest}};
///
/// let cache = Cache::new();
/// cache.register_warmer("greeting", |ctx: WarmContext| async move {
///     assert_eq!(ctx.name(), "greeting");
///     ctx.cache().set("greeting", "hello".to_string(), EntryOptions::new()).await?;
///     Ok::<usize, BoxError>(1)
/// });
/// let report = cache.warm_and_wait(WarmRequest::default()).await.unwrap();
/// assert_eq!(report.entries, 1);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct WarmContext {
    cache: Cache,
    name: Arc<str>,
    force: bool,
}

impl WarmContext {
    /// The cache being warmed.
    ///
    /// ```
    /// # use querycache::{Cache, warm::{BoxError, WarmContext}};
    /// let cache = Cache::new();
    /// cache.register_warmer("w", |ctx: WarmContext| async move {
    ///     let _ = ctx.cache().stats();
    ///     Ok::<usize, BoxError>(0)
    /// });
    /// ```
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The name the warmer was registered under.
    ///
    /// ```
    /// # use querycache::{Cache, warm::{BoxError, WarmContext}};
    /// Cache::new().register_warmer("songs", |ctx: WarmContext| async move {
    ///     tracing::info!(warmer = ctx.name(), "warming");
    ///     Ok::<usize, BoxError>(0)
    /// });
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this run recomputes entries that are present ([`WarmRequest::force`]).
    ///
    /// ```
    /// # use querycache::{Cache, warm::{BoxError, WarmContext}};
    /// Cache::new().register_warmer("songs", |ctx: WarmContext| async move {
    ///     let limit = if ctx.force() { 1_000 } else { 100 };
    ///     Ok::<usize, BoxError>(limit)
    /// });
    /// ```
    pub fn force(&self) -> bool {
        self.force
    }

    /// `future` with this run's forcing applied, for work a warmer spawns onto other
    /// tasks: the forcing is task-local, so cached calls on a spawned task would otherwise
    /// be served from the cache.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions, warm::{BoxError, WarmContext, WarmRequest}};
    ///
    /// let cache = Cache::new();
    /// cache.register_warmer("spawning", |ctx: WarmContext| async move {
    ///     let cache = ctx.cache().clone();
    ///     let task = tokio::spawn(ctx.scoped(async move {
    ///         cache.get_or_compute("k", EntryOptions::new(), || async { 2_u8 }).await;
    ///     }));
    ///     task.await?;
    ///     Ok::<usize, BoxError>(1)
    /// });
    /// cache.set("k", 1_u8, EntryOptions::new()).await.unwrap();
    /// cache.warm_and_wait(WarmRequest { types: None, force: true }).await.unwrap();
    /// assert_eq!(cache.get::<u8>("k").await.as_deref(), Some(&2));
    /// # }
    /// ```
    pub fn scoped<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        refresh::scope(self.force, future)
    }
}

/// Which warmers to run, and whether to recompute entries that are present. The body of
/// the management endpoint deserializes into it (`{"types": ["songs"], "force": true}`;
/// both fields optional).
///
/// ```
/// use querycache::warm::WarmRequest;
///
/// let all = WarmRequest::default();
/// assert_eq!((all.types, all.force), (None, false));
/// let request: WarmRequest = serde_json::from_str(r#"{"types": ["songs"]}"#).unwrap();
/// assert_eq!(request.types, Some(vec!["songs".to_string()]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WarmRequest {
    /// The warmers to run, by name; `None` or an empty list: every registered warmer.
    pub types: Option<Vec<String>>,
    /// Recompute and overwrite entries even when they are present.
    pub force: bool,
}

/// What [`Cache::warm`] started.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, warm::{BoxError, WarmContext, WarmRequest}};
///
/// let cache = Cache::new();
/// cache.register_warmer("songs", |_: WarmContext| async { Ok::<usize, BoxError>(0) });
/// let started = cache.warm(WarmRequest::default()).unwrap();
/// assert_eq!(started.types, ["songs"]);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WarmStarted {
    /// The warmers the run executes, in order.
    pub types: Vec<String>,
    /// Whether entries present are recomputed.
    pub force: bool,
    /// When the run started, unix milliseconds.
    pub started_at_ms: u64,
}

/// The outcome of a warming run ([`Cache::warm_and_wait`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, warm::{BoxError, WarmContext, WarmRequest}};
///
/// let cache = Cache::new();
/// cache.register_warmer("ok", |_: WarmContext| async { Ok::<usize, BoxError>(3) });
/// cache.register_warmer("broken", |_: WarmContext| async { Err::<usize, BoxError>("db down".into()) });
/// let report = cache.warm_and_wait(WarmRequest::default()).await.unwrap();
/// assert_eq!(report.entries, 3);
/// assert!(!report.succeeded());
/// assert_eq!(report.warmers[1].error.as_deref(), Some("db down"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WarmReport {
    /// Each warmer's outcome, in the order they ran.
    pub warmers: Vec<WarmerReport>,
    /// Entries warmed by all of them.
    pub entries: usize,
    /// How long the run took, in milliseconds.
    pub duration_ms: u64,
    /// Whether entries present were recomputed.
    pub force: bool,
    /// When the run started, unix milliseconds.
    pub started_at_ms: u64,
    /// When it finished, unix milliseconds.
    pub finished_at_ms: u64,
}

impl WarmReport {
    /// Whether every warmer succeeded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let report = querycache::Cache::new().warm_and_wait(Default::default()).await.unwrap();
    /// assert!(report.succeeded(), "no warmer, no failure");
    /// # }
    /// ```
    pub fn succeeded(&self) -> bool {
        self.warmers.iter().all(|w| w.error.is_none())
    }
}

/// One warmer's outcome. See [`WarmReport`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, warm::{BoxError, WarmContext}};
///
/// let cache = Cache::new();
/// cache.register_warmer("panicky", |_: WarmContext| async { panic!("oops"); #[allow(unreachable_code)] Ok::<usize, BoxError>(0) });
/// let report = cache.warm_and_wait(Default::default()).await.unwrap();
/// assert_eq!(report.warmers[0].error.as_deref(), Some("panicked: oops"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WarmerReport {
    /// The warmer's name.
    pub name: String,
    /// Entries it reported warming (0 when it failed).
    pub entries: usize,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// Its error, or `panicked: <message>`; `None` when it succeeded.
    pub error: Option<String>,
}

/// Where warming stands. See [`WarmStatus`].
///
/// ```
/// use querycache::warm::WarmState;
///
/// assert_eq!(serde_json::to_string(&WarmState::Running).unwrap(), "\"running\"");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WarmState {
    /// No run since the cache was made.
    #[default]
    Idle,
    /// A run is in progress.
    Running,
    /// The last run finished and every warmer succeeded.
    Finished,
    /// The last run finished with at least one warmer failing (or was cancelled).
    Failed,
}

/// The progress of the current or last warming run, in [`Health::warming`](crate::Health::warming).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use querycache::{Cache, warm::{BoxError, WarmContext, WarmState}};
///
/// let cache = Cache::new();
/// assert_eq!(cache.health().await.warming.state, WarmState::Idle);
/// cache.register_warmer("songs", |_: WarmContext| async { Ok::<usize, BoxError>(5) });
/// cache.warm_and_wait(Default::default()).await.unwrap();
/// let warming = cache.health().await.warming;
/// assert_eq!(warming.state, WarmState::Finished);
/// assert_eq!((warming.warmers_done, warming.warmers_total, warming.entries), (1, 1, 5));
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WarmStatus {
    /// Idle, running, finished or failed.
    pub state: WarmState,
    /// The warmers of the run.
    pub types: Vec<String>,
    /// Whether it recomputes entries that are present.
    pub force: bool,
    /// Warmers done so far (succeeded or failed).
    pub warmers_done: usize,
    /// Warmers in the run.
    pub warmers_total: usize,
    /// Entries warmed so far.
    pub entries: usize,
    /// The last warmer error of the run, `<warmer>: <error>`.
    pub last_error: Option<String>,
    /// When the run started, unix milliseconds.
    pub started_at_ms: Option<u64>,
    /// When it finished, unix milliseconds (`None` while running).
    pub finished_at_ms: Option<u64>,
}

impl Cache {
    /// Registers `warmer` under `name` (replacing a warmer of the same name). A warmer
    /// returns how many entries it warmed; its errors and panics are reported, never
    /// propagated.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, EntryOptions, warm::{BoxError, WarmContext}};
    ///
    /// let cache = Cache::new();
    /// cache.register_warmer("songs", |ctx: WarmContext| async move {
    ///     let mut warmed = 0;
    ///     for id in 1..=3_u32 {
    ///         // In an application: `get_song(&db, id).await?`, a #[cached_query] fn.
    ///         let key = format!("song:{id}");
    ///         ctx.cache().get_or_compute(&key, EntryOptions::new(), || async move { id }).await;
    ///         warmed += 1;
    ///     }
    ///     Ok::<usize, BoxError>(warmed)
    /// });
    /// assert_eq!(cache.warmers(), ["songs"]);
    /// # }
    /// ```
    pub fn register_warmer<F, Fut>(&self, name: impl Into<String>, warmer: F)
    where
        F: Fn(WarmContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<usize, BoxError>> + Send + 'static,
    {
        let warmer: run::WarmFn = Arc::new(move |ctx| Box::pin(warmer(ctx)));
        self.warming().register(&name.into(), warmer);
    }

    /// The names of the registered warmers, in registration order.
    ///
    /// ```
    /// assert!(querycache::Cache::new().warmers().is_empty());
    /// ```
    pub fn warmers(&self) -> Vec<String> {
        self.warming().names()
    }

    /// Starts a warming run in the background (spawned on the current tokio runtime) and
    /// returns at once with what it runs. Follow it in the logs or in
    /// [`Health::warming`](crate::Health::warming); [`warm_and_wait`](Self::warm_and_wait)
    /// waits for its report instead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, Error, warm::{BoxError, WarmContext, WarmRequest}};
    ///
    /// let cache = Cache::new();
    /// cache.register_warmer("songs", |_: WarmContext| async { Ok::<usize, BoxError>(1) });
    /// let unknown = WarmRequest { types: Some(vec!["users".into()]), force: false };
    /// assert!(matches!(cache.warm(unknown), Err(Error::UnknownWarmer { .. })));
    /// cache.warm(WarmRequest::default()).unwrap();
    /// assert!(matches!(cache.warm(WarmRequest::default()), Err(Error::WarmInProgress { .. })));
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownWarmer`] naming a type that is not registered (nothing is started),
    /// [`Error::WarmInProgress`] while another run is in progress, [`Error::NoRuntime`]
    /// outside a tokio runtime.
    pub fn warm(&self, request: WarmRequest) -> Result<WarmStarted, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime {
            operation: "Cache::warm",
        })?;
        let (started, run) = self.begin_warm(request)?;
        // In the caller's span: the warmers' events and spans are its children.
        runtime.spawn(tracing::Instrument::in_current_span(run));
        Ok(started)
    }

    /// Runs the warmers `request` selects on this task and returns their report (at
    /// start-up, before serving traffic, for example). Dropping the future stops the run,
    /// which is then reported as failed ("cancelled"); [`warm`](Self::warm) runs it in the
    /// background instead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, warm::{BoxError, WarmContext, WarmRequest}};
    ///
    /// let cache = Cache::new();
    /// cache.register_warmer("songs", |_: WarmContext| async { Ok::<usize, BoxError>(10) });
    /// cache.register_warmer("users", |_: WarmContext| async { Ok::<usize, BoxError>(2) });
    /// let request = WarmRequest { types: Some(vec!["users".into()]), force: false };
    /// let report = cache.warm_and_wait(request).await.unwrap();
    /// assert_eq!((report.warmers.len(), report.entries), (1, 2));
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownWarmer`], [`Error::WarmInProgress`], as for [`warm`](Self::warm).
    pub async fn warm_and_wait(&self, request: WarmRequest) -> Result<WarmReport, Error> {
        let (_, run) = self.begin_warm(request)?;
        Ok(run.await)
    }

    /// Starts a run of every registered warmer in the background when the configuration
    /// asks for it ([`CacheConfig::warm_on_startup`](crate::CacheConfig::warm_on_startup),
    /// `CACHE_WARM_ON_STARTUP`); returns `None` when it does not. Call it once the warmers
    /// are registered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use querycache::{Cache, warm::{BoxError, WarmContext}};
    ///
    /// let cache = Cache::builder().warm_on_startup(true).build().unwrap();
    /// cache.register_warmer("songs", |_: WarmContext| async { Ok::<usize, BoxError>(1) });
    /// assert!(cache.warm_on_startup().unwrap().is_some());
    /// assert!(Cache::new().warm_on_startup().unwrap().is_none(), "off by default");
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`warm`](Self::warm).
    pub fn warm_on_startup(&self) -> Result<Option<WarmStarted>, Error> {
        if !self.config().warm_on_startup() {
            tracing::debug!("CACHE_WARM_ON_STARTUP is off: no warming at start-up");
            return Ok(None);
        }
        if self.warmers().is_empty() {
            tracing::warn!("CACHE_WARM_ON_STARTUP is on but no warmer is registered");
        }
        self.warm(WarmRequest::default()).map(Some)
    }

    /// Selects the warmers and marks the run started; the future runs it.
    fn begin_warm(
        &self,
        request: WarmRequest,
    ) -> Result<
        (
            WarmStarted,
            impl Future<Output = WarmReport> + Send + 'static,
        ),
        Error,
    > {
        let warmers = self.warming().select(request.types.as_deref())?;
        let types: Vec<String> = warmers.iter().map(|(n, _)| n.to_string()).collect();
        let started_at_ms = self.warming().begin(&types, request.force)?;
        let started = WarmStarted {
            types,
            force: request.force,
            started_at_ms,
        };
        let run = run::run(self.clone(), warmers, request.force, started_at_ms);
        Ok((started, run))
    }
}
