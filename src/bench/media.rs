//! The media scenario (issue 18): file upload and download throughput
//! through the SDK, for one transfer and for many at once; the server's
//! memory while files stream in; and whether a big upload delays the same
//! client's chat messages.
//!
//! Runs against a spawned `rtm serve` process (its memory is its own, not
//! the load generator's) or a `--server`. Each concurrent transfer belongs
//! to its own user: the server allows 9 transfers per user, and ten users
//! uploading at once is what the measurement is about.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::procs::{self, hwm_kb, rss_kb};
use super::sdk::{bench_client_config, connect_many};
use super::stats::{Latency, new_hist, record, wall_us};
use super::{BenchArgs, Report, Scenario, Target};
use crate::client::{
    ClientEvent, ClientEvents, MediaMessageOptions, MediaSource, RtmClient, RtmMessage,
    SendMessageOptions,
};
use crate::protocol::MAX_MEDIA_BYTES;

/// Bytes in the bench's "MB": a mebibyte, the unit of the server's 32 MB
/// file limit (33,554,432 bytes), so `--size-mb 32` is exactly the limit.
pub const MB: f64 = 1024.0 * 1024.0;

/// The spawned server: the usual bench settings, and media quotas lifted so
/// back-to-back uploads during the chat phase never run into the per-user
/// 512 MB (the bench measures speed, not quotas).
fn server_config() -> String {
    format!(
        "{}media_user_max_bytes = {q}\nmedia_total_max_bytes = {q}\n",
        procs::RTM_BENCH_CONFIG,
        q = 1u64 << 40
    )
}

/// How a group of concurrent transfers went.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Transfers {
    /// Transfers that completed (a download: with its SHA-256 checked by the SDK).
    pub files: u64,
    /// Bytes the completed transfers moved.
    pub bytes: u64,
    pub failed: u64,
    /// From the common start to the last transfer's end, in seconds.
    pub wall_s: f64,
    /// All transfers together: bytes ÷ wall time, in MB/s.
    pub mb_per_s: f64,
    /// One transfer's rate at the median transfer time, in MB/s.
    pub per_transfer_mb_per_s: f64,
    /// Time of each transfer, from the call to its result (µs).
    pub time: Option<Latency>,
}

impl Transfers {
    fn of(times: &[Duration], file_bytes: u64, failed: u64, wall: Duration) -> Transfers {
        let mut h = new_hist();
        for t in times {
            record(&mut h, t.as_micros() as u64);
        }
        let time = (!h.is_empty()).then(|| Latency::of(&h));
        let bytes = times.len() as u64 * file_bytes;
        let wall_s = wall.as_secs_f64();
        Transfers {
            files: times.len() as u64,
            bytes,
            failed,
            wall_s,
            mb_per_s: rate(bytes, wall_s),
            per_transfer_mb_per_s: time
                .as_ref()
                .map_or(0.0, |t| rate(file_bytes, t.p50_us as f64 / 1e6)),
            time,
        }
    }
}

/// MB/s of `bytes` in `secs` (0 when nothing was timed).
fn rate(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / MB / secs
    } else {
        0.0
    }
}

/// One phase of chat messages from one client to another.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChatPhase {
    pub sent: u64,
    pub received: u64,
    /// Sends the server refused or that timed out.
    pub errors: u64,
    /// One way, sender → receiver, from the intended send time (µs): every
    /// message without uploads; only those sent while an upload was running
    /// with them.
    pub latency: Option<Latency>,
    /// The same messages, intended send time → the server's receipt stamp
    /// (`server_received_ts`, whole milliseconds): the sender's share of
    /// `latency`; the rest is the server's delivery and the receiver.
    #[serde(default)]
    pub to_server: Option<Latency>,
    /// With uploads: messages sent in the gaps between two uploads, left
    /// out of `latency`.
    pub between_uploads: u64,
    /// Uploads the sending client completed during the phase.
    pub uploads: u64,
    pub upload_bytes: u64,
    /// Seconds an upload was under way (summed), and the phase's length.
    pub upload_busy_s: f64,
    pub duration_s: f64,
}

/// What the media scenario measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MediaReport {
    /// Transfers at once (one user each).
    pub transfers: usize,
    /// Size of every file, in bytes.
    pub file_bytes: u64,
    pub upload: Transfers,
    pub download: Transfers,
    /// The server's resident memory before the uploads, the most it had
    /// while they ran (sampled every 10 ms, and its VmHWM), and the most
    /// while the downloads ran (sampled), in kB.
    pub server_rss_kb_before: Option<u64>,
    pub server_rss_kb_upload_peak: Option<u64>,
    pub server_rss_kb_download_peak: Option<u64>,
    /// Chat messages per second in the isolation phases.
    pub chat_rate: f64,
    /// Chat with nothing else going on.
    pub chat_idle: ChatPhase,
    /// Chat while the same sending client uploads files of `file_bytes`,
    /// one after another.
    pub chat_upload: ChatPhase,
}

/// Bytes that differ everywhere (xorshift), so a misplaced chunk would
/// fail the hash check instead of passing unnoticed.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `--size-mb` in bytes, within the server's limit.
pub fn file_bytes(size_mb: f64) -> anyhow::Result<u64> {
    let bytes = (size_mb * MB).round();
    if bytes.is_nan() || bytes < 1.0 {
        bail!("--size-mb must be more than 0 (it is {size_mb})");
    }
    if bytes > MAX_MEDIA_BYTES as f64 {
        bail!(
            "--size-mb {size_mb} is over the server's file limit of 32 MB (1 MB = 1,048,576 bytes)"
        );
    }
    Ok(bytes as u64)
}

/// Samples a process's VmRSS every 10 ms until stopped; the highest seen.
struct RssSampler {
    stop: CancellationToken,
    task: Option<JoinHandle<u64>>,
}

impl RssSampler {
    fn start(pid: Option<u32>) -> RssSampler {
        let stop = CancellationToken::new();
        let s = stop.clone();
        let task = pid.map(|pid| {
            tokio::spawn(async move {
                let mut max = 0;
                loop {
                    max = rss_kb(pid).unwrap_or(0).max(max);
                    tokio::select! {
                        _ = s.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                }
                max
            })
        });
        RssSampler { stop, task }
    }

    async fn finish(self) -> Option<u64> {
        self.stop.cancel();
        let max = self.task?.await.ok()?;
        (max > 0).then_some(max)
    }
}

fn file_options(name: String) -> MediaMessageOptions {
    MediaMessageOptions {
        file_name: Some(name),
        ..MediaMessageOptions::default()
    }
}

/// Keeps the first error of a run.
fn keep(first: &mut Option<String>, e: impl std::fmt::Display) {
    if first.is_none() {
        *first = Some(e.to_string());
    }
}

pub(super) async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    if args.target != Target::Rtm {
        bail!("media runs against rtm only (--target rtm)");
    }
    let size = file_bytes(args.size_mb)?;
    let n = args.transfers.max(1);
    let chat_rate = args.chat_rate;
    if chat_rate.is_nan() || chat_rate <= 0.0 {
        bail!("--chat-rate must be more than 0 messages per second");
    }
    let spawned = match &args.server {
        Some(_) => None,
        None => Some(procs::spawn_rtm(&server_config()).await?),
    };
    let url = args
        .server
        .clone()
        .or_else(|| spawned.as_ref().map(|s| s.url.clone()))
        .unwrap_or_default();
    let pid = spawned.as_ref().and_then(|s| s.pid);
    let mut first_error = None;

    let clients: Vec<RtmClient> = connect_many(&url, "media", n)
        .await?
        .into_iter()
        .map(|(c, _events)| c)
        .collect();
    // Made before the clock starts: generating 320 MB is not the transfer.
    let files: Vec<Vec<u8>> = (0..n)
        .map(|i| pattern(size as usize, i as u64 + 1))
        .collect();
    // The baseline once the logins have settled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = pid.and_then(rss_kb);

    eprintln!("uploading {n} × {:.1} MB at once", size as f64 / MB);
    let sampler = RssSampler::start(pid);
    let t0 = Instant::now();
    let uploads: Vec<_> = clients
        .iter()
        .zip(files)
        .enumerate()
        .map(|(i, (c, bytes))| {
            let c = c.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let r = c
                    .create_media_message_by_uploading(
                        MediaSource::Bytes(bytes),
                        file_options(format!("bench-{i}.bin")),
                        None,
                    )
                    .await;
                (r, started.elapsed())
            })
        })
        .collect();
    let mut ids = Vec::new();
    let mut times = Vec::new();
    let mut failed = 0;
    for (i, task) in uploads.into_iter().enumerate() {
        match task.await {
            Ok((Ok(RtmMessage::File { media_id, .. }), took)) => {
                ids.push((i, media_id));
                times.push(took);
            }
            Ok((Ok(other), _)) => {
                failed += 1;
                keep(
                    &mut first_error,
                    format!("an upload made {other:?}, not a FILE message"),
                );
            }
            Ok((Err(e), _)) => {
                failed += 1;
                keep(&mut first_error, format!("upload: {e}"));
            }
            Err(e) => {
                failed += 1;
                keep(&mut first_error, format!("upload task: {e}"));
            }
        }
    }
    let upload = Transfers::of(&times, size, failed, t0.elapsed());
    let sampled = sampler.finish().await;
    // VmHWM catches a peak between two samples; before the uploads the
    // server never held more than its baseline, so it is the uploads' peak.
    let upload_peak = match (sampled, pid.and_then(hwm_kb)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };

    eprintln!("downloading {} file(s) at once", ids.len());
    let sampler = RssSampler::start(pid);
    let t0 = Instant::now();
    let downloads: Vec<_> = ids
        .iter()
        .map(|(i, id)| {
            let c = clients[*i].clone();
            let id = id.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                // The SDK checks the bytes against the file's SHA-256.
                let r = c.download_media(&id, None).await.map(|b| b.len() as u64);
                (r, started.elapsed())
            })
        })
        .collect();
    let mut times = Vec::new();
    let mut failed = 0;
    for task in downloads {
        match task.await {
            Ok((Ok(len), took)) if len == size => times.push(took),
            Ok((Ok(len), _)) => {
                failed += 1;
                keep(
                    &mut first_error,
                    format!("a download brought {len} bytes of {size}"),
                );
            }
            Ok((Err(e), _)) => {
                failed += 1;
                keep(&mut first_error, format!("download: {e}"));
            }
            Err(e) => {
                failed += 1;
                keep(&mut first_error, format!("download task: {e}"));
            }
        }
    }
    let download = Transfers::of(&times, size, failed, t0.elapsed());
    let download_peak = sampler.finish().await;
    drop(clients);

    eprintln!("chat at {chat_rate}/s without, then with, uploads on the sending client");
    let (sender, _sender_events) = RtmClient::new(&url, bench_client_config());
    sender
        .login("chatsender", None)
        .await
        .context("login of the chat sender")?;
    let (receiver, mut events) = RtmClient::new(&url, bench_client_config());
    receiver
        .login("chatreceiver", None)
        .await
        .context("login of the chat receiver")?;
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    let chat = Chat {
        sender: &sender,
        to: "chatreceiver",
        rate: chat_rate,
        duration,
    };
    let chat_idle = chat.phase(1, &mut events, None, &mut first_error).await;
    let chat_upload = chat
        .phase(
            2,
            &mut events,
            Some(pattern(size as usize, 1000)),
            &mut first_error,
        )
        .await;

    let media = MediaReport {
        transfers: n,
        file_bytes: size,
        upload,
        download,
        server_rss_kb_before: before,
        server_rss_kb_upload_peak: upload_peak,
        server_rss_kb_download_peak: download_peak,
        chat_rate,
        chat_idle,
        chat_upload,
    };
    let errors = media.upload.failed
        + media.download.failed
        + media.chat_idle.errors
        + media.chat_upload.errors;
    let mut notes = vec![format!(
        "{n} transfer(s) at once, one user each, of {size} bytes (1 MB = 1,048,576 bytes); a \
         transfer's time runs from the SDK call to its result: the SDK hashing the file, the \
         ticket, the bytes, and the server's SHA-256 check (upload) or the SDK's (download)"
    )];
    notes.push(format!(
        "chat: chatsender → chatreceiver at {chat_rate}/s for {} s each phase, one way from the \
         intended send time; with uploads, chatsender uploads {size}-byte files one after \
         another and only messages sent while one was under way count",
        duration.as_secs_f64()
    ));
    if pid.is_none() {
        notes.push("server memory is only measured for a spawned server (no --server)".into());
    }
    Ok(Report {
        scenario: Some(Scenario::Media),
        target: Some(Target::Rtm),
        clients: n as u64 + 2,
        rate: chat_rate,
        duration_s: args.duration,
        load_processes: 1,
        errors,
        latency: media.chat_upload.latency.clone(),
        latency2: media.chat_idle.latency.clone(),
        server_rss_kb_before: before,
        server_rss_kb_loaded: upload_peak,
        first_error,
        notes,
        media: Some(media),
        ..Report::default()
    })
}

/// Chat messages from one client to another at a fixed rate.
struct Chat<'a> {
    sender: &'a RtmClient,
    to: &'a str,
    rate: f64,
    duration: Duration,
}

/// Upload loop of the chat phase: what it did.
#[derive(Default)]
struct UploadLoop {
    uploads: u64,
    bytes: u64,
    busy: Duration,
    error: Option<String>,
}

impl Chat<'_> {
    /// Sends for `duration` at `rate` (and, with `upload`, until at least
    /// one upload has completed) while `events` (the receiver's) are timed.
    /// Payload: `<phase>:<seq>:<intended µs since the phase began>:<1 if an
    /// upload was under way>`; the phase number keeps a late message of one
    /// phase out of the next.
    async fn phase(
        &self,
        phase: u32,
        events: &mut ClientEvents,
        upload: Option<Vec<u8>>,
        first_error: &mut Option<String>,
    ) -> ChatPhase {
        let base = Instant::now();
        let base_wall_us = wall_us();
        let with_upload = upload.is_some();
        let uploading = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        // Its own task, as an application would run it: the upload (and the
        // SDK hashing the file) must not hold up this task's sending.
        let uploader = upload.map(|bytes| {
            let c = self.sender.clone();
            let (uploading, completed, stop) = (uploading.clone(), completed.clone(), stop.clone());
            tokio::spawn(async move {
                let mut done = UploadLoop::default();
                while !stop.is_cancelled() {
                    uploading.store(true, Ordering::SeqCst);
                    let started = Instant::now();
                    let r = c
                        .create_media_message_by_uploading(
                            MediaSource::Bytes(bytes.clone()),
                            file_options("chat-upload.bin".into()),
                            None,
                        )
                        .await;
                    uploading.store(false, Ordering::SeqCst);
                    done.busy += started.elapsed();
                    match r {
                        Ok(_) => {
                            done.uploads += 1;
                            done.bytes += bytes.len() as u64;
                            completed.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            done.error = Some(format!("upload during chat: {e}"));
                            break;
                        }
                    }
                }
                done
            })
        });
        let sent_total = AtomicU64::new(0);
        let sending_done = AtomicBool::new(false);
        let mut errors = 0u64;
        let send = async {
            let interval = Duration::from_secs_f64(1.0 / self.rate);
            let mut ticker = tokio::time::interval_at(base, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut seq = 0u64;
            loop {
                let intended = ticker.tick().await;
                let waited_for_upload = match &uploader {
                    // An upload that failed ends the wait too.
                    Some(task) => completed.load(Ordering::SeqCst) == 0 && !task.is_finished(),
                    None => false,
                };
                if intended.duration_since(base) >= self.duration && !waited_for_upload {
                    break;
                }
                let during = uploading.load(Ordering::SeqCst);
                let text = format!(
                    "{phase}:{seq}:{}:{}",
                    intended.duration_since(base).as_micros(),
                    u8::from(during)
                );
                seq += 1;
                sent_total.store(seq, Ordering::SeqCst);
                if let Err(e) = self
                    .sender
                    .send_message_to_peer(
                        RtmMessage::text(text),
                        self.to,
                        SendMessageOptions::default(),
                    )
                    .await
                {
                    errors += 1;
                    keep(first_error, format!("chat message: {e}"));
                }
            }
            sending_done.store(true, Ordering::SeqCst);
        };
        let receive = async {
            let mut counted = new_hist();
            let mut to_server = new_hist();
            let mut between = 0u64;
            let mut received = 0u64;
            let mut done_at: Option<Instant> = None;
            loop {
                match tokio::time::timeout(Duration::from_millis(50), events.recv()).await {
                    Ok(Some(ClientEvent::MessageFromPeer {
                        message: RtmMessage::Text { text },
                        props,
                        ..
                    })) => {
                        let now_us = base.elapsed().as_micros() as u64;
                        if let Some((p, at_us, during)) = parse_chat(&text)
                            && p == phase
                        {
                            received += 1;
                            if !with_upload || during {
                                record(&mut counted, now_us.saturating_sub(at_us));
                                let server_us = props.server_received_ts.saturating_mul(1000);
                                record(
                                    &mut to_server,
                                    server_us.saturating_sub(base_wall_us + at_us),
                                );
                            } else {
                                between += 1;
                            }
                        }
                    }
                    Ok(Some(_)) | Err(_) => {}
                    Ok(None) => break,
                }
                if sending_done.load(Ordering::SeqCst) {
                    let at = *done_at.get_or_insert_with(Instant::now);
                    // What is not here 5 s after the last send is lost.
                    if received >= sent_total.load(Ordering::SeqCst)
                        || at.elapsed() > Duration::from_secs(5)
                    {
                        break;
                    }
                }
            }
            (counted, to_server, between, received)
        };
        let ((), (counted, to_server, between_uploads, received)) = tokio::join!(send, receive);
        stop.cancel();
        let done = match uploader {
            Some(task) => match task.await {
                Ok(done) => done,
                Err(e) => UploadLoop {
                    error: Some(format!("upload task: {e}")),
                    ..UploadLoop::default()
                },
            },
            None => UploadLoop::default(),
        };
        // After the last upload too (it is let finish), so the time uploads
        // were under way is a share of it.
        let duration_s = base.elapsed().as_secs_f64();
        if let Some(e) = &done.error {
            errors += 1;
            keep(first_error, e);
        }
        ChatPhase {
            sent: sent_total.load(Ordering::SeqCst),
            received,
            errors,
            latency: (!counted.is_empty()).then(|| Latency::of(&counted)),
            to_server: (!to_server.is_empty()).then(|| Latency::of(&to_server)),
            between_uploads,
            uploads: done.uploads,
            upload_bytes: done.bytes,
            upload_busy_s: done.busy.as_secs_f64(),
            duration_s,
        }
    }
}

/// `<phase>:<seq>:<µs>:<0|1>` → (phase, µs, during an upload).
fn parse_chat(text: &str) -> Option<(u32, u64, bool)> {
    let mut it = text.split(':');
    let phase = it.next()?.parse().ok()?;
    let _seq: u64 = it.next()?.parse().ok()?;
    let at = it.next()?.parse().ok()?;
    let during = it.next()? == "1";
    Some((phase, at, during))
}

/// `1234 µs` as a person reads it: µs, ms or s.
fn human_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

fn kb_as_mb(kb: Option<u64>) -> String {
    kb.map_or("-".into(), |kb| {
        format!("{:.1} MB", kb as f64 * 1024.0 / MB)
    })
}

/// The media part of `rtm bench`'s printout.
pub(super) fn print(m: &MediaReport) {
    println!(
        "transfers       {} at once × {:.1} MB (one user each)",
        m.transfers,
        m.file_bytes as f64 / MB
    );
    let show = |name: &str, t: &Transfers| {
        println!(
            "{name:<15} {:.1} MB/s in total: {} file(s), {:.1} MB in {:.2} s; {} failed",
            t.mb_per_s,
            t.files,
            t.bytes as f64 / MB,
            t.wall_s,
            t.failed
        );
        if let Some(l) = &t.time {
            println!(
                "{:<15} {:.1} MB/s per transfer at the median time; time p50 {}  p99 {}  max {}",
                "",
                t.per_transfer_mb_per_s,
                human_us(l.p50_us),
                human_us(l.p99_us),
                human_us(l.max_us)
            );
        }
    };
    show("upload", &m.upload);
    show("download", &m.download);
    println!(
        "server RSS      {} before, {} at most during the uploads, {} during the downloads",
        kb_as_mb(m.server_rss_kb_before),
        kb_as_mb(m.server_rss_kb_upload_peak),
        kb_as_mb(m.server_rss_kb_download_peak)
    );
    let chat = |name: &str, c: &ChatPhase| {
        let l = c.latency.clone().unwrap_or_default();
        println!(
            "{name:<15} p50 {}  p99 {}  max {}  (n={}; sent {}, received {}, errors {})",
            human_us(l.p50_us),
            human_us(l.p99_us),
            human_us(l.max_us),
            l.count,
            c.sent,
            c.received,
            c.errors
        );
    };
    let sender_share = |c: &ChatPhase| {
        if let Some(l) = &c.to_server {
            println!(
                "{:<15} of which to the server: p50 {}  p99 {}  max {} (server clock, 1 ms steps)",
                "",
                human_us(l.p50_us),
                human_us(l.p99_us),
                human_us(l.max_us)
            );
        }
    };
    chat("chat, idle", &m.chat_idle);
    sender_share(&m.chat_idle);
    chat("chat, upload", &m.chat_upload);
    sender_share(&m.chat_upload);
    let u = &m.chat_upload;
    println!(
        "{:<15} {} upload(s) of {:.1} MB on the sending client, under way {:.1} of {:.1} s; {} \
         message(s) sent between two uploads not counted",
        "",
        u.uploads,
        m.file_bytes as f64 / MB,
        u.upload_busy_s,
        u.duration_s,
        u.between_uploads
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_deterministic_and_not_repetitive() {
        let a = pattern(1000, 1);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, pattern(1000, 1));
        assert_ne!(a, pattern(1000, 2));
        assert_ne!(a[..8], a[8..16]);
        assert_eq!(pattern(3, 5).len(), 3);
    }

    #[test]
    fn size_mb_is_checked_against_the_servers_limit() {
        assert_eq!(file_bytes(32.0).unwrap(), MAX_MEDIA_BYTES);
        assert_eq!(file_bytes(0.5).unwrap(), 512 * 1024);
        assert!(file_bytes(32.5).unwrap_err().to_string().contains("32 MB"));
        assert!(file_bytes(0.0).is_err());
        assert!(file_bytes(f64::NAN).is_err());
    }

    #[test]
    fn transfers_sum_up_their_rates() {
        let t = Transfers::of(
            &[Duration::from_secs(1), Duration::from_secs(2)],
            MB as u64,
            1,
            Duration::from_secs(2),
        );
        assert_eq!((t.files, t.bytes, t.failed), (2, 2 * MB as u64, 1));
        assert!((t.mb_per_s - 1.0).abs() < 1e-9);
        // The median of {1 s, 2 s} at 3 significant digits is 1 s.
        assert!((t.per_transfer_mb_per_s - 1.0).abs() < 0.01, "{t:?}");
        let none = Transfers::of(&[], 10, 2, Duration::ZERO);
        assert_eq!((none.mb_per_s, none.time), (0.0, None));
    }

    #[test]
    fn chat_payloads_round_trip() {
        assert_eq!(parse_chat("2:7:1500:1"), Some((2, 1500, true)));
        assert_eq!(parse_chat("1:0:0:0"), Some((1, 0, false)));
        assert_eq!(parse_chat("1:x:0:0"), None);
        assert_eq!(human_us(999), "999 µs");
        assert_eq!(human_us(1500), "1.50 ms");
        assert_eq!(human_us(2_500_000), "2.50 s");
    }
}
