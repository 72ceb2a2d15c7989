//! Fault injection during the consistency checker's run: each round, while the checker's
//! tasks read and write through two app instances, Redis misbehaves in one of the ways
//! below, then heals. The driver checks that each instance's `health()` reports the fault
//! while it lasts, waits until every instance has recovered (breaker closed, the writes made
//! meanwhile replayed, the invalidation channel back), and gives the checker the outage's
//! span: across instances a write made during an outage may stay unseen until it ends (the
//! README's *When Redis misbehaves*), within one instance never. Callers must never see an
//! error: the checker's tasks fail the test on any.

use std::fmt;
use std::time::{Duration, Instant};

use querycache::{Cache, Health, config::StoreKind};

use super::Run;
use super::history::Outage;
use crate::support::netns::NetHost;
use crate::support::proxy::Proxy;
use crate::support::redis::{RedisCluster, RedisSentinels, RedisServer};
use crate::support::stores::Kind;

/// The command timeout of the instances under faults: short, so that a stalled server
/// costs little, and long enough for a loaded CI machine.
pub const TIMEOUT: Duration = Duration::from_millis(300);
/// What no single operation may take under faults: a few timeouts (the database's own time
/// included, on a loaded machine), well under the computation lease's TTL (5 s) that an
/// orphaned lease would cost.
pub const SLOWEST: Duration = Duration::from_millis(2500);
/// How long a fault that lasts is held.
const HOLD: Duration = Duration::from_millis(800);
/// How long an outage of Redis for every instance is held, once health shows it: well past
/// [`degraded_lag`] plus the cross-instance bound, so that reads made during it are judged
/// against the degraded bound (a memory fallback serving older entries is caught).
const OUTAGE: Duration = Duration::from_millis(2000);
/// How long `DEBUG SLEEP` lasts: long enough for the health of every instance to be asked
/// (each probe may wait for the command timeout) before the server wakes up, and for reads
/// to be judged against the degraded bound meanwhile (see [`OUTAGE`]).
const SLEEP: Duration = Duration::from_millis(2400);
/// How long a fault's effect may take to show in `health()`, and recovery to complete.
const LIMIT: Duration = Duration::from_secs(15);

/// One way for Redis to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, down for [`OUTAGE`], restarted (empty: nothing is persisted).
    Kill,
    /// SIGKILL and an immediate restart: every entry and tag version lost at once.
    RestartEmpty,
    /// SIGSTOP for [`OUTAGE`], then SIGCONT: a hung server.
    Pause,
    /// `DEBUG SLEEP`: the server blocks itself.
    DebugSleep,
    /// `CLIENT KILL TYPE normal`: every data connection dropped.
    KillDataConnections,
    /// `CLIENT KILL TYPE pubsub`: the invalidation channel dropped, data connections up.
    KillSubscriptions,
    /// `maxmemory` just above what is used, `allkeys-random`: entries and tag-version keys
    /// evicted at random while the checker runs.
    EvictVersions,
    /// `maxmemory 1`, `noeviction`: every write refused with an OOM error (a full Redis).
    Full,
    /// `SAVE`, [`HOLD`] of traffic (whose invalidations the snapshot does not hold), then
    /// kill -9 and a restart that loads the snapshot: Redis comes back with older data, as a
    /// restore or a lagging replica's promotion brings it.
    RestartFromSnapshot,
    /// The network refuses every connection for [`OUTAGE`] (invalidations wait for the
    /// replay), then carries replies [`SLOW`] late while the replay runs and for a while
    /// after: writes made while the replay is in flight.
    SlowReplay,
    /// The network silently drops the invalidation channel's flow (no reset, no close) for
    /// [`HOLD`] past the heartbeat deadline: a middlebox that forgot it.
    SilentChannel,
    /// The first instance's link refuses every connection for [`OUTAGE`] while the second
    /// keeps reaching Redis: a partition between one app instance and Redis.
    Partition,
    /// Redis Sentinel: the master killed for good, its replica promoted by the Sentinels,
    /// which the instances follow ([`sentinel_instances`]).
    Failover,
    /// Redis Cluster: a master killed for good, its replica promoted by the cluster
    /// ([`cluster_instances`]). Its slots fail until then, the others' answer.
    ClusterFailover,
    /// Redis Cluster: [`RESHARD_SLOTS`] slots moved from one master to another with
    /// `redis-cli --cluster reshard` while the checker runs (keys migrated, clients
    /// redirected).
    Reshard,
    /// The first instance's own network path to Redis, a veth pair into the namespace Redis
    /// runs in, goes down for [`OUTAGE`]: every packet dropped in silence (connections
    /// hang, connects time out) while the second instance keeps its path
    /// ([`namespaced_instances`]).
    SilentPartition,
}

/// How many slots [`Fault::Reshard`] moves.
const RESHARD_SLOTS: usize = 1000;

/// How late each reply comes during [`Fault::SlowReplay`].
const SLOW: Duration = Duration::from_millis(150);
/// The instances' channel heartbeat: a silent channel is noticed within three, or
/// within [`DEGRADED`] if that is shorter (but never within less than two).
const HEARTBEAT: Duration = Duration::from_millis(200);
/// The instances' `CACHE_DEGRADED_MAX_AGE_MS`: shorter than a fault's hold, so that the
/// checker judges reads made during the outage against it.
const DEGRADED: Duration = Duration::from_millis(300);

/// How long another instance's write may stay unseen during an outage, beyond the
/// cross-instance bound: [`DEGRADED`] (what the memory fallback serves), or how long a
/// silent channel is trusted (three heartbeats, capped by `DEGRADED` but at least two),
/// whichever is longer.
pub fn degraded_lag() -> Duration {
    let silence = (HEARTBEAT * 3).min(DEGRADED.max(HEARTBEAT * 2));
    DEGRADED.max(silence)
}

/// What the checker allows across instances once a fault is healed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Every instance lost Redis for the same span: until the fault is healed, another
    /// instance's write is judged against [`degraded_lag`]; from the heal until every
    /// instance recovered, an instance back on Redis may read what another one has not
    /// replayed yet.
    Healed,
    /// Redis answered some operations and not others for the whole span (a write may wait
    /// for its instance's replay while the other instance reads Redis): the whole span.
    WholeSpan,
    /// Only the invalidation channel was hit; every write reached Redis: judged against
    /// [`degraded_lag`] alone.
    NoReplay,
}

impl Fault {
    fn recovery(self) -> Recovery {
        match self {
            Fault::Kill
            | Fault::Pause
            | Fault::DebugSleep
            | Fault::SlowReplay
            | Fault::Partition
            | Fault::SilentPartition
            | Fault::Failover => Recovery::Healed,
            // Some slots answer and others do not (a bump may move some tags and wait for
            // the replay for the rest), for the whole span.
            Fault::ClusterFailover | Fault::Reshard => Recovery::WholeSpan,
            Fault::KillSubscriptions | Fault::SilentChannel => Recovery::NoReplay,
            Fault::RestartEmpty
            | Fault::KillDataConnections
            | Fault::EvictVersions
            | Fault::Full
            | Fault::RestartFromSnapshot => Recovery::WholeSpan,
        }
    }

    /// Every fault of a single server, in the order the rounds take them.
    pub const ALL: [Fault; 12] = [
        Fault::Kill,
        Fault::KillSubscriptions,
        Fault::Pause,
        Fault::EvictVersions,
        Fault::SilentChannel,
        Fault::DebugSleep,
        Fault::KillDataConnections,
        Fault::RestartFromSnapshot,
        Fault::Full,
        Fault::SlowReplay,
        Fault::Partition,
        Fault::RestartEmpty,
    ];
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Kill => "kill -9, restart after 2 s",
            Fault::RestartEmpty => "kill -9 and restart at once (all versions lost)",
            Fault::Pause => "SIGSTOP 2 s, SIGCONT",
            Fault::DebugSleep => "DEBUG SLEEP 2.4",
            Fault::KillDataConnections => "CLIENT KILL TYPE normal",
            Fault::KillSubscriptions => "CLIENT KILL TYPE pubsub",
            Fault::EvictVersions => "maxmemory just above use, allkeys-random",
            Fault::Full => "maxmemory 1, noeviction (OOM on writes)",
            Fault::RestartFromSnapshot => {
                "SAVE, 0.8 s of writes, kill -9, restart from the snapshot"
            }
            Fault::SlowReplay => {
                "connections refused 2 s, then replies 150 ms late during the replay"
            }
            Fault::SilentChannel => {
                "the channel's flow silently dropped past the heartbeat deadline"
            }
            Fault::Partition => "instance 0 cut off from Redis for 2 s, instance 1 not",
            Fault::Failover => "Sentinel failover: the master killed, its replica promoted",
            Fault::ClusterFailover => {
                "Redis Cluster failover: a master killed for good, its replica promoted"
            }
            Fault::Reshard => "redis-cli --cluster reshard: 1000 slots moved under traffic",
            Fault::SilentPartition => {
                "instance 0's veth link to Redis's namespace down for 2 s (packets dropped), \
                 instance 1's up"
            }
        })
    }
}

/// The app instances' caches for a fault run on `kind` (Redis or tiered), on a private
/// server that accepts `DEBUG`, and the driver that owns that server.
pub fn instances(kind: Kind) -> Option<(Vec<Cache>, Driver)> {
    let store = match kind {
        Kind::Redis => StoreKind::Redis,
        Kind::Tiered => StoreKind::Tiered,
        Kind::Memory => panic!("faults need a Redis-backed store"),
    };
    let server = RedisServer::start_with(&[("enable-debug-command", "yes")])?;
    // Every instance reaches the server through a proxy of its own (a link), for the
    // network's faults.
    let proxies = vec![Proxy::start(server.port()), Proxy::start(server.port())];
    let caches = proxies
        .iter()
        .map(|proxy| instance(&proxy.url(), store))
        .collect();
    Some((
        caches,
        Driver::new(
            Target::Single { server, proxies },
            &Fault::ALL,
            true,
            kind == Kind::Tiered,
        ),
    ))
}

/// The app instances' caches (tiered, cluster mode) for a cluster run: three masters with
/// a replica each; the driver has two rounds, [`Fault::ClusterFailover`] then
/// [`Fault::Reshard`] (between the promoted replica and another master).
pub fn cluster_instances() -> Option<(Vec<Cache>, Driver)> {
    let cluster = tokio::task::block_in_place(RedisCluster::start_with_replicas)?;
    let url = cluster.urls().join(",");
    let caches = (0..2)
        .map(|_| instance_with(&url, StoreKind::Tiered, true))
        .collect();
    Some((
        caches,
        Driver::new(
            Target::Cluster(Box::new(cluster)),
            &[Fault::ClusterFailover, Fault::Reshard],
            false,
            true,
        ),
    ))
}

/// The app instances' caches (tiered) for a run across network namespaces: Redis in a
/// namespace of its own, each instance reaching it over a veth link of its own; the driver
/// has one round, [`Fault::SilentPartition`].
pub fn namespaced_instances() -> Option<(Vec<Cache>, Driver)> {
    let host = NetHost::start(2)?;
    let caches = (0..2)
        .map(|link| instance(&host.url(link), StoreKind::Tiered))
        .collect();
    Some((
        caches,
        Driver::new(
            Target::Namespaced(Box::new(host)),
            &[Fault::SilentPartition],
            false,
            true,
        ),
    ))
}

/// An instance on `url`, configured for faults: a short command timeout, a quick probe, a
/// 200 ms heartbeat and a 300 ms degraded bound.
fn instance(url: &str, store: StoreKind) -> Cache {
    instance_with(url, store, false)
}

/// [`instance`], in cluster mode (`url` lists the nodes) with `cluster`.
fn instance_with(url: &str, store: StoreKind, cluster: bool) -> Cache {
    Cache::builder()
        .redis_url(url)
        .cluster_mode(cluster)
        .store(store)
        .redis_timeout(TIMEOUT)
        .breaker_cooldown(Duration::from_millis(100))
        .channel_heartbeat(HEARTBEAT)
        .degraded_max_age(DEGRADED)
        .build()
        .expect("valid test configuration")
}

/// The app instances' caches (tiered) for a failover run: a master, its replica and three
/// Sentinels, which the instances reach through a `redis+sentinel://` URL; the driver has
/// one round, [`Fault::Failover`].
pub fn sentinel_instances() -> Option<(Vec<Cache>, Driver)> {
    let set = RedisSentinels::start()?;
    let caches = vec![
        instance(&set.url(), StoreKind::Tiered),
        instance(&set.url(), StoreKind::Tiered),
    ];
    // The killed master stays down: a second failover would have no replica.
    Some((
        caches,
        Driver::new(
            Target::Sentinels(Box::new(set)),
            &[Fault::Failover],
            false,
            true,
        ),
    ))
}

/// What the driver makes misbehave.
enum Target {
    /// One server, behind a proxy per instance (its link) for the network's faults.
    Single {
        server: RedisServer,
        proxies: Vec<Proxy>,
    },
    /// A master, its replica and the Sentinels watching them.
    Sentinels(Box<RedisSentinels>),
    /// Three masters with a replica each.
    Cluster(Box<RedisCluster>),
    /// A server in a network namespace of its own, a veth link per instance.
    Namespaced(Box<NetHost>),
}

/// Injects one fault per round and accounts for it.
pub struct Driver {
    target: Target,
    /// The faults its rounds take, in order.
    faults: &'static [Fault],
    /// Whether they start over once each had its round (else the later rounds have none).
    repeats: bool,
    tiered: bool,
    next: usize,
    report: Vec<String>,
    /// The last round's line, waiting for its slowest operation (its tail included: the
    /// operations in flight when the round stopped, and the quiescent check's wait).
    open: Option<String>,
    /// When the current round's fault was healed, in the run's clock (faults whose
    /// recovery is [`Recovery::Healed`]).
    healed: u64,
}

impl Driver {
    fn new(target: Target, faults: &'static [Fault], repeats: bool, tiered: bool) -> Self {
        Driver {
            target,
            faults,
            repeats,
            tiered,
            next: 0,
            report: Vec::new(),
            open: None,
            healed: 0,
        }
    }

    /// Whether every fault has had a round.
    pub fn went_round(&self) -> bool {
        self.next >= self.faults.len()
    }

    /// Whether the next round has a fault.
    pub fn has_round(&self) -> bool {
        self.repeats || !self.went_round()
    }

    /// The single server (every fault but [`Fault::Failover`]).
    fn server(&self) -> &RedisServer {
        match &self.target {
            Target::Single { server, .. } => server,
            Target::Sentinels(_) | Target::Cluster(_) | Target::Namespaced(_) => {
                panic!("a single-server fault on a Sentinel set or a cluster")
            }
        }
    }

    /// [`server`](Self::server), to kill, pause or restart it.
    fn server_mut(&mut self) -> &mut RedisServer {
        match &mut self.target {
            Target::Single { server, .. } => server,
            Target::Sentinels(_) | Target::Cluster(_) | Target::Namespaced(_) => {
                panic!("a single-server fault on a Sentinel set or a cluster")
            }
        }
    }

    /// The instances' links to the single server.
    fn proxies(&self) -> &[Proxy] {
        match &self.target {
            Target::Single { proxies, .. } => proxies,
            Target::Sentinels(_) | Target::Cluster(_) | Target::Namespaced(_) => {
                panic!("a network fault on a Sentinel set or a cluster")
            }
        }
    }

    /// Keys the single server evicted so far (none on a Sentinel set).
    fn evicted(&self) -> u64 {
        match self.target {
            Target::Single { .. } => self.stat("stats", "evicted_keys"),
            Target::Sentinels(_) | Target::Cluster(_) | Target::Namespaced(_) => 0,
        }
    }

    /// What each fault did, one line each.
    pub fn report(mut self, run: &Run) -> Vec<String> {
        self.close(run);
        self.report
    }

    /// Ends the last round's line with its slowest operation.
    fn close(&mut self, run: &Run) {
        let (took, what) = std::mem::take(&mut *run.round_slowest.lock());
        let slowest = Duration::from_nanos(took);
        if let Some(line) = self.open.take() {
            self.report
                .push(format!("{line}; slowest operation {slowest:?} ({what})"));
        }
    }

    /// One round: some normal traffic, the next fault, its health check, healing, recovery,
    /// normal traffic again. Returns the outage, in the run's clock.
    pub async fn round(&mut self, run: &Run) -> Outage {
        let fault = self.faults[self.next % self.faults.len()];
        self.next += 1;
        self.close(run);
        let caches: Vec<Cache> = run.instances.iter().map(|db| db.cache().clone()).collect();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let losses: Vec<u64> = healths(&caches)
            .await
            .iter()
            .map(|h| h.invalidation_channel_losses)
            .collect();
        let evicted_before = self.evicted();
        let began = Instant::now();
        let from = run.now();
        self.healed = from;
        let seen = self.inject(fault, &caches, &losses, run).await;
        let evicted = self.evicted().saturating_sub(evicted_before);
        let recovered = recovered(&caches, self.tiered).await;
        let to = run.now();
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.open = Some(format!(
            "{fault}: health showed {seen}; recovered {:.2} s after the fault began{}",
            recovered.duration_since(began).as_secs_f64(),
            if evicted > 0 {
                format!("; {evicted} keys evicted")
            } else {
                String::new()
            }
        ));
        let heal = match fault.recovery() {
            Recovery::Healed => self.healed,
            Recovery::WholeSpan => from,
            Recovery::NoReplay => to,
        };
        Outage {
            from,
            heal,
            to,
            partitioned: matches!(fault, Fault::Partition | Fault::SilentPartition).then_some(0),
        }
    }

    /// Makes `fault` happen, waits for `health()` to show it, heals it. Returns what health
    /// showed.
    /// Faults whose recovery is [`Recovery::Healed`] record when they were healed.
    async fn inject(
        &mut self,
        fault: Fault,
        caches: &[Cache],
        losses: &[u64],
        run: &Run,
    ) -> String {
        match fault {
            Fault::Kill => {
                tokio::task::block_in_place(|| self.server_mut().kill());
                let seen = wait_for(caches, "Redis unreachable, memory serving", |_, h| {
                    !h.healthy && !h.redis_connected && h.fallback_active
                })
                .await;
                tokio::time::sleep(OUTAGE).await;
                self.healed = run.now();
                tokio::task::block_in_place(|| self.server_mut().restart());
                seen
            }
            Fault::RestartEmpty => {
                tokio::task::block_in_place(|| self.server_mut().restart());
                let keys: u64 = self.server().query(&redis::cmd("DBSIZE"));
                // Whether an instance noticed depends on what was in flight; the checker
                // judges what follows.
                format!("the server restarted with {keys} keys")
            }
            Fault::Pause => {
                tokio::task::block_in_place(|| self.server_mut().pause());
                let seen = wait_for(caches, "Redis hung, memory serving", |_, h| {
                    !h.healthy && !h.redis_connected && h.fallback_active
                })
                .await;
                tokio::time::sleep(OUTAGE).await;
                self.healed = run.now();
                tokio::task::block_in_place(|| self.server_mut().resume());
                seen
            }
            Fault::DebugSleep => {
                let client = self.server().client();
                // The server cannot wake before SLEEP has passed since it was asked.
                self.healed = run.now() + u64::try_from(SLEEP.as_nanos()).unwrap_or(u64::MAX);
                let sleeper = std::thread::spawn(move || {
                    let mut con = client.get_connection().expect("connect for DEBUG SLEEP");
                    redis::cmd("DEBUG")
                        .arg("SLEEP")
                        .arg(SLEEP.as_secs_f64())
                        .query::<()>(&mut con)
                        .expect("DEBUG SLEEP");
                });
                let seen = wait_for(caches, "Redis asleep, memory serving", |_, h| {
                    !h.healthy && h.fallback_active
                })
                .await;
                tokio::task::block_in_place(|| sleeper.join()).expect("DEBUG SLEEP thread");
                seen
            }
            Fault::KillDataConnections => {
                let killed: u64 = self.server().query(
                    redis::cmd("CLIENT")
                        .arg("KILL")
                        .arg("TYPE")
                        .arg("normal")
                        .arg("SKIPME")
                        .arg("yes"),
                );
                assert!(killed > 0, "CLIENT KILL TYPE normal found no connection");
                format!("{killed} data connections dropped")
            }
            Fault::KillSubscriptions => {
                let killed: u64 = self
                    .server()
                    .query(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"));
                if !self.tiered {
                    assert_eq!(killed, 0, "the Redis store subscribes to nothing");
                    return "no subscription to drop (the Redis store has no memory tier)"
                        .to_owned();
                }
                assert_eq!(killed, caches.len() as u64, "one subscription per instance");
                // Each instance counts the loss (and drops its memory tier on resubscribing).
                wait_for(caches, "the invalidation channel lost", |i, h| {
                    h.invalidation_channel_losses > losses[i]
                })
                .await
            }
            Fault::EvictVersions => {
                let used = self.stat("memory", "used_memory");
                self.config("maxmemory-policy", "allkeys-random");
                self.config("maxmemory", &(used + 16 * 1024).to_string());
                tokio::time::sleep(HOLD).await;
                self.config("maxmemory", "0");
                self.config("maxmemory-policy", "noeviction");
                let states = healths(caches).await;
                format!("{} (Redis answers throughout)", describe(&states))
            }
            Fault::RestartFromSnapshot => {
                let rotations: Vec<u64> = healths(caches)
                    .await
                    .iter()
                    .map(|h| h.redis_epoch_rotations)
                    .collect();
                assert!(!rotations.is_empty());
                let () = self.server().query(&redis::cmd("SAVE"));
                // Writes go on: their invalidations are not in the snapshot.
                tokio::time::sleep(HOLD).await;
                tokio::task::block_in_place(|| self.server_mut().restart());
                // The next rounds start empty again (`RestartEmpty` means it).
                let _ = std::fs::remove_file(self.server().dir().join("dump.rdb"));
                // One instance (whichever asks first) rotates the epoch for all.
                let before: u64 = rotations.iter().sum();
                let deadline = Instant::now() + LIMIT;
                loop {
                    let states = healths(caches).await;
                    let now: u64 = states.iter().map(|h| h.redis_epoch_rotations).sum();
                    if now > before {
                        break format!(
                            "the new incarnation noticed (store epoch rotated): {}",
                            describe(&states)
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "no instance rotated the store epoch within {LIMIT:?}: {}",
                        describe(&states)
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Fault::SlowReplay => {
                self.proxies().iter().for_each(|link| link.refuse());
                let seen = wait_for(caches, "Redis unreachable, memory serving", |_, h| {
                    !h.healthy && !h.redis_connected && h.fallback_active
                })
                .await;
                tokio::time::sleep(OUTAGE).await;
                self.proxies()
                    .iter()
                    .for_each(|link| link.delay_replies(SLOW));
                self.healed = run.now();
                self.proxies().iter().for_each(|link| link.accept());
                // Replies stay late through the replay and a while after.
                tokio::time::sleep(HOLD * 2).await;
                self.proxies()
                    .iter()
                    .for_each(|link| link.delay_replies(Duration::ZERO));
                seen
            }
            Fault::Partition | Fault::SilentPartition => {
                self.link_of_instance_0(false);
                let seen = wait_for(
                    &caches[..1],
                    "instance 0 cut off, memory serving",
                    |_, h| !h.healthy && !h.redis_connected && h.fallback_active,
                )
                .await;
                tokio::time::sleep(OUTAGE).await;
                let other = caches[1].health().await;
                assert!(
                    other.redis_connected,
                    "instance 1 kept its link: {}",
                    describe(std::slice::from_ref(&other))
                );
                self.healed = run.now();
                self.link_of_instance_0(true);
                seen
            }
            Fault::SilentChannel => {
                if !self.tiered {
                    return "no channel to silence (the Redis store has no memory tier)".to_owned();
                }
                self.proxies()
                    .iter()
                    .for_each(|link| link.silence_subscribers());
                let seen = wait_for(caches, "the silent channel counted as lost", |i, h| {
                    h.invalidation_channel_losses > losses[i]
                })
                .await;
                tokio::time::sleep(HOLD).await;
                self.proxies()
                    .iter()
                    .for_each(|link| link.speak_to_subscribers());
                seen
            }
            Fault::Failover => {
                let Target::Sentinels(set) = &mut self.target else {
                    panic!("a failover needs a Sentinel set");
                };
                let promoted = tokio::task::block_in_place(|| set.kill_named_master());
                let seen = wait_for(caches, "the master gone, memory serving", |_, h| {
                    !h.healthy && h.fallback_active
                })
                .await;
                tokio::task::block_in_place(|| set.wait_for_master(promoted));
                self.healed = run.now();
                seen
            }
            Fault::ClusterFailover | Fault::Reshard => {
                let Target::Cluster(cluster) = &mut self.target else {
                    panic!("{fault} needs a cluster");
                };
                let done = tokio::task::block_in_place(|| {
                    if fault == Fault::ClusterFailover {
                        let (master, replica) = cluster.kill_a_master();
                        cluster.wait_for_promotion(replica);
                        let port = |i: usize| cluster.node(i).port();
                        format!(
                            "node {} killed, node {} promoted",
                            port(master),
                            port(replica)
                        )
                    } else {
                        let masters = cluster.masters();
                        let (from, to) = (masters[0], masters[masters.len() - 1]);
                        cluster.reshard(from, to, RESHARD_SLOTS);
                        let port = |i: usize| cluster.node(i).port();
                        format!("slots moved from node {} to node {}", port(from), port(to))
                    }
                });
                self.healed = run.now();
                format!("{done}; then {}", describe(&healths(caches).await))
            }
            Fault::Full => {
                self.config("maxmemory-policy", "noeviction");
                self.config("maxmemory", "1");
                let seen = wait_for(caches, "writes refused, memory serving", |_, h| {
                    h.fallback_active
                        && h.error
                            .as_deref()
                            .is_some_and(|e| e.contains("OOM") || e.contains("maxmemory"))
                })
                .await;
                tokio::time::sleep(HOLD).await;
                self.config("maxmemory", "0");
                seen
            }
        }
    }

    /// Cuts (`up` false) or heals the first instance's link to Redis: its proxy refuses
    /// connections ([`Fault::Partition`]), or its veth link goes down
    /// ([`Fault::SilentPartition`]).
    fn link_of_instance_0(&self, up: bool) {
        match &self.target {
            Target::Namespaced(host) if up => tokio::task::block_in_place(|| host.heal(0)),
            Target::Namespaced(host) => tokio::task::block_in_place(|| host.cut(0)),
            _ if up => self.proxies()[0].accept(),
            _ => self.proxies()[0].refuse(),
        }
    }

    fn config(&self, name: &str, value: &str) {
        let () = self
            .server()
            .query(redis::cmd("CONFIG").arg("SET").arg(name).arg(value));
    }

    /// A numeric field of `INFO section`.
    fn stat(&self, section: &str, field: &str) -> u64 {
        let info: String = self.server().query(redis::cmd("INFO").arg(section));
        info.lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO {section} has no {field}:\n{info}"))
    }
}

async fn healths(caches: &[Cache]) -> Vec<Health> {
    let mut all = Vec::with_capacity(caches.len());
    for cache in caches {
        all.push(cache.health().await);
    }
    all
}

fn describe(states: &[Health]) -> String {
    let one = |h: &Health| {
        format!(
            "healthy {}, redis_connected {}, fallback_active {}, channel {:?}, pending {}, error {:?}",
            h.healthy,
            h.redis_connected,
            h.fallback_active,
            h.invalidation_channel,
            h.pending_invalidations,
            h.error
        )
    };
    states.iter().map(one).collect::<Vec<_>>().join(" | ")
}

/// Waits until the health of every instance `i` satisfies `shows(i, health)` (once each);
/// panics after [`LIMIT`]. Returns the states that satisfied it.
async fn wait_for(caches: &[Cache], what: &str, shows: impl Fn(usize, &Health) -> bool) -> String {
    let deadline = Instant::now() + LIMIT;
    let mut done: Vec<Option<Health>> = vec![None; caches.len()];
    let mut last: Vec<Option<Health>> = vec![None; caches.len()];
    loop {
        for (i, (cache, done)) in caches.iter().zip(done.iter_mut()).enumerate() {
            if done.is_none() {
                let health = cache.health().await;
                *done = shows(i, &health).then(|| health.clone());
                last[i] = Some(health);
            }
        }
        if done.iter().all(Option::is_some) {
            let states: Vec<Health> = done.into_iter().flatten().collect();
            return format!("{what}: {}", describe(&states));
        }
        assert!(
            Instant::now() < deadline,
            "health never showed \"{what}\" within {LIMIT:?}; last seen: {}",
            describe(&last.iter().flatten().cloned().collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every instance is healthy again — breaker closed, nothing left to replay,
/// and (tiered) the invalidation channel subscribed — and returns when.
async fn recovered(caches: &[Cache], tiered: bool) -> Instant {
    wait_for(caches, "recovered", |_, h| {
        h.healthy
            && h.redis_connected
            && !h.fallback_active
            && h.pending_invalidations == 0
            && h.invalidation_channel == tiered.then_some(true)
    })
    .await;
    Instant::now()
}
