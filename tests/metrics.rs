//! The metrics listener over real sockets: `/metrics` moves as two clients
//! chat, `/healthz` and `/readyz` answer, anything else is 404.

mod common;

use std::time::Duration;

use common::process::free_port;
use common::*;
use rtm::client::{RtmMessage, SendMessageOptions};
use rtm::server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` → (status, body).
async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The value of a sample line `name{labels} value` (or `name value`).
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_move_as_two_clients_chat_and_health_answers() {
    let addr = format!("127.0.0.1:{}", free_port());
    let server = start_server_with(ServerConfig {
        metrics_listen: Some(addr.clone()),
        ..ServerConfig::default()
    })
    .await;
    let (_, before) = get(&addr, "/metrics").await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let (bob, mut be) = login(&server.url(), "bob").await;
    for i in 0..3 {
        alice
            .send_message_to_peer(
                RtmMessage::Text {
                    text: format!("hi {i}"),
                },
                "bob",
                SendMessageOptions::default(),
            )
            .await
            .unwrap();
    }
    for _ in 0..3 {
        peer_text(&mut be).await;
    }
    let ach = alice.create_channel("room").unwrap();
    let bch = bob.create_channel("room").unwrap();
    ach.join().await.unwrap();
    bch.join().await.unwrap();
    ach.send_message(RtmMessage::Text { text: "all".into() })
        .await
        .unwrap();
    next_channel_text(&mut be, "room").await;

    let (status, after) = get(&addr, "/metrics").await;
    assert_eq!(status, 200);
    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(delta(r#"rtm_messages_total{kind="peer"}"#), 3.0, "{after}");
    assert_eq!(delta(r#"rtm_messages_total{kind="channel"}"#), 1.0);
    assert!(delta("rtm_deliveries_total") >= 4.0, "{after}");
    assert_eq!(delta(r#"rtm_logins_total{result="ok"}"#), 2.0);
    assert!(sample(&after, "rtm_connections") >= 2.0, "{after}");
    assert!(sample(&after, "rtm_users") >= 2.0, "{after}");
    assert!(
        sample(&after, r#"rtm_sessions{link="up"}"#) >= 2.0,
        "{after}"
    );
    assert!(after.contains("rtm_channel_fanout_bucket"), "{after}");
    assert!(
        after.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );

    assert_eq!(get(&addr, "/healthz").await, (200, "ok\n".to_string()));
    assert_eq!(get(&addr, "/readyz").await.0, 200);
    assert_eq!(get(&addr, "/nope").await.0, 404);
    server.shutdown().await;
}
