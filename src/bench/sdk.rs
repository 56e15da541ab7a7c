//! The peer and fanout scenarios driven through the Rust SDK (`--sdk`):
//! what an application built on `rtm::client` sees, SDK overhead included.
//! One process, sequential setup; the raw-frame scenarios scale further.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::stats::{Latency, new_hist};
use super::{BenchArgs, Report, Scenario, Target};
use crate::client::{
    ChannelEvent, ClientConfig, ClientEvent, ClientEvents, RtmClient, RtmMessage,
    SendMessageOptions,
};

pub async fn run(scenario: Scenario, url: &str, args: &BenchArgs) -> anyhow::Result<Report> {
    let mut r = match scenario {
        Scenario::Peer => peer(url, args).await?,
        Scenario::Fanout => fanout(url, args).await?,
        other => bail!("--sdk runs peer and fanout, not {}", other.name()),
    };
    r.scenario = Some(scenario);
    r.target = Some(Target::Rtm);
    r.rate = args.rate;
    r.duration_s = args.duration;
    r.load_processes = 1;
    r.expected = r.received + r.lost;
    r.notes.push("driven through the Rust SDK (--sdk)".into());
    Ok(r)
}

pub(super) fn bench_client_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(30),
        login_timeout: Duration::from_secs(30),
        // The bench measures the server: a reader briefly behind under load
        // must not lose events to the SDK's default queue bound (which
        // would read as server loss).
        event_queue_capacity: 1 << 20,
        ..ClientConfig::default()
    }
}

pub(super) async fn connect_many(
    url: &str,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Vec<(RtmClient, ClientEvents)>> {
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

async fn peer(url: &str, args: &BenchArgs) -> anyhow::Result<Report> {
    let pairs = (args.clients / 2).max(1);
    let senders = connect_many(url, "ping", pairs).await?;
    let echoers = connect_many(url, "pong", pairs).await?;
    // Echoers send every message straight back.
    for (client, mut events) in echoers {
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let ClientEvent::MessageFromPeer {
                    message, peer_id, ..
                } = ev
                {
                    let _ = client
                        .send_message_to_peer(
                            message,
                            peer_id.as_str(),
                            SendMessageOptions::default(),
                        )
                        .await;
                }
            }
        });
    }
    let base = Instant::now();
    let per_pair_rate = (args.rate / pairs as f64).max(0.001);
    let interval = Duration::from_secs_f64(1.0 / per_pair_rate);
    let total = (per_pair_rate * args.duration).ceil() as u64;
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
        clients: (pairs * 2) as u64,
        sent,
        received,
        lost: sent.saturating_sub(received),
        duplicates,
        reordered,
        throughput_per_s: received as f64 / elapsed,
        latency: Some(Latency::of(&h)),
        notes: vec![
            "latency is the round trip ping → pong → ping, from the intended send time".into(),
        ],
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
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1e-3));
    let total = (args.rate * args.duration).round() as u64;
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
                    Ok(Some(ClientEvent::Channel {
                        event:
                            ChannelEvent::ChannelMessage {
                                message: RtmMessage::Text { text },
                                ..
                            },
                        ..
                    })) => {
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
        let _ = publish_channel
            .send_message(payload(seq, intended, base))
            .await;
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
    let elapsed = last_delivery
        .duration_since(base)
        .as_secs_f64()
        .max(args.duration);
    let expected = total * receivers as u64;
    let _ = channels;
    Ok(Report {
        clients: (receivers + 1) as u64,
        sent: total,
        received,
        lost: expected.saturating_sub(received),
        duplicates,
        reordered,
        throughput_per_s: received as f64 / elapsed,
        latency: Some(Latency::of(&hist)),
        notes: vec![format!(
            "{receivers} receivers; throughput = deliveries per second"
        )],
        ..Report::default()
    })
}
