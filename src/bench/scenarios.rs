//! The scenarios, each written for one share ("shard") of the clients so the
//! same code runs in the coordinator and in worker processes. A shard sets up
//! its clients, waits at the barrier for the common start, runs the load and
//! returns its [`Partial`] counts.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::Scenario;
use super::barrier::Barrier;
use super::pacer::{self, Lane};
use super::stats::{Partial, Seen, SeqTrack, parse_payload, payload, record, wall_us};
use super::wire::{self, Decoder, Ev, Link, Target};
use crate::protocol::{Event, MAX_OPEN_INVITATIONS, Reply, Request, ServerFrame};

/// Everything one load process needs to run its share (sent to workers as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ctx {
    pub scenario: Scenario,
    pub target: Target,
    /// The servers; client slot k talks to `urls[k % urls.len()]`.
    pub urls: Vec<String>,
    pub clients: usize,
    pub rate: f64,
    pub duration_s: f64,
    pub publishers: usize,
    /// fanout-max: how far the publisher may run ahead of the slowest member.
    #[serde(default)]
    pub window: u64,
    pub watch: usize,
    pub source_addrs: usize,
    pub shard: usize,
    pub shards: usize,
}

/// Connections opened at once per load process while setting up.
const CONNECT_CONCURRENCY: usize = 64;
/// After the last scheduled send, how long readers wait for stragglers.
const DRAIN: Duration = Duration::from_secs(3);
/// How long a reader that has everything keeps reading, for late duplicates.
const LINGER: Duration = Duration::from_millis(250);
/// Channel used by fanout.
const CHANNEL: &str = "bench";

impl Ctx {
    /// This shard's part of `0..n`.
    pub fn range(&self, n: usize) -> Range<usize> {
        let per = n / self.shards;
        let extra = n % self.shards;
        let lo = self.shard * per + self.shard.min(extra);
        lo..lo + per + usize::from(self.shard < extra)
    }

    /// The server of client slot `k`: the URLs round-robin.
    pub fn url(&self, k: usize) -> &str {
        if self.urls.is_empty() {
            return "";
        }
        &self.urls[k % self.urls.len()]
    }

    /// Messages (or cycles) in the whole run.
    fn total(&self) -> u64 {
        (self.rate * self.duration_s).round() as u64
    }
}

/// Runs this shard's share of `ctx.scenario`.
pub async fn run_shard(ctx: Ctx, barrier: Barrier) -> anyhow::Result<Partial> {
    match ctx.scenario {
        Scenario::Connect => connect(ctx, barrier).await,
        Scenario::Peer => peer(ctx, barrier).await,
        Scenario::Fanout => fanout(ctx, barrier).await,
        Scenario::FanoutMax => fanout_max(ctx, barrier).await,
        Scenario::Churn => churn(ctx, barrier).await,
        Scenario::Presence => presence(ctx, barrier).await,
        Scenario::Invite => invite(ctx, barrier).await,
        Scenario::Media => bail!("media runs through the SDK in one process, not in shards"),
        Scenario::Compare => bail!("compare is not a load scenario"),
    }
}

/// Opens and logs in (and optionally joins) one client; its slot `i` picks
/// its server ([`Ctx::url`]) and its source address.
async fn setup(ctx: &Ctx, i: usize, uid: &str, join: bool) -> anyhow::Result<(wire::Ws, Decoder)> {
    let mut ws = wire::open(
        ctx.target,
        ctx.url(i),
        uid,
        wire::source_addr(i, ctx.source_addrs),
    )
    .await?;
    let mut dec = Decoder::new(ctx.target);
    wire::login(ctx.target, &mut ws, &mut dec, uid).await?;
    if join {
        wire::join(ctx.target, &mut ws, &mut dec, CHANNEL).await?;
    }
    Ok((ws, dec))
}

/// Sets up clients `range` with at most [`CONNECT_CONCURRENCY`] in flight;
/// returns them by index, with the setup time of each in `p.latency2`.
/// Client `i` sits in slot `slot(i)` (its server and source address).
async fn setup_many(
    ctx: &Ctx,
    range: Range<usize>,
    uid: impl Fn(usize) -> String,
    slot: impl Fn(usize) -> usize,
    join: bool,
    p: &mut Partial,
) -> anyhow::Result<Vec<(usize, wire::Ws, Decoder)>> {
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut set = JoinSet::new();
    for i in range {
        let permit = sem.clone().acquire_owned().await?;
        let ctx = ctx.clone();
        let uid = uid(i);
        let k = slot(i);
        set.spawn(async move {
            let t0 = wall_us();
            let r = setup(&ctx, k, &uid, join).await;
            drop(permit);
            (i, r, wall_us() - t0)
        });
    }
    let mut out = Vec::new();
    while let Some(j) = set.join_next().await {
        let (i, r, took) = j?;
        match r {
            Ok((ws, dec)) => {
                record(&mut p.latency2, took);
                out.push((i, ws, dec));
            }
            Err(e) => {
                p.connect_failures += 1;
                if p.first_error.is_none() {
                    p.first_error = Some(format!("{e:#}"));
                }
            }
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    p.clients = out.len() as u64;
    Ok(out)
}

/// Reads a link until `stop`, the socket closes, or [`LINGER`] after `on`
/// first returns true (everything expected is in: a late duplicate still
/// counts); answers pings. `on` sees every event but answers.
async fn read_loop(
    mut stream: futures_util::stream::SplitStream<wire::Ws>,
    mut dec: Decoder,
    tx: mpsc::UnboundedSender<Message>,
    stop: CancellationToken,
    mut on: impl FnMut(Ev<'_>) -> bool,
) {
    let linger = tokio::time::sleep(Duration::from_secs(3600 * 24));
    tokio::pin!(linger);
    let mut done = false;
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            _ = &mut linger, if done => return,
            m = stream.next() => m,
        };
        let Some(Ok(msg)) = msg else { return };
        if matches!(msg, Message::Close(_)) {
            return;
        }
        let mut now_done = false;
        dec.decode(&msg, &mut |ev| match ev {
            Ev::Answer(m) => {
                let _ = tx.send(m);
            }
            ev => now_done |= on(ev),
        });
        if now_done && !done {
            done = true;
            linger.as_mut().reset(tokio::time::Instant::now() + LINGER);
        }
    }
}

/// Runs the pacer on a blocking thread until its schedule ends or `stop`.
async fn pace(
    lanes: Vec<Lane>,
    stop: CancellationToken,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    Ok(tokio::task::spawn_blocking(move || pacer::run(lanes, || stop.is_cancelled())).await?)
}

/// Waits for the readers: until they finish, or [`DRAIN`] after `sent_until`.
async fn drain<T: 'static>(
    set: &mut JoinSet<T>,
    stop: &CancellationToken,
    mut each: impl FnMut(T),
) {
    let deadline = tokio::time::Instant::now() + DRAIN;
    loop {
        tokio::select! {
            j = set.join_next() => match j {
                Some(Ok(t)) => each(t),
                Some(Err(_)) => {}
                None => return,
            },
            _ = tokio::time::sleep_until(deadline) => {
                stop.cancel();
                while let Some(j) = set.join_next().await {
                    if let Ok(t) = j { each(t) }
                }
                return;
            }
        }
    }
}

/// connect: hold the clients logged in and idle for the duration. The
/// coordinator reads the server's memory while they are held.
async fn connect(ctx: Ctx, mut barrier: Barrier) -> anyhow::Result<Partial> {
    let mut p = Partial::new();
    let clients = setup_many(
        &ctx,
        ctx.range(ctx.clients),
        |i| format!("idle{i}"),
        |i| i,
        false,
        &mut p,
    )
    .await?;
    let stop = CancellationToken::new();
    let mut links = Vec::new();
    for (_, ws, dec) in clients {
        let link = Link::start(ctx.target, ws, dec);
        tokio::spawn(read_loop(
            link.stream,
            link.decoder,
            link.tx.clone(),
            stop.clone(),
            |_| false,
        ));
        links.push(link.tx);
    }
    let start = barrier.ready().await?;
    let end = start + (ctx.duration_s * 1e6) as u64;
    tokio::time::sleep(Duration::from_micros(end.saturating_sub(wall_us()))).await;
    stop.cancel();
    drop(links);
    Ok(p)
}

/// peer: pairs a→b; b echoes every message back to a; a times the round trip.
async fn peer(ctx: Ctx, mut barrier: Barrier) -> anyhow::Result<Partial> {
    let mut p = Partial::new();
    let pairs_total = (ctx.clients / 2).max(1);
    let pairs = ctx.range(pairs_total);
    // Ping i in slot 2i, its pong in 2i+1: with several servers the two
    // ends of a pair are on different ones.
    let pings = setup_many(
        &ctx,
        pairs.clone(),
        |i| format!("pa{i}"),
        |i| 2 * i,
        false,
        &mut p,
    )
    .await?;
    let mut p2 = Partial::new();
    let pongs = setup_many(
        &ctx,
        pairs.clone(),
        |i| format!("pb{i}"),
        |i| 2 * i + 1,
        false,
        &mut p2,
    )
    .await?;
    p.merge(&p2);
    let stop = CancellationToken::new();
    let target = ctx.target;
    let errors = Arc::new(AtomicU64::new(0));
    // Echoers.
    let mut echoers = JoinSet::new();
    for (i, ws, dec) in pongs {
        let link = Link::start(target, ws, dec);
        let tx = link.tx.clone();
        let back = wire::uid(&format!("pa{i}"))?;
        let errors = errors.clone();
        let mut id = 10u64;
        echoers.spawn(read_loop(
            link.stream,
            link.decoder,
            link.tx,
            stop.clone(),
            move |ev| {
                match ev {
                    Ev::Payload(text) => {
                        id += 1;
                        let _ = tx.send(wire::to_peer(target, &back, text, id));
                    }
                    Ev::Error(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
                false
            },
        ));
    }
    let start = barrier.ready().await?;
    let total = ctx.total();
    let mut readers = JoinSet::new();
    let mut lanes = Vec::new();
    for (i, ws, dec) in pings {
        let link = Link::start(target, ws, dec);
        let (count, first_us, interval_us) = pacer::split(total, ctx.rate, pairs_total, i, start);
        let tx = link.tx.clone();
        let to = wire::uid(&format!("pb{i}"))?;
        let mut id = 10u64;
        lanes.push(Lane {
            count,
            first_us,
            interval_us,
            send: Box::new(move |seq, at| {
                id += 1;
                let _ = tx.send(wire::to_peer(target, &to, &payload(i as u32, seq, at), id));
            }),
        });
        let mut part = Partial::new();
        part.sent = count;
        part.expected = count;
        let stop_r = stop.clone();
        readers.spawn(async move {
            let mut track = SeqTrack::default();
            let tx = link.tx.clone();
            read_loop(link.stream, link.decoder, tx, stop_r, |ev| {
                match ev {
                    Ev::Payload(text) => {
                        if let Some((_, seq, at)) = parse_payload(text)
                            && track.record(seq) == Seen::First
                        {
                            let now = wall_us();
                            record(&mut part.latency, now.saturating_sub(at));
                            part.last_receipt_us = now;
                        }
                    }
                    Ev::Error(e) => part.error(e),
                    _ => {}
                }
                track.unique >= count
            })
            .await;
            part.add_track(&track);
            drop(link.tx);
            part
        });
    }
    p.send_lag = pace(lanes, stop.clone()).await?;
    drain(&mut readers, &stop, |part| p.merge(&part)).await;
    stop.cancel();
    while echoers.join_next().await.is_some() {}
    p.errors += errors.load(Ordering::Relaxed);
    Ok(p)
}

/// fanout: every member joins one channel; the first `publishers` members
/// publish at the total rate; every other member counts and times deliveries.
async fn fanout(ctx: Ctx, mut barrier: Barrier) -> anyhow::Result<Partial> {
    let mut p = Partial::new();
    let members = ctx.clients.max(2);
    let publishers = ctx.publishers.clamp(1, members - 1);
    let target = ctx.target;
    let clients = setup_many(
        &ctx,
        ctx.range(members),
        |i| format!("f{i}"),
        |i| i,
        true,
        &mut p,
    )
    .await?;
    let total = ctx.total();
    let stop = CancellationToken::new();
    let start = barrier.ready().await?;
    let counts: Vec<u64> = (0..publishers)
        .map(|j| pacer::split(total, ctx.rate, publishers, j, start).0)
        .collect();
    let mut lanes = Vec::new();
    let mut readers = JoinSet::new();
    for (i, ws, dec) in clients {
        let link = Link::start(target, ws, dec);
        if i < publishers {
            let (count, first_us, interval_us) =
                pacer::split(total, ctx.rate, publishers, i, start);
            let tx = link.tx.clone();
            let mut id = 10u64;
            let channel = wire::channel_id(CHANNEL)?;
            p.sent += count;
            lanes.push(Lane {
                count,
                first_us,
                interval_us,
                send: Box::new(move |seq, at| {
                    id += 1;
                    let _ = tx.send(wire::publish(
                        target,
                        &channel,
                        &payload(i as u32, seq, at),
                        id,
                    ));
                }),
            });
        }
        let expected: u64 = counts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, c)| c)
            .sum();
        let stop = stop.clone();
        readers.spawn(async move {
            let mut part = Partial::new();
            part.expected = expected;
            let mut tracks = vec![SeqTrack::default(); publishers];
            let mut unique = 0u64;
            let tx = link.tx.clone();
            read_loop(link.stream, link.decoder, tx, stop, |ev| {
                match ev {
                    Ev::Payload(text) => {
                        if let Some((src, seq, at)) = parse_payload(text)
                            && let Some(t) = tracks.get_mut(src as usize)
                            && t.record(seq) == Seen::First
                        {
                            unique += 1;
                            let now = wall_us();
                            record(&mut part.latency, now.saturating_sub(at));
                            part.last_receipt_us = now;
                        }
                    }
                    Ev::Error(e) => part.error(e),
                    _ => {}
                }
                unique >= expected
            })
            .await;
            for t in &tracks {
                part.add_track(t);
            }
            drop(link.tx);
            part
        });
    }
    p.send_lag = pace(lanes, stop.clone()).await?;
    drain(&mut readers, &stop, |part| p.merge(&part)).await;
    Ok(p)
}

/// fanout-max: one publisher sends as fast as the slowest member reads — at
/// most `window` messages ahead of it — for the duration. Open-loop sending
/// above the server's capacity only measures a queue growing; this measures
/// the rate the server sustains with nothing lost. Latency counts from the
/// actual send (the window bounds it).
async fn fanout_max(ctx: Ctx, mut barrier: Barrier) -> anyhow::Result<Partial> {
    if ctx.shards != 1 {
        bail!("fanout-max runs in one load process");
    }
    let mut p = Partial::new();
    let members = ctx.clients.max(2);
    let window = ctx.window.max(1);
    let target = ctx.target;
    let clients = setup_many(&ctx, 0..members, |i| format!("fm{i}"), |i| i, true, &mut p).await?;
    // Messages each member has received (the publisher's own slot stays at
    // u64::MAX so it never counts as the slowest).
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..members).map(|_| AtomicU64::new(0)).collect());
    received[0].store(u64::MAX, Ordering::Relaxed);
    let sent = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let start = barrier.ready().await?;
    let mut readers = JoinSet::new();
    let mut publisher = None;
    for (i, ws, dec) in clients {
        let link = Link::start(target, ws, dec);
        if i == 0 {
            publisher = Some(link.tx.clone());
        }
        let stop = stop.clone();
        let received = received.clone();
        readers.spawn(async move {
            let mut part = Partial::new();
            let mut track = SeqTrack::default();
            let tx = link.tx.clone();
            read_loop(link.stream, link.decoder, tx, stop, |ev| {
                match ev {
                    Ev::Payload(text) => {
                        if let Some((0, seq, at)) = parse_payload(text)
                            && track.record(seq) == Seen::First
                        {
                            let now = wall_us();
                            record(&mut part.latency, now.saturating_sub(at));
                            part.last_receipt_us = now;
                            received[i].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ev::Error(e) => part.error(e),
                    _ => {}
                }
                false
            })
            .await;
            part.add_track(&track);
            drop(link.tx);
            part
        });
    }
    let tx = publisher.with_context(|| {
        format!(
            "the publisher (member 0) could not be set up: {}",
            p.first_error.as_deref().unwrap_or("no error recorded")
        )
    })?;
    let channel = wire::channel_id(CHANNEL)?;
    let (r2, s2) = (received.clone(), sent.clone());
    let end_us = start + (ctx.duration_s * 1e6) as u64;
    // The publisher: a blocking thread that waits for room in the window.
    let publish = tokio::task::spawn_blocking(move || {
        let slowest = || {
            r2.iter()
                .map(|c| c.load(Ordering::Relaxed))
                .min()
                .unwrap_or(0)
        };
        while wall_us() < start {
            std::thread::sleep(Duration::from_micros(100));
        }
        let mut seq = 0u64;
        let mut floor = 0u64;
        while wall_us() < end_us {
            if seq >= floor + window {
                floor = slowest();
                if seq >= floor + window {
                    std::thread::sleep(Duration::from_micros(20));
                    continue;
                }
            }
            let frame = wire::publish(target, &channel, &payload(0, seq, wall_us()), seq + 10);
            if tx.send(frame).is_err() {
                break;
            }
            seq += 1;
        }
        s2.store(seq, Ordering::Relaxed);
        seq
    });
    let total = publish.await?;
    p.sent = total;
    p.expected = total * (members as u64 - 1);
    // Wait (a bounded time) for the slowest member to have everything.
    let deadline = tokio::time::Instant::now() + DRAIN;
    while received
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0)
        < total
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    while let Some(j) = readers.join_next().await {
        if let Ok(part) = j {
            p.merge(&part);
        }
    }
    Ok(p)
}

/// churn: connect → login → join → leave → logout → close, started at a fixed
/// rate; latency is each cycle's end from its intended start.
async fn churn(ctx: Ctx, mut barrier: Barrier) -> anyhow::Result<Partial> {
    if ctx.target != Target::Rtm {
        bail!("churn runs against rtm only (it exercises login, channels and logout)");
    }
    let start = barrier.ready().await?;
    let shard_rate = ctx.rate / ctx.shards as f64;
    let total = (shard_rate * ctx.duration_s).round() as u64;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, Result<(), String>)>();
    // A cycle that cannot start because too many are in flight is a failure,
    // not a wait: the schedule stays honest and the process stays in its fd limit.
    let in_flight = Arc::new(Semaphore::new(2_000));
    let handle = tokio::runtime::Handle::current();
    let c2 = ctx.clone();
    let shard = ctx.shard;
    let lanes = vec![Lane {
        count: total,
        first_us: start,
        interval_us: 1e6 / shard_rate.max(1e-3),
        send: Box::new(move |seq, at| {
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                let _ = done_tx.send((at, Err("more than 2000 cycles in flight".into())));
                return;
            };
            let ctx = c2.clone();
            let done = done_tx.clone();
            handle.spawn(async move {
                let r = cycle(&ctx, &format!("ch{shard}x{seq}"), seq as usize).await;
                drop(permit);
                let _ = done.send((at, r.map_err(|e| format!("{e:#}"))));
            });
        }),
    }];
    let stop = CancellationToken::new();
    let pacer = tokio::spawn(pace(lanes, stop.clone()));
    let mut p = Partial::new();
    p.sent = total;
    p.expected = total;
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs_f64(ctx.duration_s) + wire::SETUP_TIMEOUT;
    while p.received + p.errors < total {
        let got = tokio::select! {
            g = done_rx.recv() => g,
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let Some((at, r)) = got else { break };
        match r {
            Ok(()) => {
                p.received += 1;
                let now = wall_us();
                record(&mut p.latency, now.saturating_sub(at));
                p.last_receipt_us = now;
            }
            Err(e) => p.error(e),
        }
    }
    stop.cancel();
    p.send_lag = pacer.await??;
    p.clients = total;
    Ok(p)
}

async fn cycle(ctx: &Ctx, uid: &str, i: usize) -> anyhow::Result<()> {
    let (mut ws, mut dec) = setup(ctx, i, uid, true).await?;
    let leave = Request::Leave {
        channel_id: wire::channel_id(CHANNEL)?,
    };
    wire::rtm_call(&mut ws, &mut dec, 3, leave).await?;
    wire::rtm_call(&mut ws, &mut dec, 4, Request::Logout).await?;
    Ok(())
}

/// presence: `clients` watchers each watch `watch` of the churning users
/// c0…c(C-1) (C = max(watch, clients/10)); the churners log in and out at
/// `rate` transitions per second. Latency: from the churner's login/logout
/// frame to each watcher's `peers_online_status_changed`. One process.
async fn presence(ctx: Ctx, mut barrier: Barrier) -> anyhow::Result<Partial> {
    if ctx.target != Target::Rtm {
        bail!("presence runs against rtm only");
    }
    let mut p = Partial::new();
    let w = ctx.clients.max(1);
    // Each load process (shard) has its own watchers and the churners they
    // watch, so shards need nothing from each other and their clocks.
    let all_churners = ctx.watch.max(w / 10).max(ctx.shards);
    let my_watchers = ctx.range(w);
    let my_churners = ctx.range(all_churners);
    let first = my_churners.start;
    let churners = my_churners.len().max(1);
    let k = ctx.watch.clamp(1, churners.min(512));
    let w0 = my_watchers.start;
    let watchers = setup_many(&ctx, my_watchers, |i| format!("w{i}"), |i| i, false, &mut p).await?;
    // latency2 is the churners' login time here, not the watchers' setup.
    p.latency2.reset();
    // Who watches churner j: watcher i watches c((i + d) % C) for d < k.
    let mut watched_by = vec![0u64; churners];
    // Per churner: wall µs its last transition was sent, and the state it went to.
    let sent_us: Arc<Vec<AtomicU64>> = Arc::new((0..churners).map(|_| AtomicU64::new(0)).collect());
    let state: Arc<Vec<AtomicU8>> = Arc::new((0..churners).map(|_| AtomicU8::new(0)).collect());
    let stop = CancellationToken::new();
    let mut readers = JoinSet::new();
    // One tally for all watchers of this process: a histogram each (some
    // 200 KB) would take gigabytes at tens of thousands of watchers.
    let shared = Arc::new(std::sync::Mutex::new(Partial::new()));
    for (i, mut ws, mut dec) in watchers {
        let ids: Vec<String> = (0..k)
            .map(|d| format!("c{}", first + (i - w0 + d) % churners))
            .collect();
        for d in 0..k {
            watched_by[(i - w0 + d) % churners] += 1;
        }
        let peer_ids = ids
            .iter()
            .map(|u| wire::uid(u))
            .collect::<anyhow::Result<_>>()?;
        wire::rtm_call(
            &mut ws,
            &mut dec,
            3,
            Request::SubscribePeersOnlineStatus { peer_ids },
        )
        .await?;
        let link = Link::start(Target::Rtm, ws, dec);
        let (sent_us, state, stop) = (sent_us.clone(), state.clone(), stop.clone());
        let shared = shared.clone();
        readers.spawn(async move {
            let tx = link.tx.clone();
            read_loop(link.stream, link.decoder, tx, stop, |ev| {
                if let Ev::Presence(t) = ev
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(t)
                    && let Some(m) = v["event"]["statuses"].as_object()
                {
                    for (uid, st) in m {
                        let Some(j) = uid
                            .strip_prefix('c')
                            .and_then(|n| n.parse::<usize>().ok())
                            .and_then(|n| n.checked_sub(first))
                        else {
                            continue;
                        };
                        let Some(at) = sent_us.get(j).map(|a| a.load(Ordering::Acquire)) else {
                            continue;
                        };
                        let want = if state[j].load(Ordering::Acquire) == 1 {
                            "ONLINE"
                        } else {
                            "OFFLINE"
                        };
                        if at > 0 && st == want {
                            let now = wall_us();
                            let mut part = shared.lock().unwrap_or_else(|p| p.into_inner());
                            part.received += 1;
                            record(&mut part.latency, now.saturating_sub(at));
                            part.last_receipt_us = part.last_receipt_us.max(now);
                        }
                    }
                }
                false
            })
            .await;
            drop(link.tx);
        });
    }
    let start = barrier.ready().await?;
    // This shard's share of the transitions, at its share of the rate.
    let total = ctx.total() / ctx.shards as u64
        + u64::from((ctx.shard as u64) < ctx.total() % ctx.shards as u64);
    let shard_rate = ctx.rate / ctx.shards as f64;
    // One task per churner, fed its transitions by the pacer.
    let mut churn_tx = Vec::new();
    let mut churn_tasks = JoinSet::new();
    for j in 0..churners {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        churn_tx.push(tx);
        let (ctx, sent_us, state) = (ctx.clone(), sent_us.clone(), state.clone());
        let expect = watched_by[j];
        churn_tasks.spawn(async move {
            let mut part = Partial::new();
            let mut conn: Option<(wire::Ws, Decoder)> = None;
            let uid = format!("c{}", first + j);
            while let Some(at) = rx.recv().await {
                let r: anyhow::Result<()> = async {
                    match conn.take() {
                        None => {
                            let mut ws = wire::open(
                                Target::Rtm,
                                // Churners continue the watchers' slots.
                                ctx.url(w + first + j),
                                &uid,
                                wire::source_addr(j, ctx.source_addrs),
                            )
                            .await?;
                            let mut dec = Decoder::new(Target::Rtm);
                            state[j].store(1, Ordering::Release);
                            sent_us[j].store(wall_us(), Ordering::Release);
                            wire::login(Target::Rtm, &mut ws, &mut dec, &uid).await?;
                            record(&mut part.latency2, wall_us().saturating_sub(at));
                            conn = Some((ws, dec));
                        }
                        Some((mut ws, mut dec)) => {
                            state[j].store(0, Ordering::Release);
                            sent_us[j].store(wall_us(), Ordering::Release);
                            wire::rtm_call(&mut ws, &mut dec, 9, Request::Logout).await?;
                        }
                    }
                    Ok(())
                }
                .await;
                part.sent += 1;
                part.expected += expect;
                if let Err(e) = r {
                    part.error(format!("{e:#}"));
                }
            }
            part
        });
    }
    let lanes = vec![Lane {
        count: total,
        first_us: start,
        interval_us: 1e6 / shard_rate.max(1e-3),
        send: Box::new(move |seq, at| {
            let _ = churn_tx[seq as usize % churners].send(at);
        }),
    }];
    p.send_lag = pace(lanes, stop.clone()).await?;
    while let Some(j) = churn_tasks.join_next().await {
        if let Ok(part) = j {
            p.sent += part.sent;
            p.expected += part.expected;
            p.errors += part.errors;
            let _ = p.latency2.add(&part.latency2);
            if p.first_error.is_none() {
                p.first_error = part.first_error;
            }
        }
    }
    // Notifications still in flight get the drain time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    while readers.join_next().await.is_some() {}
    p.merge(&shared.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(p)
}

/// invite: callers ic0…ic(P-1) each ring their own callee ie0…ie(P-1) at
/// `rate / P` invitations per second. A callee's client confirms each one
/// at once (`ack_remote_invitation`, as the SDK does) and accepts it with a
/// short response. The caller times, from each invitation's intended send
/// time, `local_invitation_received_by_peer` (latency2) and
/// `local_invitation_accepted` (latency, the whole round trip).
///
/// Every invitation ends counted: accepted (`received`), failed (`errors`:
/// an error reply, `peer_online: false`, a failure event, a refusal, or not
/// sent because its caller already had the server's maximum open), or still
/// open when the run ends (`unanswered`).
async fn invite(ctx: Ctx, mut barrier: Barrier) -> anyhow::Result<Partial> {
    if ctx.target != Target::Rtm {
        bail!("invite runs against rtm only (call invitations are rtm's)");
    }
    let mut p = Partial::new();
    let pairs_total = (ctx.clients / 2).max(1);
    let pairs = ctx.range(pairs_total);
    let callers = setup_many(
        &ctx,
        pairs.clone(),
        |i| format!("ic{i}"),
        |i| 2 * i,
        false,
        &mut p,
    )
    .await?;
    let mut p2 = Partial::new();
    let callees = setup_many(
        &ctx,
        pairs.clone(),
        |i| format!("ie{i}"),
        |i| 2 * i + 1,
        false,
        &mut p2,
    )
    .await?;
    p.merge(&p2);
    // latency2 is the received-by-peer time here, not the setup time.
    p.latency2.reset();
    let stop = CancellationToken::new();
    let mut answerers = JoinSet::new();
    for (_, ws, dec) in callees {
        let link = Link::start(Target::Rtm, ws, dec);
        let tx = link.tx.clone();
        let stop = stop.clone();
        answerers.spawn(async move {
            let mut part = Partial::new();
            let mut id = 10u64;
            read_loop(link.stream, link.decoder, link.tx, stop, |ev| {
                match ev {
                    Ev::Invitation(t) => match ServerFrame::decode(t) {
                        Ok(ServerFrame::Event {
                            event:
                                Event::RemoteInvitationReceived {
                                    caller_id,
                                    invitation_id,
                                    ..
                                },
                        }) => {
                            let ack = Request::AckRemoteInvitation {
                                caller_id: caller_id.clone(),
                                invitation_id,
                            };
                            let accept = Request::AcceptRemoteInvitation {
                                caller_id,
                                invitation_id,
                                response: "ok".into(),
                            };
                            id += 2;
                            let _ = tx.send(wire::rtm_request(id - 1, ack));
                            let _ = tx.send(wire::rtm_request(id, accept));
                        }
                        // The callee hears of a failure or cancellation;
                        // its caller counts that invitation as failed.
                        Ok(_) => {}
                        Err(e) => part.error(format!("callee: unreadable frame ({e}): {t}")),
                    },
                    Ev::Error(e) => part.error(format!("callee: {e}")),
                    _ => {}
                }
                false
            })
            .await;
            part
        });
    }
    let start = barrier.ready().await?;
    let total = ctx.total();
    // Invitation ids (and the request ids that send them) start at the run's
    // start time: ids never repeat across runs, so an invitation a previous
    // run against the same server left open (a session resumed within the
    // grace keeps it) cannot make this run's send fail as ALREADY_SENT.
    let first_id = start;
    let mut readers = JoinSet::new();
    let mut lanes = Vec::new();
    let mut books = Vec::new();
    for (i, ws, dec) in callers {
        let link = Link::start(Target::Rtm, ws, dec);
        let (count, first_us, interval_us) = pacer::split(total, ctx.rate, pairs_total, i, start);
        let book = Arc::new(Mutex::new(Book::new(count)));
        books.push(book.clone());
        let tx = link.tx.clone();
        let callee = wire::uid(&format!("ie{i}"))?;
        let b = book.clone();
        lanes.push(Lane {
            count,
            first_us,
            interval_us,
            send: Box::new(move |seq, at| {
                let mut b = b.lock().unwrap_or_else(|e| e.into_inner());
                // The server refuses one more than this open per caller;
                // sending it anyway would only measure the refusal.
                if b.open.len() >= MAX_OPEN_INVITATIONS {
                    b.resolved += 1;
                    b.part.error(format!(
                        "invitation not sent: the caller already had {MAX_OPEN_INVITATIONS} \
                         open, the server's limit (the server is behind the schedule)"
                    ));
                    return;
                }
                b.open.insert(seq, Open { at, by_peer: false });
                drop(b);
                let request = Request::SendLocalInvitation {
                    invitation_id: first_id + seq,
                    callee_id: callee.clone(),
                    content: "bench".into(),
                    channel_id: None,
                };
                let _ = tx.send(wire::rtm_request(first_id + seq, request));
            }),
        });
        let stop = stop.clone();
        readers.spawn(async move {
            let tx = link.tx.clone();
            read_loop(link.stream, link.decoder, tx, stop.clone(), |ev| {
                let mut b = book.lock().unwrap_or_else(|e| e.into_inner());
                if let Ev::Invitation(t) | Ev::Error(t) = ev {
                    b.caller_frame(t, first_id);
                }
                b.resolved >= count
            })
            .await;
            let mut b = book.lock().unwrap_or_else(|e| e.into_inner());
            if !stop.is_cancelled() && b.resolved < count {
                let left = count - b.resolved;
                b.part.error(format!(
                    "the server closed the connection of caller ic{i} with {left} of its \
                     {count} invitations unresolved"
                ));
            }
            drop(link.tx);
        });
    }
    p.send_lag = pace(lanes, stop.clone()).await?;
    drain(&mut readers, &stop, |()| {}).await;
    stop.cancel();
    // Read every book only now: the pacer has sent all it will, and each
    // reader has ended, so what is still open stays open.
    for book in books {
        let mut b = book.lock().unwrap_or_else(|e| e.into_inner());
        let count = b.count;
        b.part.sent += count;
        b.part.expected += count;
        b.part.unanswered = b.open.len() as u64;
        p.merge(&b.part);
    }
    while let Some(j) = answerers.join_next().await {
        if let Ok(part) = j {
            p.merge(&part);
        }
    }
    Ok(p)
}

/// One open invitation at its caller.
struct Open {
    /// Intended send time, wall µs.
    at: u64,
    /// `local_invitation_received_by_peer` came.
    by_peer: bool,
}

/// One caller's invitations, shared by its pacer lane (which opens them) and
/// its reader (which ends them).
struct Book {
    /// Invitations this caller's lane sends.
    count: u64,
    /// By sequence number (invitation id − the run's first id).
    open: HashMap<u64, Open>,
    /// Invitations ended either way, or not sent.
    resolved: u64,
    part: Partial,
}

impl Book {
    fn new(count: u64) -> Book {
        Book {
            count,
            open: HashMap::with_capacity(count.min(MAX_OPEN_INVITATIONS as u64) as usize),
            resolved: 0,
            part: Partial::new(),
        }
    }

    /// Ends invitation `seq` (if open) as failed for `why`.
    fn fail(&mut self, seq: Option<u64>, why: impl std::fmt::Display) {
        if let Some(seq) = seq
            && self.open.remove(&seq).is_some()
        {
            self.resolved += 1;
        }
        let which = seq.map_or_else(
            || "an invitation".to_string(),
            |s| format!("invitation {s}"),
        );
        self.part.error(format!("{which} failed: {why}"));
    }

    /// A frame the caller's reader got: an `invitation_sent` reply, an
    /// error reply or an invitation event.
    fn caller_frame(&mut self, t: &str, first_id: u64) {
        let now = wall_us();
        let seq = |id: u64| id.checked_sub(first_id);
        let frame = match ServerFrame::decode(t) {
            Ok(f) => f,
            Err(e) => {
                self.part.error(format!("unreadable frame ({e}): {t}"));
                return;
            }
        };
        match frame {
            ServerFrame::Ok {
                id,
                result:
                    Reply::InvitationSent {
                        peer_online: false, ..
                    },
            } => self.fail(seq(id), "the callee was offline when it was sent"),
            ServerFrame::Ok { .. } => {}
            ServerFrame::Error { id, error } => self.fail(
                id.and_then(seq),
                format_args!("{} ({})", error.message, error.kind.as_str()),
            ),
            ServerFrame::Event { event } => match event {
                Event::LocalInvitationReceivedByPeer { invitation_id } => {
                    match seq(invitation_id).and_then(|s| self.open.get_mut(&s)) {
                        Some(o) if !o.by_peer => {
                            o.by_peer = true;
                            record(&mut self.part.latency2, now.saturating_sub(o.at));
                        }
                        _ => self.part.duplicates += 1,
                    }
                }
                Event::LocalInvitationAccepted { invitation_id, .. } => {
                    let s = seq(invitation_id);
                    match s.and_then(|s| self.open.remove(&s)) {
                        Some(o) => {
                            self.resolved += 1;
                            self.part.received += 1;
                            record(&mut self.part.latency, now.saturating_sub(o.at));
                            self.part.last_receipt_us = now;
                            // The callee confirms before it accepts, and the
                            // server keeps that order on the caller's link.
                            if !o.by_peer {
                                self.part.error(format!(
                                    "invitation {} was accepted without \
                                     local_invitation_received_by_peer first",
                                    s.unwrap_or_default()
                                ));
                            }
                        }
                        None => self.part.duplicates += 1,
                    }
                }
                Event::LocalInvitationRefused {
                    invitation_id,
                    response,
                } => self.fail(seq(invitation_id), format_args!("refused ({response:?})")),
                Event::LocalInvitationFailure {
                    invitation_id,
                    reason,
                } => self.fail(seq(invitation_id), reason.describe()),
                _ => {}
            },
        }
    }
}
