//! Delivery guarantees over real sockets: offline messages survive a link
//! that dies in the middle of their hand-over (at-least-once on the wire,
//! exactly once for the application), a mailbox larger than the outbound
//! queue drains, and a session that resumes within the grace gets what was
//! sent to it while its link was down.
//!
//! Links are cut with a small TCP proxy between the SDK and the server, so
//! the SDK's own reconnection runs exactly as it would on a real network.

mod common;

use rtm::server::store::OfflineQuota;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rtm::client::{ChannelEvent, ClientEvent, ClientEvents, ConnectionState};
use rtm::protocol::{PeerOnlineState, RtmMessage, SendMessageOptions};
use rtm::server::{MemoryStore, ServerConfig, ServerHandle, Store};

const OFFLINE: SendMessageOptions = SendMessageOptions {
    enable_offline_messaging: true,
};

/// Messages stored for the receiver in the mailbox tests.
const STORED: usize = 3000;

fn generous(mut c: ServerConfig) -> ServerConfig {
    c.limit_scale = 1000;
    // Thousands of messages from one sender to one receiver: the default
    // quotas (1,000 per sender per hour, 2 MiB per receiver) would refuse them.
    c.hub.offline_quota = OfflineQuota::only_cap(2 * STORED);
    c
}

async fn start(config: ServerConfig) -> (ServerHandle, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let server = start_server_on("127.0.0.1:0", config, store.clone()).await;
    (server, store)
}

/// Stores `n` messages "0", "1" … for `to`, who is offline; many in flight
/// at once so that thousands take well under a second.
async fn fill_mailbox(url: &str, to: &str, n: usize, store: &dyn Store) {
    let (alice, _events) = login(url, "alice").await;
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let sends = chunk
            .iter()
            .map(|i| alice.send_message_to_peer(RtmMessage::text(i.to_string()), to, OFFLINE));
        for r in futures_util::future::join_all(sends).await {
            assert!(r.expect("store a message").cached);
        }
    }
    alice.logout().await.expect("logout");
    assert_eq!(
        store.stats().await.expect("stats").offline_messages,
        n as u64
    );
}

/// The next peer message's text, or None when none comes within `within`.
async fn next_peer_text(events: &mut ClientEvents, within: Duration) -> Option<String> {
    tokio::time::timeout(within, async {
        loop {
            match events.recv().await? {
                ClientEvent::MessageFromPeer {
                    message: RtmMessage::Text { text },
                    ..
                } => return Some(text),
                _ => continue,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Waits until every stored message is acknowledged (and so deleted).
async fn wait_mailbox_empty(store: &dyn Store) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = store.stats().await.expect("stats").offline_messages;
        if left == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} offline messages were never acknowledged"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_link_cut_during_offline_delivery_loses_nothing_and_the_app_sees_each_message_once() {
    let (server, store) = start(generous(test_config())).await;
    fill_mailbox(&server.url(), "bob", STORED, store.as_ref()).await;
    let proxy = Proxy::start(server.addr).await;
    let (_bob, mut be) = login(&proxy.url(), "bob").await;

    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..STORED / 6 {
        let text = next_peer_text(&mut be, WAIT)
            .await
            .expect("offline message");
        *seen.entry(text).or_default() += 1;
    }
    // The link dies with most of the mailbox handed over (or in flight).
    proxy.cut();
    while seen.len() < STORED {
        match next_peer_text(&mut be, WAIT).await {
            Some(text) => *seen.entry(text).or_default() += 1,
            None => panic!(
                "{} of {STORED} acknowledged messages were lost when the link died mid-delivery",
                STORED - seen.len()
            ),
        }
    }
    // Everything is acknowledged, and no duplicate reached the application.
    wait_mailbox_empty(store.as_ref()).await;
    while let Some(ev) = be.try_recv() {
        if let ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text },
            ..
        } = ev
        {
            *seen.entry(text).or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "seen more than once: {twice:?}");
    assert_eq!(seen.len(), STORED);
    server.shutdown().await;
}

/// How many stored messages a receiver loses when its link dies after the
/// server wrote them but before it read them: it reads and acknowledges the
/// first sixth, the connection then drops, and a second login collects the
/// rest. Prints the count, for the record.
#[tokio::test]
async fn messages_written_but_never_read_before_the_link_died_are_delivered_again() {
    const READ: usize = STORED / 6;
    let (server, store) = start(generous(test_config())).await;
    fill_mailbox(&server.url(), "bob", STORED, store.as_ref()).await;

    let (mut ws, _) = raw_login(&server.url(), "bob").await;
    let mut got: std::collections::HashSet<String> = Default::default();
    while got.len() < READ {
        let Some(rtm::protocol::ServerFrame::Event {
            event:
                rtm::protocol::Event::MessageFromPeer {
                    message: RtmMessage::Text { text },
                    props,
                    ..
                },
        }) = raw_recv(&mut ws).await
        else {
            continue;
        };
        got.insert(text);
        // The stable id of a stored message, read without the SDK's types so
        // that this test also runs against a server without acknowledgements.
        let last_id = serde_json::to_value(props)
            .ok()
            .and_then(|p| p["message_id"].as_u64());
        if got.len().is_multiple_of(100) || got.len() == READ {
            let ack = format!(
                r#"{{"id":{},"type":"ack_offline","up_to":{}}}"#,
                got.len() + 1,
                last_id.unwrap_or(0)
            );
            raw_send(&mut ws, &ack).await;
        }
    }
    // Once the server has let go of what was read (and, on a server that
    // deletes on write, of much more), the link dies without a goodbye.
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.stats().await.unwrap().offline_messages > (STORED - READ) as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the read messages were never released"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(ws);

    let (_bob, mut be) = login(&server.url(), "bob").await;
    let mut again: HashMap<String, usize> = HashMap::new();
    loop {
        let left = store.stats().await.unwrap().offline_messages;
        match next_peer_text(&mut be, Duration::from_millis(500)).await {
            Some(text) => *again.entry(text).or_default() += 1,
            None if left == 0 => break,
            None => {}
        }
    }
    let lost = (0..STORED)
        .filter(|i| !got.contains(&i.to_string()) && !again.contains_key(&i.to_string()))
        .count();
    println!("stored {STORED}, read {READ} before the link died, lost {lost}");
    assert_eq!(lost, 0, "{lost} of {STORED} stored messages were lost");
    let twice: Vec<_> = again.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "the application saw these twice: {twice:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_mailbox_larger_than_the_outbound_queue_drains_in_order_without_a_cut() {
    let mut config = generous(test_config());
    config.conn.queue_frames = 512;
    let (server, store) = start(config).await;
    fill_mailbox(&server.url(), "bob", STORED, store.as_ref()).await;
    let (_bob, mut be) = login(&server.url(), "bob").await;
    for i in 0..STORED {
        let ev = tokio::time::timeout(WAIT, async {
            loop {
                match be.recv().await.expect("event stream") {
                    ClientEvent::MessageFromPeer {
                        message: RtmMessage::Text { text },
                        props,
                        ..
                    } => return Ok((text, props.is_offline_message)),
                    ClientEvent::ConnectionStateChanged { state, reason }
                        if state != ConnectionState::Connected =>
                    {
                        return Err(format!("{state:?} ({reason:?})"));
                    }
                    _ => continue,
                }
            }
        })
        .await;
        match ev {
            Ok(Ok((text, offline))) => {
                assert_eq!(text, i.to_string(), "in store order");
                assert!(offline);
            }
            Ok(Err(state)) => panic!("the receiver was cut off after {i} messages: {state}"),
            Err(_) => panic!("only {i} of {STORED} stored messages arrived"),
        }
    }
    wait_mailbox_empty(store.as_ref()).await;
    server.shutdown().await;
}

/// Alice and Bob share channel "room"; Bob's link goes through a proxy and
/// Alice watches his presence. Returns once Bob is in the channel.
struct Pair {
    server: ServerHandle,
    proxy: Proxy,
    alice: rtm::client::RtmClient,
    alice_events: ClientEvents,
    alice_room: rtm::client::RtmChannel,
    bob_events: ClientEvents,
    _bob: rtm::client::RtmClient,
    _bob_room: rtm::client::RtmChannel,
}

async fn pair(config: ServerConfig) -> Pair {
    let server = start_server_with(config).await;
    let proxy = Proxy::start(server.addr).await;
    let (alice, alice_events) = login(&server.url(), "alice").await;
    let (bob, bob_events) = login(&proxy.url(), "bob").await;
    let alice_room = alice.create_channel("room").unwrap();
    alice_room.join().await.unwrap();
    let bob_room = bob.create_channel("room").unwrap();
    bob_room.join().await.unwrap();
    alice.subscribe_peers_online_status(&["bob"]).await.unwrap();
    Pair {
        server,
        proxy,
        alice,
        alice_events,
        alice_room,
        bob_events,
        _bob: bob,
        _bob_room: bob_room,
    }
}

impl Pair {
    /// Cuts Bob's link and keeps him away until `reconnect`; returns once
    /// the server has noticed (Alice sees him UNREACHABLE).
    async fn cut_bob(&mut self) {
        self.proxy.block(true);
        self.proxy.cut();
        wait_for(&mut self.alice_events, |e| match e {
            ClientEvent::PeersOnlineStatusChanged(s)
                if s.get("bob") == Some(&PeerOnlineState::Unreachable) =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    }

    /// Lets Bob back in; returns what he got up to the SDK's `Restored`.
    async fn reconnect_bob(&mut self) -> Vec<ClientEvent> {
        self.proxy.block(false);
        let mut got = Vec::new();
        tokio::time::timeout(WAIT, async {
            loop {
                let ev = self.bob_events.recv().await.expect("event stream");
                if matches!(ev, ClientEvent::Restored { .. }) {
                    return;
                }
                got.push(ev);
            }
        })
        .await
        .expect("Bob reconnected and restored");
        got
    }
}

/// The texts of the messages (peer and channel) among `events`, in order.
fn texts(events: &[ClientEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::MessageFromPeer {
                message: RtmMessage::Text { text },
                ..
            } => Some(format!("peer:{text}")),
            ClientEvent::Channel {
                event:
                    ChannelEvent::ChannelMessage {
                        message: RtmMessage::Text { text },
                        ..
                    },
                ..
            } => Some(format!("room:{text}")),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn messages_sent_while_a_link_is_down_arrive_in_order_when_the_session_resumes() {
    let mut p = pair(test_config()).await;
    p.cut_bob().await;
    let mut expected = Vec::new();
    for i in 0..5 {
        p.alice_room
            .send_message(RtmMessage::text(format!("c{i}")))
            .await
            .unwrap();
        expected.push(format!("room:c{i}"));
        let r = p
            .alice
            .send_message_to_peer(
                RtmMessage::text(format!("p{i}")),
                "bob",
                SendMessageOptions::default(),
            )
            .await
            .unwrap();
        assert!(!r.has_peer_received && !r.cached);
        expected.push(format!("peer:p{i}"));
    }
    let got = p.reconnect_bob().await;
    assert_eq!(texts(&got), expected, "everything, in order: {got:?}");
    // Live messages follow the buffered ones.
    p.alice_room
        .send_message(RtmMessage::text("live"))
        .await
        .unwrap();
    wait_for(&mut p.bob_events, |e| {
        (texts(std::slice::from_ref(e)) == ["room:live"]).then_some(())
    })
    .await;
    p.server.shutdown().await;
}

#[tokio::test]
async fn an_overflowing_resume_buffer_delivers_what_fit_then_says_how_many_were_missed() {
    const SENT: usize = 40;
    let mut config = test_config();
    config.limit_scale = 1000;
    config.hub.resume_buffer_bytes = 2_000;
    let mut p = pair(config).await;
    p.cut_bob().await;
    let padding = "x".repeat(60);
    for i in 0..SENT {
        p.alice_room
            .send_message(RtmMessage::text(format!("{i:02} {padding}")))
            .await
            .unwrap();
    }
    let got = p.reconnect_bob().await;
    let kept = texts(&got);
    assert!(
        !kept.is_empty() && kept.len() < SENT,
        "some fit, not all: {kept:?}"
    );
    for (i, t) in kept.iter().enumerate() {
        assert_eq!(t, &format!("room:{i:02} {padding}"), "an unbroken prefix");
    }
    let missed_at = got
        .iter()
        .position(|e| matches!(e, ClientEvent::MessagesMissed { .. }))
        .expect("Bob is told that messages are missing");
    assert_eq!(
        got[missed_at],
        ClientEvent::MessagesMissed {
            count: (SENT - kept.len()) as u64
        }
    );
    let last_kept = got
        .iter()
        .rposition(|e| !texts(std::slice::from_ref(e)).is_empty())
        .unwrap();
    assert!(missed_at > last_kept, "the gap is reported where it is");
    p.server.shutdown().await;
}
