//! Hostile input against a real `rtm serve` process: malformed frames,
//! oversize frames, invalid UTF-8, frames before login, floods above limits,
//! a client that never reads and one that never logs in — while two
//! well-behaved clients chat. Every bad client is told why; the chat is
//! unaffected; the server's memory stays bounded.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use rtm::client::{ClientEvent, RtmMessage, SendMessageOptions};
use rtm::protocol::{ErrorKind, ServerFrame, close_code};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::MaybeTlsStream;

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
    fn start(config: &str) -> ServerProcess {
        let home = std::env::temp_dir().join(format!(
            "rtm-hostile-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&home).unwrap();
        let cfg = home.join("server.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rtm"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                "warn",
                "--config",
            ])
            .arg(&cfg)
            .arg("--data")
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
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServerProcess { child, url, home }
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

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

/// A masked WebSocket text frame carrying arbitrary (possibly invalid UTF-8) bytes.
fn raw_text_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_do_not_disturb_a_chat() {
    let server = ServerProcess::start("login_timeout_s = 2\n");
    let url = server.url.clone();
    let rss_start = server.rss_kb();

    let (alice, _ae) = login(&url, "alice").await;
    let (_bob, mut be) = login(&url, "bob").await;
    // The chat: alice sends 150 messages (under the rate limit) spread over the attack.
    let chat = tokio::spawn(async move {
        for i in 0..150 {
            let r = alice
                .send_message_to_peer(
                    RtmMessage::text(format!("m{i}")),
                    "bob",
                    SendMessageOptions::default(),
                )
                .await
                .unwrap();
            assert!(r.has_peer_received);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let reader = tokio::spawn(async move {
        for i in 0..150 {
            let text = wait_for(&mut be, |e| match e {
                ClientEvent::MessageFromPeer {
                    message: RtmMessage::Text { text },
                    ..
                } => Some(text.clone()),
                _ => None,
            })
            .await;
            assert_eq!(text, format!("m{i}"), "bob's chat is complete and in order");
        }
    });

    // 1. 10,000 malformed frames: each answered with an error.
    let u = url.clone();
    let garbage = tokio::spawn(async move {
        let (ws, _) = raw_login(&u, "mallory").await;
        let (mut tx, mut rx) = futures_util::StreamExt::split(ws);
        let writer = tokio::spawn(async move {
            use futures_util::SinkExt;
            for i in 0..10_000u32 {
                let text = match i % 5 {
                    0 => "{".to_string(),
                    1 => format!(r#"{{"id":{i},"type":"nope"}}"#),
                    2 => format!(r#"{{"id":{i},"type":"join","channel_id":"a/b"}}"#),
                    3 => "[1,2,3]".to_string(),
                    _ => format!(r#"{{"id":{i},"type":"send_peer_message"}}"#),
                };
                tx.feed(tokio_tungstenite::tungstenite::Message::Text(text.into()))
                    .await
                    .unwrap();
            }
            tx.flush().await.unwrap();
            tx
        });
        let mut errors = 0;
        while errors < 10_000 {
            use futures_util::StreamExt;
            match rx.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                    if let Ok(ServerFrame::Error { error, .. }) = ServerFrame::decode(&t) {
                        assert_eq!(error.kind, ErrorKind::InvalidArgument);
                        errors += 1;
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        let _ = writer.await;
        errors
    });

    // 2. An oversize frame: closed with 1009 before it is parsed.
    let (mut big, _) = raw_login(&url, "bigmouth").await;
    // The server may close while the frame is still being written: that
    // write can fail; the close frame must still arrive.
    let _ = futures_util::SinkExt::send(
        &mut big,
        tokio_tungstenite::tungstenite::Message::Text("x".repeat(2 * 1024 * 1024).into()),
    )
    .await;
    let (code, reason) = expect_close(&mut big).await;
    assert_eq!(code, close_code::TOO_BIG);
    assert!(reason.contains("larger than"), "{reason}");

    // 3. Invalid UTF-8 in a text frame: closed with 4002 saying so.
    let (mut bad, _) = raw_login(&url, "badutf8").await;
    if let MaybeTlsStream::Plain(tcp) = bad.get_mut() {
        tcp.write_all(&raw_text_frame(&[b'{', 0xff, 0xfe, b'}']))
            .await
            .unwrap();
    }
    let (code, reason) = expect_close(&mut bad).await;
    assert_eq!(code, close_code::PROTOCOL_ERROR);
    assert!(reason.contains("UTF-8"), "{reason}");

    // 4. Frames before login: NOT_LOGGED_IN each, connection stays usable.
    let mut early = raw_connect(&url).await;
    for i in 0..100 {
        raw_send(&mut early, &format!(r#"{{"id":{i},"type":"send_peer_message","peer_id":"bob","message":{{"type":"TEXT","text":"x"}}}}"#)).await;
    }
    for _ in 0..100 {
        match raw_recv(&mut early).await.unwrap() {
            ServerFrame::Error { error, .. } => assert_eq!(error.kind, ErrorKind::NotLoggedIn),
            other => panic!("{other:?}"),
        }
    }

    // 5. A flood above the message limit: TOO_OFTEN beyond 180 per 3 s, nothing half-sent.
    let (mut flood, _) = raw_login(&url, "flooder").await;
    for i in 0..400 {
        raw_send(&mut flood, &format!(r#"{{"id":{i},"type":"send_peer_message","peer_id":"nobody","message":{{"type":"TEXT","text":"spam"}}}}"#)).await;
    }
    let (mut ok, mut too_often) = (0, 0);
    for _ in 0..400 {
        match raw_recv(&mut flood).await.unwrap() {
            ServerFrame::Ok { .. } => ok += 1,
            ServerFrame::Error { error, .. } if error.kind == ErrorKind::TooOften => too_often += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, too_often), (180, 220));

    // 6. Never logs in: closed after the login timeout, saying why.
    let mut idle = raw_connect(&url).await;
    let (code, reason) = expect_close(&mut idle).await;
    assert_eq!(code, close_code::LOGIN_TIMEOUT);
    assert!(reason.contains("login"), "{reason}");

    assert_eq!(garbage.await.unwrap(), 10_000);
    chat.await.unwrap();
    reader.await.unwrap();
    let rss_end = server.rss_kb();
    println!("server RSS: {rss_start} kB at start, {rss_end} kB after the attack");
    // Bounded: the attack queued nothing without limit (a leak of every frame
    // would be far above this).
    assert!(
        rss_end < rss_start + 64 * 1024,
        "server memory grew from {rss_start} kB to {rss_end} kB"
    );
}
