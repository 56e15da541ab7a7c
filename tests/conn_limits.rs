//! The connection layer under attack and faults, over real sockets: output
//! queues bounded in bytes, pipelining clients slowed rather than cut, no
//! frame lost in front of a close, connection caps that hold below the
//! descriptor limit, and small, bounded, answered misbehaviour before login
//! (fragments that never end, big frames, framing violations, plain HTTP).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rtm::client::{ClientEvent, PeerOnlineState, RtmMessage};
use rtm::protocol::{Event, Reply, ServerFrame, close_code};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

/// A 32 KB text of control characters: each one is six bytes (`\u0001`)
/// once JSON-escaped, so one message makes a frame of about 196 KB.
fn control_text() -> String {
    "\u{1}".repeat(32_000)
}

/// A raw client whose socket takes little before the server must queue:
/// a small receive buffer, set before connecting.
async fn small_buffer_login(url: &str, addr: std::net::SocketAddr, uid: &str) -> RawWs {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    let tcp = sock.connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    raw_send(
        &mut ws,
        &format!(r#"{{"id":1,"type":"login","protocol":1,"uid":"{uid}"}}"#),
    )
    .await;
    match raw_recv(&mut ws).await {
        Some(ServerFrame::Ok { .. }) => {}
        other => panic!("login failed: {other:?}"),
    }
    ws
}

/// Waits until `watcher` sees `uid` go from online to something else.
async fn wait_offline(we: &mut rtm::client::ClientEvents, uid: &str) -> PeerOnlineState {
    wait_for(we, |e| match e {
        ClientEvent::PeersOnlineStatusChanged(m) => m
            .get(uid)
            .copied()
            .filter(|s| *s != PeerOnlineState::Online),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_is_cut_by_bytes_not_frames() {
    let mut config = test_config();
    config.limit_scale = 1000;
    let server = start_server_with(config).await;
    let (watcher, mut we) = login(&server.url(), "watcher").await;
    let mut sloth = small_buffer_login(&server.url(), server.addr, "sloth").await;
    raw_send(&mut sloth, r#"{"id":2,"type":"join","channel_id":"busy"}"#).await;
    assert!(matches!(
        raw_recv(&mut sloth).await,
        Some(ServerFrame::Ok { .. })
    ));
    watcher
        .subscribe_peers_online_status(&["sloth"])
        .await
        .unwrap();
    wait_for(&mut we, |e| {
        matches!(e, ClientEvent::PeersOnlineStatusChanged(_)).then_some(())
    })
    .await;
    let (talker, _te) = login(&server.url(), "talker").await;
    let ch = talker.create_channel("busy").unwrap();
    ch.join().await.unwrap();
    // 150 frames: far below the 4,096-frame cap, but about 29 MB, far above
    // the default byte cap. The sloth must be cut for its bytes.
    let text = control_text();
    for _ in 0..150 {
        ch.send_message(RtmMessage::text(text.clone()))
            .await
            .unwrap();
    }
    assert_eq!(
        wait_offline(&mut we, "sloth").await,
        PeerOnlineState::Unreachable
    );
    let (code, reason) = loop {
        match raw_recv_or_close(&mut sloth).await {
            Ok(_) => continue,
            Err(close) => break close.expect("a close frame"),
        }
    };
    assert_eq!(code, close_code::SLOW_CONSUMER);
    assert!(reason.contains("bytes"), "{reason}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeliner_survives_events_that_come_while_its_replies_wait() {
    let mut config = test_config();
    config.limit_scale = 1000;
    let server = start_server_with(config).await;
    let (talker, _te) = login(&server.url(), "talker").await;
    let ch = talker.create_channel("news").unwrap();
    ch.join().await.unwrap();
    let mut ws = small_buffer_login(&server.url(), server.addr, "pipeliner").await;
    raw_send(&mut ws, r#"{"id":2,"type":"join","channel_id":"news"}"#).await;
    assert!(matches!(
        raw_recv(&mut ws).await,
        Some(ServerFrame::Ok { .. })
    ));
    // 16 KB of attributes, which each reply below carries: 3,000 replies
    // are far more than the socket buffers take, so the server must stop
    // reading this client for a while.
    let value = "v".repeat(7_000);
    raw_send(
        &mut ws,
        &format!(r#"{{"id":3,"type":"set_local_user_attributes","attributes":{{"a":"{value}","b":"{value}"}}}}"#),
    )
    .await;
    assert!(matches!(
        raw_recv(&mut ws).await,
        Some(ServerFrame::Ok { .. })
    ));
    const GETS: u64 = 3_000;
    let (mut tx, mut rx) = ws.split();
    let writer = tokio::spawn(async move {
        for i in 0..GETS {
            let frame = format!(
                r#"{{"id":{},"type":"get_user_attributes","user_id":"pipeliner"}}"#,
                i + 10
            );
            tx.feed(Message::Text(frame.into())).await.unwrap();
        }
        tx.flush().await.unwrap();
        tx
    });
    // Channel messages arrive meanwhile, while the replies wait to be read.
    const NEWS: usize = 1_500;
    for i in 0..NEWS {
        ch.send_message(RtmMessage::text(format!("news {i}")))
            .await
            .unwrap();
    }
    let (mut next, mut news) = (10, 0);
    while next < GETS + 10 || news < NEWS {
        match rx.next().await {
            Some(Ok(Message::Text(t))) => match ServerFrame::decode(&t).unwrap() {
                ServerFrame::Ok {
                    id,
                    result: Reply::UserAttributes { .. },
                } => {
                    assert_eq!(id, next, "replies in order, none lost");
                    next += 1;
                }
                ServerFrame::Event { .. } => news += 1,
                other => panic!("{other:?}"),
            },
            Some(Ok(Message::Close(f))) => panic!("closed after {next} replies: {f:?}"),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let _ = writer.await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_queued_before_a_close_is_delivered_in_order() {
    let mut config = test_config();
    config.limit_scale = 1000;
    let server = start_server_with(config).await;
    let ws = small_buffer_login(&server.url(), server.addr, "pipeliner").await;
    let (mut tx, mut rx) = ws.split();
    // The replies pile up in the server while the client is not reading, so
    // its writer is busy with a batch when the shutdown comes.
    const PINGS: u64 = 20_000;
    let writer = tokio::spawn(async move {
        for i in 0..PINGS {
            let frame = format!(r#"{{"id":{},"type":"ping"}}"#, i + 10);
            if tx.feed(Message::Text(frame.into())).await.is_err() {
                break;
            }
        }
        let _ = tx.flush().await;
    });
    // Wait for the first reply: the server is reading and replying.
    let first = loop {
        match rx.next().await {
            Some(Ok(Message::Text(t))) => break ServerFrame::decode(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert!(matches!(first, ServerFrame::Ok { id: 10, .. }), "{first:?}");
    let stopping = tokio::spawn(server.shutdown());
    let mut next = 11;
    let mut shutdown_event = false;
    let close = loop {
        match tokio::time::timeout(WAIT, rx.next())
            .await
            .expect("stalled")
        {
            Some(Ok(Message::Text(t))) => match ServerFrame::decode(&t).unwrap() {
                ServerFrame::Ok { id, .. } => {
                    assert!(!shutdown_event, "reply {id} after the shutdown notice");
                    assert_eq!(id, next, "no reply missing from the middle");
                    next += 1;
                }
                ServerFrame::Event { event, .. } => {
                    assert!(matches!(event, Event::ServerShutdown), "{event:?}");
                    shutdown_event = true;
                }
                other => panic!("{other:?}"),
            },
            Some(Ok(Message::Close(f))) => break f,
            Some(Ok(_)) => {}
            other => panic!("ended without a close frame after {next}: {other:?}"),
        }
    };
    assert_eq!(
        close.map(|f| u16::from(f.code)),
        Some(close_code::GOING_AWAY)
    );
    assert!(shutdown_event);
    writer.abort();
    stopping.await.unwrap();
}

/// Opens `n` TCP connections that never send a byte.
async fn silent_sockets(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_login_gets_through_a_burst_of_silent_sockets() {
    let mut config = test_config();
    config.max_connections = 50;
    config.max_connections_per_ip = 0;
    config.connect_rate_per_ip = 0;
    let server = start_server_with(config).await;
    let _silent = silent_sockets(server.addr, 300).await;
    let started = std::time::Instant::now();
    let (_ws, reply) = raw_login(&server.url(), "honest").await;
    assert!(
        matches!(
            reply,
            ServerFrame::Ok {
                result: Reply::LoggedIn { .. },
                ..
            }
        ),
        "{reply:?}"
    );
    println!("honest login took {:?}", started.elapsed());
    server.shutdown().await;
}

/// `rtm serve` in its own process, optionally under a descriptor limit.
struct ServerProcess {
    child: Child,
    url: String,
    home: std::path::PathBuf,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

impl ServerProcess {
    fn start(config: &str, nofile: Option<u32>) -> ServerProcess {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let home = std::env::temp_dir().join(format!("rtm-conn-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let cfg = home.join("server.toml");
        std::fs::write(&cfg, config).unwrap();
        let ulimit = nofile
            .map(|n| format!("ulimit -n {n} && "))
            .unwrap_or_default();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{ulimit}exec \"$0\" serve --listen 127.0.0.1:0 --log-level warn --config \"$1\" --data \"$2\""
            ))
            // RTM_SERVE_BIN runs the measurement against another build.
            .arg(std::env::var("RTM_SERVE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_rtm").into()))
            .arg(&cfg)
            .arg(home.join("data"))
            .env("RTM_HOME", &home)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rtm serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("server printed its URL").unwrap();
            if let Some(i) = line.find("ws://") {
                break line[i..].trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        ServerProcess { child, url, home }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.url.trim_start_matches("ws://").parse().unwrap()
    }

    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caps_stay_below_the_descriptor_limit() {
    // The shipped caps (50,000 connections) against a process that may
    // open only 256 descriptors.
    let server = ServerProcess::start(
        "connect_rate_per_ip = 0\nmax_connections_per_ip = 0\n",
        Some(256),
    );
    let _silent = silent_sockets(server.addr(), 400).await;
    let started = std::time::Instant::now();
    let (mut ws, reply) = tokio::time::timeout(WAIT, raw_login(&server.url, "honest"))
        .await
        .expect("the honest login got through");
    assert!(matches!(reply, ServerFrame::Ok { .. }), "{reply:?}");
    println!(
        "honest login during a burst of 400 silent sockets took {:?}",
        started.elapsed()
    );
    // Still serving.
    raw_send(&mut ws, r#"{"id":2,"type":"ping"}"#).await;
    assert!(matches!(
        raw_recv(&mut ws).await,
        Some(ServerFrame::Ok { .. })
    ));
}

/// Logs a raw connection in and hands back its TCP stream for raw bytes.
async fn raw_tcp(ws: &mut RawWs) -> &mut TcpStream {
    match ws.get_mut() {
        MaybeTlsStream::Plain(tcp) => tcp,
        _ => unreachable!("tests use plain TCP"),
    }
}

/// A masked client frame with the given first byte (FIN, RSV, opcode).
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![first, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

async fn expect_close(ws: &mut RawWs) -> (u16, String) {
    loop {
        match raw_recv_or_close(ws).await {
            Ok(_) => continue,
            Err(Some(close)) => return close,
            Err(None) => panic!("connection ended without a close frame"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn pongs_do_not_keep_an_unfinished_message_alive() {
    let mut config = test_config();
    config.timing.heartbeat_interval = Duration::from_secs(1);
    config.timing.heartbeat_timeout = Duration::from_secs(3600);
    let server = start_server_with(config).await;
    let (mut ws, _) = raw_login(&server.url(), "fragmenter").await;
    // The first fragment of a text message (FIN clear) that never ends.
    raw_tcp(&mut ws)
        .await
        .write_all(&client_frame(0x01, br#"{"id":2,"ty"#))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    // Reading answers the server's pings with pongs.
    let outcome = tokio::time::timeout(Duration::from_secs(600), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the unfinished message kept the connection open");
    assert_eq!(outcome, Some(close_code::PROTOCOL_ERROR));
    assert!(started.elapsed() <= Duration::from_secs(61));
    server.shutdown().await;
}

#[tokio::test]
async fn frames_before_login_are_small() {
    let server = start_server().await;
    let mut ws = raw_connect(&server.url()).await;
    let big = format!(
        r#"{{"id":1,"type":"ping","pad":"{}"}}"#,
        "x".repeat(16 * 1024)
    );
    let _ = ws.send(Message::Text(big.into())).await;
    let (code, reason) = expect_close(&mut ws).await;
    assert_eq!(code, close_code::TOO_BIG);
    assert!(reason.contains("login"), "{reason}");
    // A login frame still fits, of course.
    let (_ws, reply) = raw_login(&server.url(), "small").await;
    assert!(matches!(reply, ServerFrame::Ok { .. }));
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn frames_before_login_are_rate_limited() {
    let server = start_server_with(paused_server_config()).await;
    let mut ws = raw_connect(&server.url()).await;
    let started = tokio::time::Instant::now();
    for i in 0..300 {
        raw_send(&mut ws, &format!(r#"{{"id":{i},"type":"ping"}}"#)).await;
    }
    for _ in 0..300 {
        assert!(matches!(
            raw_recv(&mut ws).await,
            Some(ServerFrame::Ok { .. })
        ));
    }
    // 100 frames a second before login: 300 take at least two seconds.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_framing_violation_gets_close_1002() {
    let server = start_server().await;
    let (mut ws, _) = raw_login(&server.url(), "rsv").await;
    // RSV1 set without a negotiated extension.
    raw_tcp(&mut ws)
        .await
        .write_all(&client_frame(0x81 | 0x40, br#"{"id":2,"type":"ping"}"#))
        .await
        .unwrap();
    let (code, _) = expect_close(&mut ws).await;
    assert_eq!(code, 1002);
    server.shutdown().await;
}

async fn http_answer(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn plain_http_and_garbage_get_an_answer() {
    let server = start_server().await;
    let get = http_answer(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl\r\n\r\n",
    )
    .await;
    assert!(get.starts_with("HTTP/1.1 426 "), "{get:?}");
    assert!(get.contains("Upgrade: websocket"), "{get:?}");
    assert!(get.contains("rtm WebSocket endpoint"), "{get:?}");
    let garbage = http_answer(server.addr, b"\x16\x03\x01hello there\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage:?}");
    assert!(garbage.contains("rtm WebSocket endpoint"), "{garbage:?}");
    server.shutdown().await;
}

/// Measurement, run by hand: the server's memory while three clients that
/// never read receive 32 KB control-character messages.
///
/// `cargo test --test conn_limits -- --ignored --nocapture memory_under_stalled_readers`
/// (with `RTM_SERVE_BIN=path/to/rtm` to measure another build of the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn memory_under_stalled_readers() {
    let server = ServerProcess::start(
        "limit_scale = 1000\nconnect_rate_per_ip = 0\nlog_level = \"warn\"\n",
        None,
    );
    let rss_start = server.rss_kb();
    let mut sloths = Vec::new();
    for i in 0..3 {
        let (mut ws, _) = raw_login(&server.url, &format!("sloth{i}")).await;
        raw_send(&mut ws, r#"{"id":2,"type":"join","channel_id":"busy"}"#).await;
        raw_recv(&mut ws).await.unwrap();
        sloths.push(ws);
    }
    let (talker, _te) = login(&server.url, "talker").await;
    let ch = talker.create_channel("busy").unwrap();
    ch.join().await.unwrap();
    let text = control_text();
    let mut peak = rss_start;
    for i in 0..3000 {
        ch.send_message(RtmMessage::text(text.clone()))
            .await
            .unwrap();
        if i % 100 == 0 {
            peak = peak.max(server.rss_kb());
        }
    }
    let rss_end = server.rss_kb();
    println!(
        "server RSS with 3 stalled readers after 3000 messages of 32 KB control characters: \
         start {rss_start} kB, peak {peak} kB, end {rss_end} kB"
    );
    drop(sloths);
}
