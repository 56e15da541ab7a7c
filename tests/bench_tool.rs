//! The bench tool counts right: small loads (a few clients, about a second)
//! against servers in this process, including a relay that drops or repeats
//! messages on purpose. No timing assertions: only counts.

use std::sync::Arc;

use rtm::bench::bare::{self, Faults};
use rtm::bench::{BenchArgs, Report, Scenario, Target};
use rtm::server::{self, MemoryStore, ServerConfig};
use tokio_util::sync::CancellationToken;

/// A bare relay on 127.0.0.1:0 with `faults`; cancelled on drop of the token.
async fn bare_relay(faults: Faults) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(bare::serve(listener, faults, stop.clone()));
    (url, stop)
}

fn args(scenario: Scenario, target: Target, url: &str, clients: usize, rate: f64) -> BenchArgs {
    let mut a = BenchArgs::new(scenario, target);
    a.server = Some(url.to_string());
    a.clients = clients;
    a.rate = rate;
    a.duration = 1.0;
    a.source_addrs = 2;
    a
}

async fn run(a: BenchArgs) -> Report {
    rtm::bench::run(a).await.expect("bench run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_counts_every_delivery_of_a_faithful_relay() {
    let (url, _stop) = bare_relay(Faults::default()).await;
    let r = run(args(Scenario::Fanout, Target::Bare, &url, 4, 40.0)).await;
    assert_eq!(r.clients, 4);
    assert_eq!(r.sent, 40);
    assert_eq!(r.expected, 120, "3 receivers × 40 messages");
    assert_eq!(r.received, 120);
    assert_eq!((r.lost, r.duplicates, r.reordered), (0, 0, 0));
    assert_eq!(r.latency.unwrap().count, 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_detects_each_dropped_delivery() {
    let (url, _stop) = bare_relay(Faults {
        drop_every: 7,
        dup_every: 0,
    })
    .await;
    let r = run(args(Scenario::Fanout, Target::Bare, &url, 4, 40.0)).await;
    // 120 deliveries, every 7th dropped.
    assert_eq!(r.expected, 120);
    assert_eq!(r.lost, 120 / 7);
    assert_eq!(r.received, 120 - 120 / 7);
    assert_eq!(r.duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_max_stops_on_its_own_and_counts_every_delivery() {
    let (url, _stop) = bare_relay(Faults::default()).await;
    let mut a = args(Scenario::FanoutMax, Target::Bare, &url, 5, 0.0);
    a.window = 8;
    a.duration = 0.5;
    let r = run(a).await;
    assert_eq!(r.clients, 5);
    assert!(r.sent > 0, "the publisher sent as the window allowed");
    assert_eq!(r.expected, r.sent * 4, "4 receivers");
    assert_eq!((r.received, r.lost, r.duplicates), (r.expected, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_max_counts_what_a_relay_drops_instead_of_waiting_forever() {
    let (url, _stop) = bare_relay(Faults {
        drop_every: 3,
        dup_every: 0,
    })
    .await;
    let mut a = args(Scenario::FanoutMax, Target::Bare, &url, 4, 0.0);
    a.window = 4;
    a.duration = 0.5;
    let r = run(a).await;
    // A member missing a message never catches up: the window closes, the
    // run still ends, and what did not arrive is lost.
    assert!(r.sent > 0);
    assert_eq!(r.expected, r.sent * 3);
    assert!(r.lost > 0, "{r:?}");
    assert_eq!(r.received + r.lost, r.expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_detects_each_repeated_delivery() {
    let (url, _stop) = bare_relay(Faults {
        drop_every: 0,
        dup_every: 5,
    })
    .await;
    let r = run(args(Scenario::Fanout, Target::Bare, &url, 4, 40.0)).await;
    assert_eq!(r.received, 120, "a repeat is not counted twice");
    assert_eq!(r.duplicates, 120 / 5);
    assert_eq!(r.lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_counts_round_trips_and_losses() {
    let (url, _stop) = bare_relay(Faults::default()).await;
    let r = run(args(Scenario::Peer, Target::Bare, &url, 6, 60.0)).await;
    assert_eq!((r.sent, r.received, r.lost, r.duplicates), (60, 60, 0, 0));

    // Every 4th delivery dropped, on either leg: 60 pings make 60 deliveries
    // out, 15 dropped, 45 echoes back, 11 of those dropped.
    let (url, _stop) = bare_relay(Faults {
        drop_every: 4,
        dup_every: 0,
    })
    .await;
    let r = run(args(Scenario::Peer, Target::Bare, &url, 6, 60.0)).await;
    assert_eq!(r.sent, 60);
    assert!(r.lost > 0, "{r:?}");
    assert_eq!(r.lost + r.received, 60);
    assert_eq!(r.duplicates, 0);
}

async fn rtm_server() -> server::ServerHandle {
    let config = ServerConfig {
        limit_scale: 1000,
        ..ServerConfig::default()
    };
    server::spawn("127.0.0.1:0", config, Arc::new(MemoryStore::new()))
        .await
        .expect("bind test server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtm_fanout_and_peer_lose_nothing() {
    let s = rtm_server().await;
    let r = run(args(Scenario::Fanout, Target::Rtm, &s.url(), 4, 30.0)).await;
    assert_eq!(
        (r.expected, r.received, r.lost, r.duplicates, r.errors),
        (90, 90, 0, 0, 0)
    );
    let r = run(args(Scenario::Peer, Target::Rtm, &s.url(), 4, 30.0)).await;
    assert_eq!(
        (r.sent, r.received, r.lost, r.duplicates, r.errors),
        (30, 30, 0, 0, 0)
    );
    let mut a = args(Scenario::FanoutMax, Target::Rtm, &s.url(), 4, 0.0);
    a.window = 16;
    a.duration = 0.5;
    let r = run(a).await;
    assert!(r.sent > 0);
    assert_eq!(
        (r.expected, r.received, r.lost, r.duplicates, r.errors),
        (r.sent * 3, r.sent * 3, 0, 0, 0)
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtm_connect_churn_and_presence_count_their_clients() {
    let s = rtm_server().await;
    let r = run(args(Scenario::Connect, Target::Rtm, &s.url(), 20, 1.0)).await;
    assert_eq!((r.clients, r.connect_failures), (20, 0));
    // Memory is read from /proc of a spawned server only.
    assert!(r.rss_per_connection_kb.is_none());

    let r = run(args(Scenario::Churn, Target::Rtm, &s.url(), 1, 10.0)).await;
    assert_eq!((r.sent, r.received, r.errors), (10, 10, 0), "{r:?}");

    let mut a = args(Scenario::Presence, Target::Rtm, &s.url(), 6, 4.0);
    a.watch = 2;
    let r = run(a).await;
    // 6 watchers × 2 watched of 2 churners: each churner has 6 watchers;
    // 4 transitions × 6 notifications.
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.expected, 24);
    assert_eq!(r.received, 24);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtm_invite_times_every_invitation_to_its_acceptance() {
    let s = rtm_server().await;
    let mut a = args(Scenario::Invite, Target::Rtm, &s.url(), 0, 60.0);
    a.pairs = Some(4);
    let r = run(a).await;
    assert_eq!(r.clients, 8, "--pairs 4 is 4 callers and 4 callees");
    assert_eq!(
        (
            r.sent,
            r.received,
            r.lost,
            r.errors,
            r.unanswered,
            r.duplicates
        ),
        (60, 60, 0, 0, 0, 0),
        "{r:?}"
    );
    assert!(r.throughput_per_s > 0.0);
    let accepted = r.latency.clone().expect("send → accepted timed");
    let by_peer = r.latency2.clone().expect("send → received by peer timed");
    assert_eq!((accepted.count, by_peer.count), (60, 60));
    assert!(accepted.p50_us > 0 && accepted.p50_us <= accepted.p99_us);
    assert!(by_peer.p50_us > 0 && by_peer.p50_us <= by_peer.p99_us);
    // Each invitation's acceptance comes after its confirmation.
    assert!(
        by_peer.p50_us <= accepted.p50_us,
        "{by_peer:?} {accepted:?}"
    );
    assert_eq!(s.hub.open_invitations(), 0, "every invitation ended");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtm_invite_counts_what_the_server_refuses() {
    // The real limit (10 invitations per 5 s per caller): one caller asked
    // for 14 in a second gets 4 refused, and the report says so.
    let config = ServerConfig {
        limit_scale: 1,
        ..ServerConfig::default()
    };
    let s = server::spawn("127.0.0.1:0", config, Arc::new(MemoryStore::new()))
        .await
        .expect("bind test server");
    let r = run(args(Scenario::Invite, Target::Rtm, &s.url(), 2, 14.0)).await;
    assert_eq!(
        (r.sent, r.received, r.errors, r.lost, r.unanswered),
        (14, 10, 4, 4, 0),
        "{r:?}"
    );
    let e = r.first_error.unwrap_or_default();
    assert!(e.contains("TOO_OFTEN"), "{e}");
    s.shutdown().await;
}

/// The binary end to end: spawns the bare relay itself, splits the clients
/// over two load processes, writes the JSON report.
#[test]
fn binary_spawns_its_server_and_merges_two_load_processes() {
    let dir = std::env::temp_dir().join(format!("rtm-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtm"))
        .args([
            "bench",
            "fanout",
            "--target",
            "bare",
            "--clients",
            "6",
            "--rate",
            "20",
        ])
        .args(["--duration", "1", "--procs", "2", "--json"])
        .arg(&json)
        .output()
        .expect("run rtm bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r.load_processes, 2);
    assert_eq!(r.clients, 6);
    assert_eq!(
        (r.expected, r.received, r.lost, r.duplicates),
        (100, 100, 0, 0)
    );
    assert!(
        r.rss_per_connection_kb.is_some(),
        "spawned server's memory is read"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn markdown_table_has_ratios_to_rtm() {
    let mk = |t, thr, p99, mem| Report {
        scenario: Some(Scenario::Fanout),
        target: Some(t),
        clients: 10,
        throughput_per_s: thr,
        latency: Some(rtm::bench::Latency {
            count: 1,
            p50_us: 1,
            p99_us: p99,
            p999_us: 1,
            max_us: 1,
        }),
        rss_per_connection_kb: Some(mem),
        ..Report::default()
    };
    let table = rtm::bench::markdown_table(&[
        mk(Target::Rtm, 1000.0, 100, 10.0),
        mk(Target::Nats, 500.0, 200, 5.0),
    ]);
    let nats = table.lines().find(|l| l.contains("| nats |")).unwrap();
    assert!(nats.contains("| 0.50 |"), "{nats}");
    assert!(nats.contains("| 2.00 |"), "{nats}");
}

/// `rtm bench media` end to end: spawns `rtm serve`, uploads two 2 MB files
/// at once and downloads them, reads the server's memory, times chat
/// without and with uploads on the sending client, and leaves no data
/// directory behind.
#[test]
fn media_moves_every_byte_and_times_chat_without_and_with_uploads() {
    let dir = std::env::temp_dir().join(format!("rtm-bench-media-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rtm"))
        .args(["bench", "media", "--transfers", "2", "--size-mb", "2"])
        .args(["--chat-rate", "100", "--duration", "1", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run rtm bench");
    // The spawned server's data directory is named after the bench's pid.
    let data_prefix = format!("rtm-bench-{}-rtm-", child.id());
    let out = child.wait_with_output().expect("wait for rtm bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let m = r.media.clone().expect("a media report");
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!((m.transfers, m.file_bytes), (2, 2 * 1024 * 1024));
    for t in [&m.upload, &m.download] {
        assert_eq!(
            (t.files, t.bytes, t.failed),
            (2, 4 * 1024 * 1024, 0),
            "{t:?}"
        );
        assert!(t.mb_per_s > 0.0 && t.per_transfer_mb_per_s > 0.0, "{t:?}");
        let time = t.time.clone().expect("transfer times");
        assert_eq!(time.count, 2);
        assert!(time.p50_us > 0 && time.p50_us <= time.p99_us, "{time:?}");
    }
    let before = m.server_rss_kb_before.expect("the spawned server's memory");
    let peak = m
        .server_rss_kb_upload_peak
        .expect("its peak during uploads");
    assert!(before > 0 && peak >= before, "{before} {peak}");
    assert!(m.server_rss_kb_download_peak.is_some());

    let idle = &m.chat_idle;
    assert_eq!(idle.sent, 100, "100/s for 1 s");
    assert_eq!((idle.received, idle.errors, idle.uploads), (100, 0, 0));
    let l = idle.latency.clone().expect("chat timed without uploads");
    assert_eq!(l.count, 100);
    assert!(l.p50_us > 0 && l.p50_us <= l.p99_us, "{l:?}");

    let busy = &m.chat_upload;
    assert!(busy.uploads >= 1, "{busy:?}");
    assert_eq!(busy.upload_bytes, busy.uploads * 2 * 1024 * 1024);
    assert!(busy.sent >= 100 && busy.received == busy.sent, "{busy:?}");
    let l = busy.latency.clone().expect("chat timed during uploads");
    assert!(l.count > 0, "{busy:?}");
    assert_eq!(l.count + busy.between_uploads, busy.received);
    assert!(l.p50_us > 0 && l.p50_us <= l.p99_us, "{l:?}");
    let to_server = busy.to_server.clone().expect("the sender's share timed");
    assert_eq!(to_server.count, l.count);
    assert!(busy.upload_busy_s > 0.0 && busy.upload_busy_s <= busy.duration_s);

    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&data_prefix))
        .collect();
    assert!(
        left.is_empty(),
        "the server's data directory was left: {left:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn server_list_is_split_at_commas_and_one_url_still_works() {
    let mut a = BenchArgs::new(Scenario::Fanout, Target::Rtm);
    assert!(a.server_urls().is_empty());
    a.server = Some("ws://127.0.0.1:1".into());
    assert_eq!(a.server_urls(), vec!["ws://127.0.0.1:1"]);
    a.server = Some("ws://127.0.0.1:1, ws://127.0.0.1:2,ws://127.0.0.1:3,".into());
    assert_eq!(
        a.server_urls(),
        vec!["ws://127.0.0.1:1", "ws://127.0.0.1:2", "ws://127.0.0.1:3"]
    );
    // The command line: --nodes needs --redis, and --server excludes --nodes.
    let parse = |args: &[&str]| {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: BenchArgs,
        }
        P::try_parse_from(args).map(|p| p.a)
    };
    assert!(parse(&["bench", "fanout", "--nodes", "3"]).is_err());
    assert!(
        parse(&[
            "bench",
            "fanout",
            "--nodes",
            "3",
            "--server",
            "ws://127.0.0.1:1",
            "--redis",
            "redis://127.0.0.1:1"
        ])
        .is_err()
    );
    let a = parse(&[
        "bench",
        "peer",
        "--nodes",
        "3",
        "--redis",
        "redis://127.0.0.1:7",
    ])
    .unwrap();
    assert_eq!(
        (a.nodes, a.redis.as_deref()),
        (Some(3), Some("redis://127.0.0.1:7"))
    );
}

/// Clients go to the servers round-robin: fanout over two independent bare
/// relays with 4 members — publisher 0 and member 2 on the first, members 1
/// and 3 on the second — so only member 2 hears the publisher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_spread_over_the_servers_round_robin() {
    let (a, _stop_a) = bare_relay(Faults::default()).await;
    let (b, _stop_b) = bare_relay(Faults::default()).await;
    let r = run(args(
        Scenario::Fanout,
        Target::Bare,
        &format!("{a},{b}"),
        4,
        20.0,
    ))
    .await;
    assert_eq!((r.clients, r.servers), (4, 2));
    assert_eq!(r.sent, 20);
    assert_eq!(r.expected, 60, "3 receivers × 20 messages");
    assert_eq!(r.received, 20, "only the member on the publisher's relay");
    assert_eq!(r.lost, 40);
}
