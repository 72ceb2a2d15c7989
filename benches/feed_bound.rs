//! The change feed's bound: from a COMMIT made by another process (a long-lived `psql`, one
//! autocommit `UPDATE songs SET title = 'vN' WHERE id = 1;` per write, fed on its stdin)
//! until every instance serves the new value through its cached read (`#[cached_query]` on a
//! SeaORM `CachedConnection`).
//!
//! The clock starts when the statement has been written and flushed to `psql`'s stdin, so
//! each figure includes `psql`'s own parsing and execution of the statement: it is an upper
//! bound of the commit-to-visible time. It stops when the last instance's cached read (polled
//! in a loop, `tokio::task::yield_now` between polls, never a sleep) returns the new value.
//!
//! Scenarios, each a fixed loop of 1000 writes (20 in criterion's `--test` mode) whose
//! percentiles are printed, then a criterion `iter_custom` bench over the same cycle:
//!
//! 1. logical replication, memory store, one instance;
//! 2. logical replication, two instances sharing a private redis-server (tiered store): one
//!    follows the database, the other is on standby, both must serve the new value;
//! 3. triggers + `NOTIFY`, memory store, one instance;
//! 4. triggers + `NOTIFY`, two instances with Redis.
//!
//! Each scenario also prints when the following feed counted the change applied (its
//! `FeedStatus::applied`, when the poll loop saw it move before the value showed), and how
//! many writes never showed: under `cargo bench` a write still not visible after 2 s is
//! reported (`feed_bound STALE ...`, with what the cache's misses read from the database, the
//! row, the WAL position and the slots) and left out of the percentiles; in `--test` mode any
//! write not visible within 10 s fails the run.
//!
//! Then the costs (skipped in `--test` mode):
//!
//! 5. WAL retained by the persistent slot while both consumers of scenario 2's setup are
//!    stopped, over 10 000 single-row UPDATEs (bytes, bytes per write), and how long a
//!    restarted feed takes to follow and to catch up (the last write visible on both);
//! 6. this process's CPU time (`getrusage(RUSAGE_SELF)`, user + sys) while 1000 writes/s are
//!    paced through `psql` for 5 s, against an idle 5 s with the feed running, for logical
//!    (memory store) and triggers (memory store); and the writer alone, no feed running.
//!
//! Everything runs on a private PostgreSQL server (`wal_level = logical`, the test suite's
//! `pg_server` harness) and private redis-servers. The server runs with
//! `synchronous_commit = on` (PostgreSQL's default; the harness turns it off for tests, and
//! with it off the walsender sends a commit only once the WAL writer flushes it, up to
//! `wal_writer_delay` = 200 ms later: set `QUERYCACHE_BENCH_SYNCHRONOUS_COMMIT=off` to see
//! it). `fsync` stays off, so a commit's flush costs no disk wait.
//!
//! Run: `cargo bench --bench feed_bound --features feed-postgres,sea-orm,redis`
//! (`cargo bench --bench feed_bound --features feed-postgres,sea-orm,redis -- --test` runs
//! every scenario with 20 writes, each criterion bench once; so does `cargo test --benches`, as
//! CI runs it).

/// Private PostgreSQL servers: the test suite's harness (`super::services` below).
#[path = "../tests/it/support/pg_server.rs"]
mod pg_server;
/// The port picker the private servers share.
#[path = "../tests/it/support/ports.rs"]
mod ports;
/// Private `redis-server`s: the test suite's harness.
#[path = "../tests/it/support/redis.rs"]
mod redis_server;
#[path = "../tests/it/support/services.rs"]
mod services;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use criterion::Criterion;
use querycache::feed::{ChangeFeed, ChangeFeedHandle, FeedMode, FeedState};
use querycache::orm::sea_orm::CachedConnection;
use querycache::{Cache, cached_query};
use sea_orm::{DbErr, EntityTrait};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use pg_server::PgServer;
use redis_server::RedisServer;

/// How long one write may take to show on every instance before the bench fails.
const DEADLINE: Duration = Duration::from_secs(10);
/// Under `cargo bench`, a write not visible after this long is reported as stale and left
/// out of the figures (a stale entry stays until the row's next write; waiting the whole
/// [`DEADLINE`] for each would only lengthen the run).
const STALE_AFTER: Duration = Duration::from_secs(2);
/// How long set-up steps (a feed reaching a state, a catch-up) may take.
const SETUP: Duration = Duration::from_secs(60);
/// Writes while the consumers are down (scenario 5).
const WRITES_WHILE_DOWN: u64 = 10_000;
/// The pace and length of the CPU phase (scenario 6).
const PACE_PER_SEC: u64 = 1000;
const PACE_SECS: u64 = 5;

/// The one row every write renames.
const ROW: i32 = 1;

/// Every title written, across scenarios: never the same twice, so that no instance can
/// mistake an old entry for the new value.
static VERSION: AtomicU64 = AtomicU64::new(0);

/// `songs (id int primary key, title text)`, as the bench creates it.
mod songs {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "songs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub title: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What the cached reads found in the database since the current write was sent (only
/// misses run the query): for the report of a write that does not show.
static MISSES: Mutex<Vec<Option<String>>> = Mutex::new(Vec::new());

/// The cached read every instance polls.
#[cached_query(ttl = "1h")]
async fn title(db: &CachedConnection, id: i32) -> Result<Option<String>, DbErr> {
    let found = songs::Entity::find_by_id(id)
        .one(db)
        .await?
        .and_then(|song| song.title);
    MISSES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(found.clone());
    Ok(found)
}

/// A long-lived `psql` process on one database, fed statements on its stdin. Its stdout
/// carries nothing but the marks of [`sync`](Psql::sync) (`-q`: no command tags).
struct Psql {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    marks: u64,
}

impl Psql {
    fn spawn(server: &PgServer, db: &str) -> Psql {
        let port = server.port().to_string();
        let mut child = tokio::process::Command::new(server.program("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(&port)
            .args(["-U", "postgres", "-d", db])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn psql");
        let stdin = child.stdin.take().expect("psql's stdin is piped");
        let stdout = child.stdout.take().expect("psql's stdout is piped");
        Psql {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            marks: 0,
        }
    }

    /// Writes `sql` to psql's stdin and flushes it.
    async fn send(&mut self, sql: &str) {
        let sent = async {
            self.stdin.write_all(sql.as_bytes()).await?;
            self.stdin.flush().await
        }
        .await;
        if let Err(err) = sent {
            panic!(
                "writing to psql failed ({err}); psql: {}",
                self.exit_status()
            );
        }
    }

    /// Returns once psql has run everything sent so far (it echoes a mark back).
    async fn sync(&mut self) {
        self.marks += 1;
        let mark = format!("querycache-mark-{}", self.marks);
        self.send(&format!("\\echo {mark}\n")).await;
        loop {
            match self.stdout.next_line().await {
                Ok(Some(line)) if line == mark => return,
                Ok(Some(_)) => {}
                Ok(None) => panic!("psql closed its stdout: {}", self.exit_status()),
                Err(err) => panic!("reading psql's stdout: {err}"),
            }
        }
    }

    fn exit_status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => format!("exited ({status})"),
            Ok(None) => "still running".to_owned(),
            Err(err) => format!("unknown ({err})"),
        }
    }

    async fn finish(self) {
        let Psql {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = child.wait().await.expect("wait for psql");
        assert!(status.success(), "psql exited with {status}");
    }
}

/// The statement of one write.
fn update(version: u64) -> String {
    format!("UPDATE songs SET title = 'v{version}' WHERE id = {ROW};\n")
}

/// One application instance: a cache and a connection of its own.
struct Instance {
    cache: Cache,
    db: CachedConnection,
    /// The same connection, uncached (for the failure report).
    raw: sea_orm::DatabaseConnection,
}

/// A scenario's set-up: the instances, their feeds, and the writer.
struct Scenario {
    name: &'static str,
    url: String,
    mode: FeedMode,
    instances: Vec<Instance>,
    feeds: Vec<ChangeFeedHandle>,
    psql: Psql,
    /// A write that does not show within [`DEADLINE`] is reported and counted instead of
    /// failing the run (`cargo bench`; in `--test` mode it fails).
    tolerate_stale: bool,
}

/// One write→visible cycle: the whole bound, and when the following feed counted the change
/// applied (`None`: the value showed before the poll loop saw the counter move).
struct Cycle {
    visible: Duration,
    applied: Option<Duration>,
    /// The write did not show within [`DEADLINE`] (only when the scenario tolerates it).
    stale: bool,
}

impl Scenario {
    /// `instances` instances on `db`, sharing `redis` (tiered store) or each on its own memory
    /// store, each with a feed of `mode` started (the first follows, the others stand by).
    async fn start(
        name: &'static str,
        server: &PgServer,
        db: &str,
        mode: FeedMode,
        redis: Option<&RedisServer>,
        instances: usize,
    ) -> Scenario {
        let url = server.url(db);
        let mut scenario = Scenario {
            name,
            url: url.clone(),
            mode,
            instances: Vec::new(),
            feeds: Vec::new(),
            psql: Psql::spawn(server, db),
            tolerate_stale: !test_mode(),
        };
        for _ in 0..instances {
            let cache = match redis {
                Some(redis) => Cache::builder()
                    .redis_url(redis.url())
                    .store(querycache::config::StoreKind::Tiered)
                    .build()
                    .expect("a tiered cache on the private redis-server"),
                None => Cache::new(),
            };
            let conn = sea_orm::Database::connect(url.as_str())
                .await
                .unwrap_or_else(|err| panic!("connect to {url}: {err}"));
            let db = CachedConnection::new(conn.clone(), cache.clone());
            scenario.instances.push(Instance {
                cache,
                db,
                raw: conn,
            });
        }
        for i in 0..instances {
            let feed = scenario.start_feed(i).await;
            let want = if i == 0 {
                FeedState::Following
            } else {
                FeedState::Standby
            };
            until_state(&feed, want, name).await;
            scenario.feeds.push(feed);
        }
        // Every instance caches the current value.
        let current = scenario.read(0).await;
        for i in 1..instances {
            assert_eq!(scenario.read(i).await, current, "{name}: instance {i}");
        }
        scenario
    }

    async fn start_feed(&self, instance: usize) -> ChangeFeedHandle {
        let feed = match self.mode {
            FeedMode::Logical => ChangeFeed::logical(&self.url),
            _ => ChangeFeed::triggers(&self.url),
        };
        feed.start(&self.instances[instance].cache)
            .await
            .unwrap_or_else(|err| panic!("{}: start the feed: {err}", self.name))
    }

    /// Instance `i`'s cached read.
    async fn read(&self, i: usize) -> Option<String> {
        title(&self.instances[i].db, ROW)
            .await
            .unwrap_or_else(|err| panic!("{}: instance {i}'s cached read: {err}", self.name))
    }

    /// One write through psql, then every instance's cached read polled until it serves it.
    async fn cycle(&mut self) -> Cycle {
        let version = VERSION.fetch_add(1, Ordering::Relaxed) + 1;
        let want = format!("v{version}");
        let follower = self
            .feeds
            .iter()
            .position(|feed| feed.status().state == FeedState::Following)
            .map(|i| (i, self.feeds[i].status().applied));
        let statement = update(version);
        MISSES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.psql.send(&statement).await;
        let started = Instant::now();
        let mut applied = None;
        let mut pending: Vec<usize> = (0..self.instances.len()).collect();
        loop {
            if applied.is_none()
                && let Some((feed, before)) = follower
                && self.feeds[feed].status().applied > before
            {
                applied = Some(started.elapsed());
            }
            let mut still = Vec::new();
            for &i in &pending {
                if self.read(i).await.as_deref() != Some(want.as_str()) {
                    still.push(i);
                }
            }
            pending = still;
            if pending.is_empty() {
                return Cycle {
                    visible: started.elapsed(),
                    applied,
                    stale: false,
                };
            }
            let deadline = if self.tolerate_stale {
                STALE_AFTER
            } else {
                DEADLINE
            };
            if started.elapsed() > deadline {
                let statuses: Vec<_> = self.feeds.iter().map(ChangeFeedHandle::status).collect();
                let mut served = Vec::new();
                for i in 0..self.instances.len() {
                    served.push(self.read(i).await);
                }
                let database = self.diagnose().await;
                let misses = MISSES
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let report = format!(
                    "{}: {want} did not show on instances {pending:?} within {deadline:?}; \
                     they serve {served:?}; the misses since the write read {misses:?} from \
                     the database; the database: {database}; feeds: {statuses:?}; psql: {}",
                    self.name,
                    self.psql.exit_status()
                );
                assert!(self.tolerate_stale, "{report}");
                eprintln!("feed_bound STALE {report}");
                return Cycle {
                    visible: started.elapsed(),
                    applied,
                    stale: true,
                };
            }
            tokio::task::yield_now().await;
        }
    }

    /// The row as the database has it, its WAL position and the slots (for a failure report).
    async fn diagnose(&self) -> String {
        use sea_orm::ConnectionTrait;
        let raw = &self.instances[0].raw;
        let sql = format!(
            "SELECT (SELECT title FROM songs WHERE id = {ROW}) || ' at ' || \
             pg_current_wal_lsn()::text || '; slots ' || \
             coalesce((SELECT string_agg(slot_name || ' confirmed ' || \
             confirmed_flush_lsn::text || ' active ' || active::text, ', ') \
             FROM pg_replication_slots), 'none')"
        );
        match raw
            .query_one_raw(sea_orm::Statement::from_string(
                raw.get_database_backend(),
                sql,
            ))
            .await
        {
            Ok(Some(row)) => row
                .try_get_by_index::<String>(0)
                .unwrap_or_else(|err| format!("? ({err})")),
            Ok(None) => "no row".to_owned(),
            Err(err) => format!("? ({err})"),
        }
    }

    /// Stops the feeds (standbys first, so that none takes over) and psql.
    async fn stop_feeds(&mut self) {
        self.feeds
            .sort_by_key(|feed| feed.status().state == FeedState::Following);
        for feed in self.feeds.drain(..) {
            feed.stop().await;
        }
    }

    async fn stop(mut self) {
        self.stop_feeds().await;
        self.psql.finish().await;
    }
}

/// Waits (set-up only, sleeping between looks) until `feed` is in `state`.
async fn until_state(feed: &ChangeFeedHandle, state: FeedState, name: &str) {
    let deadline = Instant::now() + SETUP;
    while feed.status().state != state {
        assert!(
            Instant::now() < deadline,
            "{name}: the feed did not reach {state:?} within {SETUP:?}: {:?}",
            feed.status()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `p` (0..=1) of sorted `samples`, nearest rank.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len().max(1)).unwrap_or(1);
    format!(
        "n={} p50={} p99={} max={} mean={}",
        samples.len(),
        ms(percentile(samples, 0.50)),
        ms(percentile(samples, 0.99)),
        ms(samples.last().copied().unwrap_or_default()),
        ms(mean)
    )
}

/// `/proc/loadavg`'s first three fields (the machine's load while measuring).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// The explicit loop of `writes` cycles, its figures printed; then the criterion bench.
fn measure(
    runtime: &tokio::runtime::Runtime,
    criterion: &mut Criterion,
    scenario: &mut Scenario,
    writes: usize,
) {
    let load_before = load();
    let (mut visible, mut applied) = (Vec::with_capacity(writes), Vec::with_capacity(writes));
    let mut stale = 0;
    runtime.block_on(async {
        for _ in 0..writes {
            let cycle = scenario.cycle().await;
            if cycle.stale {
                stale += 1;
                continue;
            }
            visible.push(cycle.visible);
            applied.extend(cycle.applied);
        }
    });
    let name = scenario.name;
    println!(
        "feed_bound {name}: commit→visible on every instance: {}",
        summary(&mut visible)
    );
    println!(
        "feed_bound {name}:   commit→applied by the following feed (writes where the poll saw \
         its counter move before the value): {}",
        summary(&mut applied)
    );
    println!(
        "feed_bound {name}:   writes never visible within {STALE_AFTER:?} (left out of the \
         figures above): {stale} of {writes}"
    );
    println!(
        "feed_bound {name}:   load average {load_before} before, {} after",
        load()
    );
    let mut stale = 0;
    criterion.bench_function(&format!("feed_bound/{name}"), |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                // `iters` cycles that showed; one that never did is counted, not timed.
                let (mut total, mut done) = (Duration::ZERO, 0);
                while done < iters {
                    let cycle = scenario.cycle().await;
                    if cycle.stale {
                        stale += 1;
                    } else {
                        total += cycle.visible;
                        done += 1;
                    }
                }
                total
            })
        });
    });
    println!("feed_bound {name}:   writes never visible during the criterion bench: {stale}");
}

/// Scenario 5: WAL retained by the persistent slot while both consumers are down, and the
/// catch-up of a restarted feed.
async fn wal_while_down(server: &PgServer, db: &str, scenario: &mut Scenario) {
    let lag_sql = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint \
                   || ' ' || pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint \
                   FROM pg_replication_slots WHERE slot_name = 'querycache'";
    let psql = |sql: &str| tokio::task::block_in_place(|| server.psql(db, sql));
    let lag = |out: String| -> (i64, i64) {
        let mut it = out.split_whitespace().map(|n| {
            n.parse::<i64>()
                .unwrap_or_else(|err| panic!("slot lag {out:?}: {err}"))
        });
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    scenario.stop_feeds().await;
    let cached = scenario.read(0).await;
    for i in 1..scenario.instances.len() {
        assert_eq!(scenario.read(i).await, cached, "instance {i} before");
    }
    let (restart_before, flush_before) = lag(psql(lag_sql));

    let first = VERSION.load(Ordering::Relaxed) + 1;
    let last = first + WRITES_WHILE_DOWN - 1;
    VERSION.store(last, Ordering::Relaxed);
    let script: String = (first..=last).map(update).collect();
    let wrote = Instant::now();
    scenario.psql.send(&script).await;
    scenario.psql.sync().await;
    let wrote = wrote.elapsed();
    let (restart_after, flush_after) = lag(psql(lag_sql));
    println!(
        "feed_bound wal_while_down: {WRITES_WHILE_DOWN} single-row UPDATEs through psql in {:.2} s \
         with both feeds stopped",
        wrote.as_secs_f64()
    );
    println!(
        "feed_bound wal_while_down: WAL retained (current - restart_lsn): {restart_after} bytes \
         ({:.1} bytes/write; {restart_before} bytes before the writes); \
         current - confirmed_flush_lsn: {flush_after} bytes ({flush_before} before)",
        (restart_after - restart_before) as f64 / WRITES_WHILE_DOWN as f64
    );
    // Every instance still serves the old value: nothing follows the database.
    for i in 0..scenario.instances.len() {
        assert_eq!(scenario.read(i).await, cached, "instance {i} while down");
    }

    let want = format!("v{last}");
    let started = Instant::now();
    let feed = scenario.start_feed(0).await;
    let deadline = started + SETUP;
    while feed.status().state != FeedState::Following {
        assert!(
            Instant::now() < deadline,
            "restarted feed: not following within {SETUP:?}: {:?}",
            feed.status()
        );
        tokio::task::yield_now().await;
    }
    let following = started.elapsed();
    // Caught up: every one of the writes applied (each autocommit UPDATE is a transaction).
    // The last value shows before that (the first replayed write of the row invalidates it,
    // and a miss reads the row as it is now), so that alone proves nothing.
    let mut first_visible = None;
    while feed.status().applied < WRITES_WHILE_DOWN {
        if first_visible.is_none() && scenario.read(0).await.as_deref() == Some(want.as_str()) {
            first_visible = Some(started.elapsed());
        }
        assert!(
            Instant::now() < deadline,
            "restarted feed: not caught up within {SETUP:?}: {:?}",
            feed.status()
        );
        tokio::task::yield_now().await;
    }
    let applied_all = started.elapsed();
    let mut pending: Vec<usize> = (0..scenario.instances.len()).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for &i in &pending {
            if scenario.read(i).await.as_deref() != Some(want.as_str()) {
                still.push(i);
            }
        }
        pending = still;
        assert!(
            Instant::now() < deadline,
            "restarted feed: {want} not visible on {pending:?} within {SETUP:?}: {:?}",
            feed.status()
        );
        tokio::task::yield_now().await;
    }
    let caught_up = started.elapsed();
    let status = feed.status();
    println!(
        "feed_bound wal_while_down: restarted feed following after {}; all {WRITES_WHILE_DOWN} \
         writes applied after {} ({:.0} transactions/s); last write visible on both \
         instances after {} (on the first instance already after {}, at the first replayed \
         write of the row); applied {} transactions, gaps {}",
        ms(following),
        ms(applied_all),
        WRITES_WHILE_DOWN as f64 / (applied_all - following).as_secs_f64(),
        ms(caught_up),
        first_visible.map_or_else(|| "-".to_owned(), ms),
        status.applied,
        status.gaps
    );
    scenario.feeds.push(feed);
}

/// This process's CPU time, user + system.
#[cfg(target_os = "linux")]
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given, which is valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    // SAFETY: getrusage succeeded, so it initialised the struct (which was zeroed anyway).
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(not(target_os = "linux"))]
fn cpu_time() -> Duration {
    Duration::ZERO
}

/// CPU % of one core used by this process over `wall`.
fn percent(cpu: Duration, wall: Duration) -> f64 {
    100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
}

/// Writes at [`PACE_PER_SEC`] for [`PACE_SECS`] through `psql` (no cache reads); returns the
/// CPU used and the wall time of the pacing.
async fn paced(psql: &mut Psql) -> (Duration, Duration) {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / PACE_PER_SEC));
    let (cpu, wall) = (cpu_time(), Instant::now());
    for _ in 0..PACE_PER_SEC * PACE_SECS {
        tick.tick().await;
        let version = VERSION.fetch_add(1, Ordering::Relaxed) + 1;
        psql.send(&update(version)).await;
    }
    (cpu_time() - cpu, wall.elapsed())
}

/// Scenario 6 for one feed (memory store, one instance): idle 5 s, then 1000 writes/s.
async fn cpu_under_load(scenario: &mut Scenario) {
    let name = scenario.name;
    let (cpu, wall) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(PACE_SECS)).await;
    let idle = percent(cpu_time() - cpu, wall.elapsed());

    let feed = &scenario.feeds[0];
    let before = feed.status().applied;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let (cpu, wall) = paced(&mut scenario.psql).await;
    let at_end = scenario.feeds[0].status().applied - before;
    let busy = percent(cpu, wall);
    // Until the feed has applied every write (or 20 s): its whole cost, lag included.
    let writes = PACE_PER_SEC * PACE_SECS;
    let deadline = Instant::now() + Duration::from_secs(20);
    while scenario.feeds[0].status().applied - before < writes && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let applied = scenario.feeds[0].status().applied - before;
    let (all_cpu, all_wall) = (cpu_time() - cpu0, wall0.elapsed());
    println!(
        "feed_bound cpu {name}: idle {idle:.1}% of one core; {PACE_PER_SEC} writes/s for \
         {:.2} s: {busy:.1}% ({:.1} points over idle; {at_end} of {writes} applied at the end \
         of the pacing); until all applied ({applied} after {:.2} s): {:.1}% — load average {}",
        wall.as_secs_f64(),
        busy - idle,
        all_wall.as_secs_f64(),
        percent(all_cpu, all_wall),
        load()
    );
}

/// Criterion's test mode: `-- --test`, or run by `cargo test --benches` (CI), which passes no
/// `--bench` (as `cargo bench` does).
fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
}

fn main() {
    let test_mode = test_mode();
    let writes = if test_mode { 20 } else { 1000 };
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();

    // PostgreSQL's default, not the test harness's `off`: with asynchronous commits the
    // walsender only sends WAL once the WAL writer has flushed it, every `wal_writer_delay`
    // (200 ms), which the logical feed's bound would then include.
    // `QUERYCACHE_BENCH_SYNCHRONOUS_COMMIT=off` measures that case.
    let synchronous_commit =
        std::env::var("QUERYCACHE_BENCH_SYNCHRONOUS_COMMIT").unwrap_or_else(|_| "on".to_owned());
    let Some(server) = PgServer::start_with(&[("synchronous_commit", &synchronous_commit)]) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let database = |what: &str| {
        let db = server.create_database();
        server.psql(
            &db,
            "CREATE TABLE songs (id int PRIMARY KEY, title text); \
             INSERT INTO songs VALUES (1, 'v0');",
        );
        eprintln!("feed_bound: database {db} for {what}");
        db
    };
    let logical_db = database("the logical feed");
    let triggers_db = database("the trigger feed");
    runtime.block_on(async {
        let tables = querycache::feed::postgres::install_triggers(&ChangeFeed::triggers(
            server.url(&triggers_db),
        ))
        .await
        .expect("install the triggers");
        assert_eq!(tables, 1, "triggers on songs");
    });
    println!(
        "feed_bound: {writes} writes per scenario, synchronous_commit = {synchronous_commit}; \
         load average {} at the start",
        load()
    );

    // 1. logical, memory store, one instance.
    let mut s = runtime.block_on(Scenario::start(
        "logical_memory_1",
        &server,
        &logical_db,
        FeedMode::Logical,
        None,
        1,
    ));
    measure(&runtime, &mut criterion, &mut s, writes);
    runtime.block_on(s.stop());

    // 2. logical, two instances sharing Redis; then 5. on the same set-up.
    if let Some(redis) = RedisServer::start() {
        let mut s = runtime.block_on(Scenario::start(
            "logical_redis_2",
            &server,
            &logical_db,
            FeedMode::Logical,
            Some(&redis),
            2,
        ));
        measure(&runtime, &mut criterion, &mut s, writes);
        if !test_mode {
            runtime.block_on(wal_while_down(&server, &logical_db, &mut s));
        }
        runtime.block_on(s.stop());
        // The persistent slot would hold WAL back for the rest of the run.
        server.psql(
            &logical_db,
            "DO $$ BEGIN
               LOOP
                 BEGIN
                   PERFORM pg_drop_replication_slot('querycache');
                   EXIT;
                 EXCEPTION WHEN object_in_use THEN
                   PERFORM pg_sleep(0.01);
                 END;
               END LOOP;
             END $$;",
        );
    }

    // 3. triggers, memory store, one instance.
    let mut s = runtime.block_on(Scenario::start(
        "triggers_memory_1",
        &server,
        &triggers_db,
        FeedMode::Triggers,
        None,
        1,
    ));
    measure(&runtime, &mut criterion, &mut s, writes);
    runtime.block_on(s.stop());

    // 4. triggers, two instances with Redis (a redis-server of their own: no entry of
    // scenario 2 left in it).
    if let Some(redis) = RedisServer::start() {
        let mut s = runtime.block_on(Scenario::start(
            "triggers_redis_2",
            &server,
            &triggers_db,
            FeedMode::Triggers,
            Some(&redis),
            2,
        ));
        measure(&runtime, &mut criterion, &mut s, writes);
        runtime.block_on(s.stop());
    }

    // 6. CPU at 1000 writes/s, one instance on the memory store, each feed; then the writer
    // alone (no feed).
    if !test_mode {
        for (name, db, mode) in [
            ("logical_memory_1", &logical_db, FeedMode::Logical),
            ("triggers_memory_1", &triggers_db, FeedMode::Triggers),
        ] {
            let mut s = runtime.block_on(Scenario::start(name, &server, db, mode, None, 1));
            runtime.block_on(cpu_under_load(&mut s));
            runtime.block_on(s.stop());
        }
        runtime.block_on(async {
            let mut psql = Psql::spawn(&server, &logical_db);
            let (cpu, wall) = paced(&mut psql).await;
            println!(
                "feed_bound cpu writer alone (no feed): {:.1}% of one core over {:.2} s",
                percent(cpu, wall),
                wall.as_secs_f64()
            );
            psql.finish().await;
        });
    }

    criterion.final_summary();
}
