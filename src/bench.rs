//! `rtm bench`: a load generator for the server, built on the SDK.
//!
//! Every latency is measured from the *intended* send time of a fixed-rate
//! schedule (so a stalled sender cannot hide queueing), recorded in an
//! HDR histogram; payloads carry a sequence number so loss, duplicates and
//! reordering are counted, not guessed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::client::{
    ChannelEvent, ClientConfig, ClientEvent, ClientEvents, RtmClient, RtmMessage,
    SendMessageOptions,
};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Hold N logged-in idle connections; report server memory per connection.
    Connect,
    /// Pairs exchanging peer messages at a fixed total rate; round-trip latency.
    Peer,
    /// One channel with N members, one publisher at a rate; deliveries/s and latency.
    Fanout,
    /// N clients each watching K others; login/logout cost and notification latency.
    Presence,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    pub scenario: Scenario,
    /// Server to load (default: spawn `rtm serve` on a free loopback port).
    #[arg(long)]
    pub server: Option<String>,
    /// Number of clients (pairs count twice for `peer`).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Messages per second in total (peer, fanout).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Peers each client watches (presence).
    #[arg(long, default_value_t = 50)]
    pub watch: usize,
    /// Write the report as JSON to this file too.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Latency summary in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub scenario: Option<Scenario>,
    pub clients: usize,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub throughput_per_s: f64,
    pub latency: Option<Latency>,
    /// Second latency of a scenario (presence: login time).
    pub latency2: Option<Latency>,
    pub server_rss_kb_before: Option<u64>,
    pub server_rss_kb_after: Option<u64>,
    pub rss_per_connection_kb: Option<f64>,
    pub notes: Vec<String>,
}

/// Microseconds from 1 µs to 60 s at 3 significant digits.
fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant, valid histogram bounds")
}

/// A spawned `rtm serve`, killed on drop.
struct SpawnedServer {
    child: std::process::Child,
    url: String,
    _home: PathBuf,
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn spawn_server() -> anyhow::Result<SpawnedServer> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let home = std::env::temp_dir().join(format!("rtm-bench-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    // Benchmarks push far beyond one person's call rate: lift the limits.
    let cfg = home.join("server.toml");
    std::fs::write(&cfg, "limit_scale = 100000\nqueue_frames = 65536\n")?;
    let exe = std::env::current_exe().context("cannot find the rtm binary")?;
    let child = std::process::Command::new(exe)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--log-level", "warn", "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(home.join("data"))
        .env("RTM_HOME", &home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("cannot start rtm serve")?;
    let url = format!("ws://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("the spawned server did not start listening on {url}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(SpawnedServer { child, url, _home: home })
}

fn bench_client_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(30),
        login_timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    }
}

async fn connect_many(url: &str, prefix: &str, n: usize) -> anyhow::Result<Vec<(RtmClient, ClientEvents)>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (c, e) = RtmClient::new(url, bench_client_config());
        c.login(&format!("{prefix}{i}"), None)
            .await
            .with_context(|| format!("login of client {i}"))?;
        out.push((c, e));
    }
    Ok(out)
}

/// `seq:<n>:<µs since start>`
fn payload(seq: u64, at: Instant, base: Instant) -> RtmMessage {
    RtmMessage::text(format!("{seq}:{}", at.duration_since(base).as_micros()))
}

fn parse_payload(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Tracks order of sequence numbers from one source.
#[derive(Default)]
struct SeqTrack {
    seen: std::collections::HashSet<u64>,
    last: Option<u64>,
    duplicates: u64,
    reordered: u64,
}

impl SeqTrack {
    fn record(&mut self, seq: u64) -> bool {
        if !self.seen.insert(seq) {
            self.duplicates += 1;
            return false;
        }
        if self.last.is_some_and(|l| seq < l) {
            self.reordered += 1;
        }
        self.last = Some(self.last.map_or(seq, |l| l.max(seq)));
        true
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let spawned = match &args.server {
        Some(_) => None,
        None => Some(spawn_server().await?),
    };
    let url = args
        .server
        .clone()
        .or_else(|| spawned.as_ref().map(|s| s.url.clone()))
        .unwrap_or_default();
    let pid = spawned.as_ref().map(|s| s.child.id());
    let mut report = match args.scenario {
        Scenario::Connect => connect(&url, &args, pid).await?,
        Scenario::Peer => peer(&url, &args).await?,
        Scenario::Fanout => fanout(&url, &args).await?,
        Scenario::Presence => presence(&url, &args).await?,
    };
    report.scenario = Some(args.scenario);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report)
}

async fn connect(url: &str, args: &BenchArgs, pid: Option<u32>) -> anyhow::Result<Report> {
    let before = pid.and_then(rss_kb);
    let clients = connect_many(url, "idle", args.clients).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = pid.and_then(rss_kb);
    let mut r = Report {
        clients: clients.len(),
        server_rss_kb_before: before,
        server_rss_kb_after: after,
        ..Report::default()
    };
    if let (Some(b), Some(a)) = (before, after) {
        r.rss_per_connection_kb = Some((a.saturating_sub(b)) as f64 / clients.len().max(1) as f64);
    } else {
        r.notes.push("server memory is only measured for a spawned server (no --server)".into());
    }
    for (c, _) in &clients {
        let _ = c.logout().await;
    }
    Ok(r)
}

async fn peer(url: &str, args: &BenchArgs) -> anyhow::Result<Report> {
    let pairs = (args.clients / 2).max(1);
    let senders = connect_many(url, "ping", pairs).await?;
    let echoers = connect_many(url, "pong", pairs).await?;
    // Echoers send every message straight back.
    for (client, mut events) in echoers {
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let ClientEvent::MessageFromPeer { message, peer_id, .. } = ev {
                    let _ = client
                        .send_message_to_peer(message, peer_id.as_str(), SendMessageOptions::default())
                        .await;
                }
            }
        });
    }
    let base = Instant::now();
    let per_pair_rate = (args.rate as f64 / pairs as f64).max(0.001);
    let interval = Duration::from_secs_f64(1.0 / per_pair_rate);
    let total = (per_pair_rate * args.duration as f64).ceil() as u64;
    let hist = Arc::new(Mutex::new(new_hist()));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, (client, mut events)) in senders.into_iter().enumerate() {
        let hist = hist.clone();
        let sent = sent.clone();
        let peer = format!("pong{i}");
        tasks.push(tokio::spawn(async move {
            let receiver = tokio::spawn(async move {
                let mut track = SeqTrack::default();
                let mut local = new_hist();
                let deadline = tokio::time::sleep(Duration::from_secs(3600));
                tokio::pin!(deadline);
                let mut got = 0u64;
                loop {
                    tokio::select! {
                        ev = events.recv() => match ev {
                            Some(ClientEvent::MessageFromPeer { message: RtmMessage::Text { text }, .. }) => {
                                if let Some((seq, at_us)) = parse_payload(&text)
                                    && track.record(seq)
                                {
                                    got += 1;
                                    let now_us = base.elapsed().as_micros() as u64;
                                    let _ = local.record(now_us.saturating_sub(at_us).max(1));
                                    if got == total { break; }
                                }
                            }
                            Some(_) => {}
                            None => break,
                        },
                        _ = &mut deadline => break,
                    }
                }
                (got, track, local)
            });
            let start = Instant::now() + Duration::from_millis((i as u64 * 7) % 1000);
            let mut ticker = tokio::time::interval_at(start, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            // In order, one at a time per pair: latency still counts from
            // the intended time, so a slow reply shows up, not hides.
            for seq in 0..total {
                let intended = ticker.tick().await;
                let msg = payload(seq, intended, base);
                sent.fetch_add(1, Ordering::Relaxed);
                let _ = client.send_message_to_peer(msg, &peer, SendMessageOptions::default()).await;
            }
            // Wait for the echoes (bounded).
            let res = tokio::time::timeout(Duration::from_secs(10), receiver).await;
            match res {
                Ok(Ok((got, track, local))) => {
                    hist.lock().await.add(&local).ok();
                    (got, track.duplicates, track.reordered)
                }
                _ => (0, 0, 0),
            }
        }));
    }
    let mut received = 0;
    let mut duplicates = 0;
    let mut reordered = 0;
    for t in tasks {
        if let Ok((g, d, r)) = t.await {
            received += g;
            duplicates += d;
            reordered += r;
        }
    }
    let elapsed = base.elapsed().as_secs_f64();
    let sent = sent.load(Ordering::Relaxed);
    let h = hist.lock().await;
    Ok(Report {
        clients: pairs * 2,
        sent,
        received,
        lost: sent.saturating_sub(received),
        duplicates,
        reordered,
        throughput_per_s: received as f64 / elapsed,
        latency: Some(Latency::of(&h)),
        notes: vec!["latency is the round trip ping → pong → ping, from the intended send time".into()],
        ..Report::default()
    })
}

async fn fanout(url: &str, args: &BenchArgs) -> anyhow::Result<Report> {
    let members = connect_many(url, "member", args.clients.max(2)).await?;
    let mut channels = Vec::new();
    for (c, _) in &members {
        let ch = c.create_channel("bench")?;
        ch.join().await?;
        channels.push(ch);
    }
    let base = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / (args.rate.max(1) as f64));
    let total = args.rate * args.duration;
    let receivers = members.len() - 1;
    let mut tasks = Vec::new();
    let mut iter = members.into_iter();
    let (publisher, _pe) = iter.next().context("no publisher")?;
    let _ = publisher;
    for (_c, mut events) in iter {
        tasks.push(tokio::spawn(async move {
            let mut track = SeqTrack::default();
            let mut local = new_hist();
            let mut got = 0u64;
            let idle = Duration::from_secs(5);
            while got < total {
                match tokio::time::timeout(idle, events.recv()).await {
                    Ok(Some(ClientEvent::Channel { event: ChannelEvent::ChannelMessage { message: RtmMessage::Text { text }, .. }, .. })) => {
                        if let Some((seq, at_us)) = parse_payload(&text)
                            && track.record(seq)
                        {
                            got += 1;
                            let now_us = base.elapsed().as_micros() as u64;
                            let _ = local.record(now_us.saturating_sub(at_us).max(1));
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            (got, track.duplicates, track.reordered, local, _c)
        }));
    }
    let publish_channel = channels.swap_remove(0);
    let publish_channel = Arc::new(publish_channel);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for seq in 0..total {
        let intended = ticker.tick().await;
        let _ = publish_channel.send_message(payload(seq, intended, base)).await;
    }
    let mut hist = new_hist();
    let mut received = 0;
    let mut duplicates = 0;
    let mut reordered = 0;
    let mut last_delivery = base;
    for t in tasks {
        if let Ok((g, d, r, local, _c)) = t.await {
            received += g;
            duplicates += d;
            reordered += r;
            hist.add(&local).ok();
            last_delivery = Instant::now();
        }
    }
    let elapsed = last_delivery.duration_since(base).as_secs_f64().max(args.duration as f64);
    let expected = total * receivers as u64;
    let _ = channels;
    Ok(Report {
        clients: receivers + 1,
        sent: total,
        received,
        lost: expected.saturating_sub(received),
        duplicates,
        reordered,
        throughput_per_s: received as f64 / elapsed,
        latency: Some(Latency::of(&hist)),
        notes: vec![format!("{receivers} receivers; throughput = deliveries per second")],
        ..Report::default()
    })
}

async fn presence(url: &str, args: &BenchArgs) -> anyhow::Result<Report> {
    let n = args.clients.max(args.watch + 1);
    let k = args.watch;
    let clients = connect_many(url, "p", n).await?;
    // Client i watches i+1 … i+k (mod n), plus everyone watches the "churn" uid
    // through the first k clients.
    for (i, (c, _)) in clients.iter().enumerate() {
        let ids: Vec<String> = (1..=k).map(|d| format!("p{}", (i + d) % n)).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        c.subscribe_peers_online_status(&refs).await?;
    }
    let watchers: Vec<_> = clients.into_iter().take(k).collect();
    let mut watcher_events = Vec::new();
    for (c, e) in watchers {
        c.subscribe_peers_online_status(&["churn"]).await?;
        watcher_events.push((c, e));
    }
    // Drain the initial state reports.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (_, e) in watcher_events.iter_mut() {
        while e.try_recv().is_some() {}
    }
    let mut login_hist = new_hist();
    let mut notify_hist = new_hist();
    let cycles = (args.duration * 10).max(10);
    let mut missing = 0u64;
    for _ in 0..cycles {
        let (churn, _ce) = RtmClient::new(url, bench_client_config());
        let t0 = Instant::now();
        churn.login("churn", None).await?;
        let _ = login_hist.record(t0.elapsed().as_micros().max(1) as u64);
        // Every watcher must hear ONLINE.
        let mut latest: HashMap<usize, Duration> = HashMap::new();
        for (i, (_, e)) in watcher_events.iter_mut().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match e.recv().await {
                        Some(ClientEvent::PeersOnlineStatusChanged(m)) if m.keys().any(|u| u.as_str() == "churn") => return true,
                        Some(_) => continue,
                        None => return false,
                    }
                }
            })
            .await
            .unwrap_or(false);
            if got {
                latest.insert(i, t0.elapsed());
            } else {
                missing += 1;
            }
        }
        for d in latest.values() {
            let _ = notify_hist.record(d.as_micros().max(1) as u64);
        }
        let t1 = Instant::now();
        churn.logout().await?;
        let _ = login_hist.record(t1.elapsed().as_micros().max(1) as u64);
        for (_, e) in watcher_events.iter_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if let Some(ClientEvent::PeersOnlineStatusChanged(m)) = e.recv().await
                        && m.keys().any(|u| u.as_str() == "churn")
                    {
                        break;
                    }
                }
            })
            .await;
        }
    }
    Ok(Report {
        clients: n,
        sent: cycles * 2,
        received: notify_hist.len(),
        lost: missing,
        latency: Some(Latency::of(&notify_hist)),
        latency2: Some(Latency::of(&login_hist)),
        notes: vec![
            format!("{n} clients each watching {k} others; a churning uid watched by {k} clients logs in and out {cycles} times"),
            "latency = login start → watcher sees ONLINE (upper bound; watchers are read one after another); latency2 = login and logout call times".into(),
        ],
        ..Report::default()
    })
}

/// Prints a report as a short table.
pub fn print(report: &Report) {
    println!("scenario        {:?}", report.scenario);
    println!("clients         {}", report.clients);
    if report.sent > 0 {
        println!("sent            {}", report.sent);
        println!("received        {}", report.received);
        println!("lost            {}", report.lost);
        println!("duplicates      {}", report.duplicates);
        println!("reordered       {}", report.reordered);
        println!("throughput      {:.0} /s", report.throughput_per_s);
    }
    if let Some(l) = &report.latency {
        println!(
            "latency         p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs  (n={})",
            l.p50_us, l.p99_us, l.p999_us, l.max_us, l.count
        );
    }
    if let Some(l) = &report.latency2 {
        println!(
            "latency2        p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs  (n={})",
            l.p50_us, l.p99_us, l.p999_us, l.max_us, l.count
        );
    }
    if let (Some(b), Some(a)) = (report.server_rss_kb_before, report.server_rss_kb_after) {
        println!("server RSS      {b} kB → {a} kB");
    }
    if let Some(per) = report.rss_per_connection_kb {
        println!("per connection  {per:.1} kB");
    }
    for n in &report.notes {
        println!("note            {n}");
    }
}
