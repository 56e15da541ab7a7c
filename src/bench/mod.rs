//! `rtm bench`: a load generator for rtm and, in the same run, for the
//! references it is measured against.
//!
//! - [`scenarios`]: connect, peer, fanout, fanout-max, churn, presence,
//!   invite, each written for one share of the clients so several load
//!   processes can run it;
//! - [`media`]: file upload and download throughput, the server's memory
//!   during uploads, and chat latency while the same client uploads;
//! - [`wire`]: the adapters that speak rtm, the bare relay, NATS-over-WebSocket
//!   and socket.io with raw WebSocket frames;
//! - [`pacer`]: fixed-rate sending on a schedule (latency counts from the
//!   intended send time);
//! - [`stats`]: HDR histograms, sequence tracking (loss, duplicates,
//!   reordering), the counts a load process reports;
//! - [`procs`]: the spawned servers (memory read from /proc) and the worker
//!   processes with their start barrier;
//! - [`bare`]: the bare tokio-tungstenite relay, the physical-limit reference;
//! - `sdk`: the peer and fanout scenarios through the Rust SDK (`--sdk`),
//!   what an application using `rtm::client` sees.
//!
//! `rtm bench compare` runs the chosen scenarios against every target one
//! after another and writes JSON and a markdown table to `bench/results/`.

pub mod bare;
pub mod barrier;
pub mod media;
mod pacer;
pub mod procs;
pub mod redis_stats;
pub mod scenarios;
mod sdk;
pub mod stats;
pub mod wire;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use stats::Latency;
pub use wire::Target;

use barrier::Barrier;
use procs::{Workers, cpu_seconds, rss_kb};
use scenarios::Ctx;
use stats::{Partial, wall_us};

use crate::protocol::MAX_OPEN_INVITATIONS;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Hold N logged-in idle connections; report server memory per connection.
    Connect,
    /// Pairs exchanging peer messages at a fixed total rate; round-trip latency and loss.
    Peer,
    /// One channel with N members, publishers at a rate; deliveries/s and delivery latency.
    Fanout,
    /// One channel with N members and one publisher sending as fast as the
    /// slowest member reads (at most --window messages ahead of it): the
    /// most deliveries/s the server sustains, with nothing lost.
    FanoutMax,
    /// connect/login/join/leave/logout cycles at a fixed rate (rtm only).
    Churn,
    /// N clients each watching K others while those come and go (rtm only).
    Presence,
    /// Caller/callee pairs (--pairs) ringing at a fixed total --rate: each
    /// invitation is acknowledged and accepted by its callee; times send →
    /// received-by-peer and send → accepted at the caller, counts failed and
    /// unanswered invitations (rtm only; a --server needs limit_scale ≥
    /// rate ÷ pairs ÷ 2 in its config, the spawned server has it).
    Invite,
    /// Files through the SDK against a spawned `rtm serve` (rtm only):
    /// --transfers uploads of --size-mb at once (one user each), then their
    /// downloads, with MB/s and transfer times; the server's memory before
    /// and during the uploads; then one client's chat messages at
    /// --chat-rate for --duration, one way, without and then with that
    /// client uploading files one after another (p50/p99 side by side).
    Media,
    /// Run --scenarios against every one of --targets and write a table to --out.
    Compare,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Connect => "connect",
            Scenario::Peer => "peer",
            Scenario::Fanout => "fanout",
            Scenario::FanoutMax => "fanout-max",
            Scenario::Churn => "churn",
            Scenario::Presence => "presence",
            Scenario::Invite => "invite",
            Scenario::Media => "media",
            Scenario::Compare => "compare",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[arg(required_unless_present_any = ["bare_server", "worker"])]
    pub scenario: Option<Scenario>,
    /// Server to load (ws://127.0.0.x:PORT), or several nodes of one cluster
    /// comma-separated (ws://a,ws://b): the clients are spread over them
    /// round-robin. Without it the server is spawned (--spawn, --nodes).
    #[arg(long, conflicts_with_all = ["spawn", "nodes"])]
    pub server: Option<String>,
    /// rtm: spawn N servers, each a node of the cluster on --redis
    /// (`rtm serve --cluster`), and spread the clients over them round-robin.
    #[arg(long, requires = "redis")]
    pub nodes: Option<usize>,
    /// The Redis of the cluster (redis://HOST:PORT): spawned servers join it
    /// as nodes (one unless --nodes), and the report counts the Redis
    /// commands the measured phase ran (INFO commandstats before and after).
    #[arg(long, value_name = "REDIS_URL")]
    pub redis: Option<String>,
    /// Spawn the server under test on a free loopback port (the default) and
    /// read its memory from /proc.
    #[arg(long)]
    pub spawn: bool,
    /// The server under test.
    #[arg(long, value_enum, default_value = "rtm")]
    pub target: Target,
    /// Number of clients (peer, invite: two per pair; fanout: channel
    /// members; presence: watchers).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// peer, invite: number of pairs (the same as --clients 2×N).
    #[arg(long, conflicts_with = "clients")]
    pub pairs: Option<usize>,
    /// Per second in total: messages (peer, fanout), cycles (churn),
    /// logins+logouts (presence), invitations (invite).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of load (connect: how long the connections are held).
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Publishing members (fanout); the rate is split among them.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// fanout-max: messages the publisher may be ahead of the slowest member.
    #[arg(long, default_value_t = 1024)]
    pub window: u64,
    /// Users each client watches (presence).
    #[arg(long, default_value_t = 10)]
    pub watch: usize,
    /// Load processes to spread the clients over [default: one per 15,000 clients].
    #[arg(long)]
    pub procs: Option<usize>,
    /// Loopback source addresses 127.0.0.1… to spread the clients over.
    #[arg(long, default_value_t = 4)]
    pub source_addrs: usize,
    /// Drive rtm through the Rust SDK (peer, fanout) instead of raw frames.
    #[arg(long)]
    pub sdk: bool,
    /// Write the report as JSON to this file too.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// compare: the targets, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "rtm,bare,nats,socketio"
    )]
    pub targets: Vec<Target>,
    /// compare: the scenarios, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "fanout,peer,connect"
    )]
    pub scenarios: Vec<Scenario>,
    /// compare: clients and rate of the peer scenario [default: --clients, --rate].
    #[arg(long)]
    pub peer_clients: Option<usize>,
    #[arg(long)]
    pub peer_rate: Option<f64>,
    /// compare: clients of the connect scenario [default: --clients].
    #[arg(long)]
    pub connect_clients: Option<usize>,
    /// compare: where the JSON and markdown results go.
    #[arg(long, value_name = "DIR", default_value = "bench/results")]
    pub out: PathBuf,
    /// Where bench/peers (the socket.io script and its node_modules) is.
    #[arg(long, value_name = "DIR", default_value = "bench/peers")]
    pub peers_dir: PathBuf,
    /// Run the bare reference relay on HOST:PORT instead of a benchmark.
    #[arg(long, value_name = "HOST:PORT")]
    pub bare_server: Option<String>,
    /// Bare relay: drop every n-th delivery (to test the bench's loss count).
    #[arg(long, default_value_t = 0)]
    pub fault_drop_every: u64,
    /// Bare relay: send every n-th delivery twice (to test the duplicate count).
    #[arg(long, default_value_t = 0)]
    pub fault_dup_every: u64,
    /// media: transfers at once (each by its own user).
    #[arg(long, default_value_t = 1)]
    pub transfers: usize,
    /// media: size of each file in MB (1 MB = 1,048,576 bytes; at most 32,
    /// the server's limit).
    #[arg(long, default_value_t = 32.0)]
    pub size_mb: f64,
    /// media: chat messages per second in the latency phases.
    #[arg(long, default_value_t = 100.0)]
    pub chat_rate: f64,
    /// Internal: run one share of a scenario as a load worker.
    #[arg(long, hide = true)]
    pub worker: Option<String>,
}

impl BenchArgs {
    /// Arguments for `scenario` against `target` with everything else default
    /// (what tests and callers start from).
    pub fn new(scenario: Scenario, target: Target) -> BenchArgs {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: BenchArgs,
        }
        let mut a = P::parse_from(["bench", "connect"]).a;
        a.scenario = Some(scenario);
        a.target = target;
        a
    }

    /// The URLs of `--server`, split at commas (empty without it).
    pub fn server_urls(&self) -> Vec<String> {
        self.server
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect()
    }

    /// `--pairs N` is `--clients 2N`: the scenarios count clients.
    fn with_pairs(mut self) -> BenchArgs {
        if let Some(pairs) = self.pairs {
            self.clients = pairs.saturating_mul(2);
        }
        self
    }
}

/// The result of one scenario against one target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub scenario: Option<Scenario>,
    pub target: Option<Target>,
    /// Clients set up (connected, logged in, joined).
    pub clients: u64,
    pub connect_failures: u64,
    pub rate: f64,
    pub duration_s: f64,
    pub load_processes: usize,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub errors: u64,
    /// invite: invitations still open when the run ended (neither accepted
    /// nor failed): the ones a server lost or answered too late.
    #[serde(default)]
    pub unanswered: u64,
    /// peer: round trips/s; fanout: deliveries/s; churn: cycles/s.
    pub throughput_per_s: f64,
    /// peer: round trip; fanout: delivery; churn: cycle; presence:
    /// notification; invite: send → `local_invitation_accepted`.
    pub latency: Option<Latency>,
    /// connect/peer/fanout: setup (connect+login+join) time; presence: login
    /// time; invite: send → `local_invitation_received_by_peer`.
    pub latency2: Option<Latency>,
    /// How far behind its schedule the load generator sent.
    pub send_lag: Option<Latency>,
    pub server_rss_kb_before: Option<u64>,
    pub server_rss_kb_loaded: Option<u64>,
    pub rss_per_connection_kb: Option<f64>,
    /// CPU time (user + system) the spawned server used from the start of
    /// the load until the last receipt, in seconds.
    #[serde(default)]
    pub server_cpu_s: Option<f64>,
    /// peer: round trips, fanout: deliveries, per server CPU-second.
    #[serde(default)]
    pub per_server_cpu_s: Option<f64>,
    pub first_error: Option<String>,
    pub notes: Vec<String>,
    /// media: transfers, server memory, chat without and with uploads.
    #[serde(default)]
    pub media: Option<media::MediaReport>,
    /// The servers loaded (several: a cluster, clients round-robin).
    #[serde(default)]
    pub servers: usize,
    /// With --redis: what the measured phase cost Redis.
    #[serde(default)]
    pub redis: Option<redis_stats::RedisCost>,
}

impl Report {
    fn from_partial(p: &Partial, ctx: &Ctx, start_us: u64) -> Report {
        let window =
            ((p.last_receipt_us.saturating_sub(start_us)) as f64 / 1e6).max(ctx.duration_s);
        let lat = |h: &hdrhistogram::Histogram<u64>| (!h.is_empty()).then(|| Latency::of(h));
        Report {
            scenario: Some(ctx.scenario),
            target: Some(ctx.target),
            clients: p.clients,
            connect_failures: p.connect_failures,
            rate: ctx.rate,
            duration_s: ctx.duration_s,
            load_processes: ctx.shards,
            sent: p.sent,
            expected: p.expected,
            received: p.received,
            lost: p.expected.saturating_sub(p.received),
            duplicates: p.duplicates,
            reordered: p.reordered,
            errors: p.errors,
            unanswered: p.unanswered,
            throughput_per_s: if ctx.scenario == Scenario::Connect {
                0.0
            } else {
                p.received as f64 / window
            },
            latency: lat(&p.latency),
            latency2: lat(&p.latency2),
            send_lag: lat(&p.send_lag),
            first_error: p.first_error.clone(),
            ..Report::default()
        }
    }
}

/// The entry point of `rtm bench`: runs the bare relay, a worker share, a
/// comparison or one scenario, and prints the result.
pub async fn main(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(addr) = &args.bare_server {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        println!("bare relay listening on ws://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.cancel();
        });
        let faults = bare::Faults {
            drop_every: args.fault_drop_every,
            dup_every: args.fault_dup_every,
        };
        bare::serve(listener, faults, shutdown).await;
        return Ok(());
    }
    if let Some(json) = &args.worker {
        let ctx: Ctx = serde_json::from_str(json).context("bad worker context")?;
        let p = scenarios::run_shard(ctx, Barrier::Stdio).await?;
        println!("RESULT {}", serde_json::to_string(&p)?);
        return Ok(());
    }
    if args.scenario == Some(Scenario::Compare) {
        let reports = compare(&args.with_pairs()).await?;
        println!("{}", markdown_table(&reports));
        return Ok(());
    }
    let report = run(args).await?;
    print(&report);
    Ok(())
}

/// Runs one scenario against one target and writes `--json` if asked.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let args = args.with_pairs();
    let scenario = args.scenario.context("which scenario?")?;
    let report = if scenario == Scenario::Media {
        media::run(&args).await?
    } else if args.sdk {
        if args.target != Target::Rtm {
            bail!("--sdk drives rtm only");
        }
        let spawned = match &args.server {
            Some(_) => None,
            None => Some(procs::spawn(Target::Rtm, &args.peers_dir).await?),
        };
        let url = args
            .server_urls()
            .into_iter()
            .next()
            .or_else(|| spawned.as_ref().map(|s| s.url.clone()))
            .unwrap_or_default();
        sdk::run(scenario, &url, &args).await?
    } else {
        run_on(&args, scenario, args.target).await?
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report)
}

/// One scenario against one target, spawning the server unless `--server`.
async fn run_on(args: &BenchArgs, scenario: Scenario, target: Target) -> anyhow::Result<Report> {
    let spawned = if args.server.is_some() {
        Vec::new()
    } else if args.redis.is_some() || args.nodes.is_some_and(|n| n > 1) {
        if target != Target::Rtm {
            bail!("--nodes and --redis spawn rtm cluster nodes: rtm only");
        }
        procs::spawn_rtm_nodes(args.nodes.unwrap_or(1), args.redis.as_deref()).await?
    } else {
        vec![procs::spawn(target, &args.peers_dir).await?]
    };
    let urls = if spawned.is_empty() {
        args.server_urls()
    } else {
        spawned.iter().map(|s| s.url.clone()).collect()
    };
    if urls.is_empty() {
        bail!("--server has no URL");
    }
    // Memory and CPU are summed over the spawned servers.
    let pids: Vec<u32> = spawned.iter().filter_map(|s| s.pid).collect();
    let sum = |f: &dyn Fn(u32) -> Option<u64>| -> Option<u64> {
        (!pids.is_empty())
            .then(|| pids.iter().map(|&p| f(p)).sum::<Option<u64>>())
            .flatten()
    };
    let cpu = || -> Option<f64> {
        (!pids.is_empty())
            .then(|| pids.iter().map(|&p| cpu_seconds(p)).sum::<Option<f64>>())
            .flatten()
    };
    // The baseline after the server has settled.
    tokio::time::sleep(Duration::from_millis(if spawned.len() > 1 {
        1000
    } else {
        300
    }))
    .await;
    let before = sum(&rss_kb);
    let shards = match scenario {
        // Presence shards too: each load process watches its own churners.
        Scenario::FanoutMax => 1,
        _ => args.procs.unwrap_or(args.clients.div_ceil(15_000)).max(1),
    };
    let base = Ctx {
        scenario,
        target,
        urls: urls.clone(),
        clients: args.clients,
        rate: args.rate,
        duration_s: args.duration,
        publishers: args.publishers,
        window: args.window,
        watch: args.watch,
        source_addrs: args.source_addrs,
        shard: 0,
        shards,
    };
    let worker_ctxs: Vec<Ctx> = (1..shards)
        .map(|shard| Ctx {
            shard,
            ..base.clone()
        })
        .collect();
    let mut workers = Workers::spawn(&worker_ctxs)?;
    let (ready_tx, ready_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    let mut local = tokio::spawn(scenarios::run_shard(
        base.clone(),
        Barrier::Local {
            ready: Some(ready_tx),
            go: Some(go_rx),
        },
    ));
    // Set-up of the local share; a failure there ends the run.
    tokio::select! {
        r = ready_rx => { if r.is_err() { local.await??; bail!("the load ended before it started"); } }
        r = &mut local => { r??; bail!("the load ended before it started"); }
    }
    workers.ready().await?;
    // Let the server finish what the setup started before reading its memory.
    tokio::time::sleep(Duration::from_millis(if scenario == Scenario::Connect {
        1000
    } else {
        300
    }))
    .await;
    let loaded = sum(&rss_kb);
    let redis_before = match &args.redis {
        Some(r) => Some(redis_stats::snapshot(r).await?),
        None => None,
    };
    let start = wall_us() + 200_000;
    let cpu_before = cpu();
    let _ = go_tx.send(start);
    workers.go(start).await?;
    let mut total = local.await??;
    let cpu_after = cpu();
    for p in workers.results().await? {
        total.merge(&p);
    }
    let redis_after = match &args.redis {
        Some(r) => Some(redis_stats::snapshot(r).await?),
        None => None,
    };
    let end_us = wall_us();
    let mut report = Report::from_partial(&total, &base, start);
    report.servers = urls.len();
    if let (Some(b), Some(a)) = (&redis_before, &redis_after) {
        // peer: `sent` counts round trips, two peer messages each.
        let messages = if scenario == Scenario::Peer {
            total.sent * 2
        } else {
            total.sent
        };
        let window_s = end_us.saturating_sub(start) as f64 / 1e6;
        report.redis = Some(redis_stats::RedisCost::between(
            b,
            a,
            messages,
            total.received,
            window_s,
        ));
    }
    if let (Some(b), Some(a)) = (cpu_before, cpu_after)
        && scenario != Scenario::Connect
    {
        let used = (a - b).max(0.0);
        report.server_cpu_s = Some(used);
        if used > 0.0 {
            report.per_server_cpu_s = Some(total.received as f64 / used);
        }
    }
    report.server_rss_kb_before = before;
    report.server_rss_kb_loaded = loaded;
    if let (Some(b), Some(a)) = (before, loaded) {
        let n = match scenario {
            Scenario::Churn => 0,
            Scenario::Presence => report.clients,
            _ => report.clients,
        };
        if n > 0 {
            report.rss_per_connection_kb = Some(a.saturating_sub(b) as f64 / n as f64);
        }
    } else {
        report
            .notes
            .push("server memory is only measured for a spawned server (no --server)".into());
    }
    report.notes.push(note(scenario, args));
    Ok(report)
}

fn note(scenario: Scenario, args: &BenchArgs) -> String {
    match scenario {
        Scenario::Connect => format!("{} idle logged-in connections held {} s; memory per connection = (RSS with them − RSS before) / connections", args.clients, args.duration),
        Scenario::Peer => format!("{} pairs; latency = round trip a → server → b → server → a, from the intended send time", (args.clients / 2).max(1)),
        Scenario::Fanout => format!("{} members, {} publisher(s); throughput = deliveries per second; latency = publish intended time → delivery", args.clients.max(2), args.publishers),
        Scenario::FanoutMax => format!("{} members, one publisher at most {} messages ahead of the slowest member; throughput = deliveries per second; latency = actual send → delivery", args.clients.max(2), args.window),
        Scenario::Churn => "throughput = cycles per second; latency = intended start → connect, login, join, leave, logout done".into(),
        Scenario::Presence => format!("{} watchers each watching {} churning users; latency = login/logout frame sent → watcher notified; latency2 = login time from the schedule", args.clients, args.watch),
        Scenario::Invite => invite_note(args),
        Scenario::Media | Scenario::Compare => String::new(),
    }
}

/// What the invite report means, and the `limit_scale` a server given with
/// `--server` needs: rtm allows 10 invitations per 5 s per caller, times the
/// server's `limit_scale` (the spawned server has 100,000).
fn invite_note(args: &BenchArgs) -> String {
    let pairs = (args.clients / 2).max(1);
    let per_caller = args.rate / pairs as f64;
    let scale = (per_caller * 5.0 / 10.0).ceil().max(1.0);
    format!(
        "{pairs} caller/callee pairs, {per_caller:.1} invitations/s per caller; throughput = \
         invitations accepted per second; latency = intended send → local_invitation_accepted \
         at the caller; latency2 = intended send → local_invitation_received_by_peer; errors = \
         invitations that failed (error reply, failure event, refusal, or not sent because the \
         caller already had {MAX_OPEN_INVITATIONS} open); unanswered = still open at the end. \
         A server given with --server needs limit_scale ≥ {scale} in its config"
    )
}

/// Runs every scenario against every target, one after another, and writes
/// `<out>/<date>.json`, `<out>/<date>.md` and `<out>/latest.{json,md}`.
pub async fn compare(args: &BenchArgs) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for &scenario in &args.scenarios {
        if matches!(
            scenario,
            Scenario::Compare
                | Scenario::Churn
                | Scenario::Presence
                | Scenario::Invite
                | Scenario::Media
        ) {
            bail!(
                "compare runs connect, peer and fanout; {} is rtm only",
                scenario.name()
            );
        }
        let mut a = args.clone();
        match scenario {
            Scenario::Peer => {
                a.clients = args.peer_clients.unwrap_or(args.clients);
                a.rate = args.peer_rate.unwrap_or(args.rate);
            }
            Scenario::Connect => a.clients = args.connect_clients.unwrap_or(args.clients),
            _ => {}
        }
        for &target in &args.targets {
            eprintln!(
                "== {} against {} ({} clients, {}/s)",
                scenario.name(),
                target.name(),
                a.clients,
                a.rate
            );
            let r = match run_on(&a, scenario, target).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("   failed: {e:#}");
                    Report {
                        scenario: Some(scenario),
                        target: Some(target),
                        first_error: Some(format!("{e:#}")),
                        notes: vec!["the run failed".into()],
                        ..Report::default()
                    }
                }
            };
            eprintln!("   {}", one_line(&r));
            reports.push(r);
            // Let sockets in TIME_WAIT and the previous server go.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    write_results(args, &reports)?;
    Ok(reports)
}

fn one_line(r: &Report) -> String {
    let l = r.latency.clone().unwrap_or_default();
    format!(
        "{:.0}/s  {} per server CPU-s  p50 {} µs  p99 {} µs  p99.9 {} µs  lost {}  dup {}  mem/conn {}",
        r.throughput_per_s,
        r.per_server_cpu_s.map_or("-".into(), |c| format!("{c:.0}")),
        l.p50_us,
        l.p99_us,
        l.p999_us,
        r.lost,
        r.duplicates,
        r.rss_per_connection_kb
            .map_or("-".into(), |k| format!("{k:.1} KB"))
    )
}

/// What machine the numbers come from.
pub fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem = read("/proc/meminfo")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let cmd = |c: &str, a: &[&str]| {
        std::process::Command::new(c)
            .args(a)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let socketio = read("bench/peers/node_modules/socket.io/package.json");
    let socketio = serde_json::from_str::<serde_json::Value>(&socketio)
        .ok()
        .and_then(|v| v["version"].as_str().map(String::from))
        .unwrap_or_default();
    serde_json::json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory": mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "load_average": read("/proc/loadavg").trim(),
        "open_files_limit": cmd("sh", &["-c", "ulimit -n"]),
        "rtm_commit": cmd("git", &["rev-parse", "--short", "HEAD"]),
        "nats_server": cmd("nats-server", &["--version"]),
        "node": cmd("node", &["--version"]),
        "socket_io": socketio,
    })
}

/// UTC `YYYY-MM-DDTHH-MM-SSZ` (file-name safe).
fn utc_stamp() -> String {
    let secs = wall_us() / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn write_results(args: &BenchArgs, reports: &[Report]) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let stamp = utc_stamp();
    let machine = machine();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let json = serde_json::json!({
        "date": stamp,
        "command": command,
        "machine": machine,
        "reports": reports,
    });
    let md = format!(
        "# rtm bench compare, {stamp}\n\nCommand: `{command}`\n\nMachine: {}\n\n{}\n",
        machine_line(&machine),
        markdown_table(reports)
    );
    for name in [stamp.as_str(), "latest"] {
        write(
            &args.out.join(format!("{name}.json")),
            &serde_json::to_string_pretty(&json)?,
        )?;
        write(&args.out.join(format!("{name}.md")), &md)?;
    }
    eprintln!(
        "results: {}",
        args.out.join(format!("{stamp}.md")).display()
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn machine_line(m: &serde_json::Value) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
    format!(
        "{} × {} cores, {}, Linux {}, load average {}; nats-server {}, node {}, socket.io {}, rtm {}",
        s("cpu"),
        m["cores"],
        s("memory"),
        s("kernel"),
        s("load_average"),
        s("nats_server"),
        s("node"),
        s("socket_io"),
        s("rtm_commit")
    )
}

/// One table: each report, with the ratio of each peer to rtm in the same
/// scenario (throughput: peer ÷ rtm; latency and memory: peer ÷ rtm, so
/// above 1 means rtm is better for those).
pub fn markdown_table(reports: &[Report]) -> String {
    let mut out = String::from(
        "| scenario | server | clients | rate/s | throughput/s | × rtm | per server CPU-s | p50 µs | p99 µs | p99.9 µs | p99 × rtm | lost | dup | server KB/conn | mem × rtm |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let ratio = |a: f64, b: f64| {
        if b > 0.0 && a > 0.0 {
            format!("{:.2}", a / b)
        } else {
            "-".into()
        }
    };
    for r in reports {
        let rtm = reports
            .iter()
            .find(|o| o.scenario == r.scenario && o.target == Some(Target::Rtm));
        let l = r.latency.clone().unwrap_or_default();
        let (tr, lr, mr) = match rtm {
            Some(b) => (
                ratio(r.throughput_per_s, b.throughput_per_s),
                ratio(
                    l.p99_us as f64,
                    b.latency.as_ref().map_or(0.0, |x| x.p99_us as f64),
                ),
                ratio(
                    r.rss_per_connection_kb.unwrap_or(0.0),
                    b.rss_per_connection_kb.unwrap_or(0.0),
                ),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let failed = r.first_error.is_some() && r.clients == 0;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.scenario.map_or("", Scenario::name),
            r.target.map_or("", Target::name),
            r.clients,
            if r.scenario == Some(Scenario::Connect) {
                "-".into()
            } else {
                format!("{:.0}", r.rate)
            },
            if failed {
                "failed".into()
            } else if r.scenario == Some(Scenario::Connect) {
                "-".into()
            } else {
                format!("{:.0}", r.throughput_per_s)
            },
            if r.scenario == Some(Scenario::Connect) {
                "-".into()
            } else {
                tr
            },
            r.per_server_cpu_s.map_or("-".into(), |c| format!("{c:.0}")),
            if r.latency.is_some() {
                l.p50_us.to_string()
            } else {
                "-".into()
            },
            if r.latency.is_some() {
                l.p99_us.to_string()
            } else {
                "-".into()
            },
            if r.latency.is_some() {
                l.p999_us.to_string()
            } else {
                "-".into()
            },
            if r.latency.is_some() { lr } else { "-".into() },
            r.lost,
            r.duplicates,
            r.rss_per_connection_kb
                .map_or("-".into(), |k| format!("{k:.1}")),
            mr,
        ));
    }
    out
}

/// Prints a report as a short table.
pub fn print(r: &Report) {
    println!("scenario        {}", r.scenario.map_or("", Scenario::name));
    println!("target          {}", r.target.map_or("", Target::name));
    if let Some(m) = &r.media {
        media::print(m);
        if let Some(e) = &r.first_error {
            println!("first error     {e}");
        }
        for n in &r.notes {
            println!("note            {n}");
        }
        return;
    }
    println!(
        "clients         {} ({} failed to set up, {} load process(es))",
        r.clients, r.connect_failures, r.load_processes
    );
    if r.servers > 1 {
        println!("servers         {} (clients round-robin)", r.servers);
    }
    if r.sent > 0 || r.expected > 0 {
        println!("sent            {}", r.sent);
        println!("expected        {}", r.expected);
        println!("received        {}", r.received);
        println!("lost            {}", r.lost);
        println!("duplicates      {}", r.duplicates);
        println!("reordered       {}", r.reordered);
        println!("errors          {}", r.errors);
        if r.scenario == Some(Scenario::Invite) {
            println!("unanswered      {}", r.unanswered);
        }
        println!("throughput      {:.0} /s", r.throughput_per_s);
    }
    let show = |name: &str, l: &Option<Latency>| {
        if let Some(l) = l {
            println!(
                "{name:<15} p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs  (n={})",
                l.p50_us, l.p99_us, l.p999_us, l.max_us, l.count
            );
        }
    };
    if r.scenario == Some(Scenario::Invite) {
        show("accepted", &r.latency);
        show("received by peer", &r.latency2);
    } else {
        show("latency", &r.latency);
        show("latency2", &r.latency2);
    }
    show("send lag", &r.send_lag);
    if let (Some(b), Some(a)) = (r.server_rss_kb_before, r.server_rss_kb_loaded) {
        println!("server RSS      {b} kB → {a} kB");
    }
    if let Some(per) = r.rss_per_connection_kb {
        println!("per connection  {per:.1} kB");
    }
    if let (Some(cpu), Some(per)) = (r.server_cpu_s, r.per_server_cpu_s) {
        println!("server CPU      {cpu:.2} s  ({per:.0} received per CPU-second)");
    }
    if let Some(c) = &r.redis {
        let f = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.2}"));
        println!(
            "Redis commands  {}  ({} per message, {} per delivery, {:.0}/s; instantaneous_ops_per_sec {})",
            c.commands,
            f(c.per_message),
            f(c.per_delivery),
            c.ops_per_s,
            c.instantaneous_ops_per_sec
        );
        println!("Redis top       {}", c.top.join(" "));
        println!(
            "Redis memory    {} B → {} B (used_memory)",
            c.used_memory_before, c.used_memory_after
        );
    }
    if let Some(e) = &r.first_error {
        println!("first error     {e}");
    }
    for n in &r.notes {
        println!("note            {n}");
    }
}
