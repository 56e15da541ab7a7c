//! Compact message events (PROTOCOL.md §8.13) over real sockets: each session
//! gets the form it asked for at login, in the same channel; stored messages
//! keep the object form; the SDK reads both and asks for compact by default.

mod common;

use common::*;
use futures_util::StreamExt;
use rtm::client::{ClientEvent, RtmMessage, SendMessageOptions};
use rtm::protocol::{Reply, ServerFrame};
use tokio_tungstenite::tungstenite::Message;

/// Next text frame as it came over the wire (skipping pings).
async fn raw_text(ws: &mut RawWs) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Close(f))) => panic!("closed: {f:?}"),
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a frame in time")
}

/// A raw login asking (or not) for compact events; returns the reply's flag.
async fn login_raw(url: &str, uid: &str, compact: bool) -> (RawWs, bool) {
    let mut ws = raw_connect(url).await;
    raw_send(
        &mut ws,
        &format!(
            r#"{{"id":1,"type":"login","protocol":1,"uid":"{uid}","compact_events":{compact}}}"#
        ),
    )
    .await;
    match raw_recv(&mut ws).await {
        Some(ServerFrame::Ok {
            result: Reply::LoggedIn { compact_events, .. },
            ..
        }) => (ws, compact_events),
        other => panic!("login failed: {other:?}"),
    }
}

/// Joins `ch` and reads frames until the join's reply (id 2).
async fn join_raw(ws: &mut RawWs, ch: &str) {
    raw_send(
        ws,
        &format!(r#"{{"id":2,"type":"join","channel_id":"{ch}"}}"#),
    )
    .await;
    loop {
        if let Some(ServerFrame::Ok { id: 2, .. }) = raw_recv(ws).await {
            return;
        }
    }
}

/// Reads until a frame carrying `needle` (other events may come first).
async fn frame_with(ws: &mut RawWs, needle: &str) -> String {
    loop {
        let t = raw_text(ws).await;
        if t.contains(needle) {
            return t;
        }
    }
}

#[tokio::test]
async fn each_member_gets_the_form_it_asked_for_in_one_channel() {
    let server = start_server().await;
    let (mut compact, granted) = login_raw(&server.url(), "compact", true).await;
    assert!(granted, "the server grants compact events when asked");
    let (mut full, granted) = login_raw(&server.url(), "full", false).await;
    assert!(!granted, "and not when not asked");
    join_raw(&mut compact, "room").await;
    join_raw(&mut full, "room").await;
    let (sender, _se) = login(&server.url(), "sender").await;
    let room = sender.create_channel("room").expect("channel");
    room.join().await.expect("join");
    room.send_message(RtmMessage::text("to all \"of\" you"))
        .await
        .expect("sent");

    let c = frame_with(&mut compact, "to all").await;
    assert!(
        c.starts_with(r#"["c","room","sender","#) && c.ends_with(r#","to all \"of\" you"]"#),
        "{c}"
    );
    let f = frame_with(&mut full, "to all").await;
    assert!(
        f.starts_with(r#"{"type":"event","event":{"kind":"channel_message""#),
        "{f}"
    );
    assert!(
        c.len() * 3 < f.len(),
        "compact {} bytes, full {}",
        c.len(),
        f.len()
    );
    // Both decode to the same event.
    let (ServerFrame::Event { event: ce }, ServerFrame::Event { event: fe }) = (
        ServerFrame::decode(&c).expect("compact decodes"),
        ServerFrame::decode(&f).expect("full decodes"),
    ) else {
        panic!("not events");
    };
    assert_eq!(ce, fe);
    server.shutdown().await;
}

#[tokio::test]
async fn live_peer_messages_are_compact_and_stored_ones_keep_the_object_form() {
    let server = start_server().await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    // Stored while bob is away.
    alice
        .send_message_to_peer(
            RtmMessage::text("while you were out"),
            "bob",
            SendMessageOptions {
                enable_offline_messaging: true,
            },
        )
        .await
        .expect("stored");
    let (mut bob, granted) = login_raw(&server.url(), "bob", true).await;
    assert!(granted);
    let stored = frame_with(&mut bob, "while you were out").await;
    assert!(
        stored.starts_with('{') && stored.contains(r#""message_id":"#),
        "{stored}"
    );
    alice
        .send_message_to_peer(RtmMessage::text("now"), "bob", Default::default())
        .await
        .expect("sent");
    let live = frame_with(&mut bob, "now").await;
    assert!(live.starts_with(r#"["p","alice","#), "{live}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_sdk_reads_both_forms_the_same() {
    let server = start_server().await;
    let compact_cfg = fast_client_config();
    assert!(
        compact_cfg.compact_events,
        "the SDK asks for compact by default"
    );
    let full_cfg = rtm::client::ClientConfig {
        compact_events: false,
        ..fast_client_config()
    };
    let (a, mut ae) = login_with(&server.url(), "a", compact_cfg).await;
    let (b, mut be) = login_with(&server.url(), "b", full_cfg).await;
    let (c, _ce) = login(&server.url(), "c").await;
    // Handles kept: dropping the last one leaves the channel.
    let mut rooms = Vec::new();
    for client in [&a, &b, &c] {
        let room = client.create_channel("room").expect("channel");
        room.join().await.expect("join");
        rooms.push(room);
    }
    let raw = RtmMessage::Raw {
        raw: vec![0, 159, 146, 150, 255],
        description: "bytes".into(),
    };
    rooms[2].send_message(raw.clone()).await.expect("sent");
    c.send_message_to_peer(RtmMessage::text("hi a"), "a", Default::default())
        .await
        .expect("sent");
    c.send_message_to_peer(RtmMessage::text("hi b"), "b", Default::default())
        .await
        .expect("sent");
    for (events, peer_text) in [(&mut ae, "hi a"), (&mut be, "hi b")] {
        let got = wait_for(events, |e| match e {
            ClientEvent::Channel {
                event:
                    rtm::client::ChannelEvent::ChannelMessage {
                        message, member_id, ..
                    },
                ..
            } => Some((message.clone(), member_id.to_string())),
            _ => None,
        })
        .await;
        assert_eq!(got, (raw.clone(), "c".to_string()));
        let text = wait_for(events, |e| match e {
            ClientEvent::MessageFromPeer { message, .. } => Some(message.clone()),
            _ => None,
        })
        .await;
        assert_eq!(text, RtmMessage::text(peer_text));
    }
    server.shutdown().await;
}
