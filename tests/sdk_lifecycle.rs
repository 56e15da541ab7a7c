//! Lifecycle and resources of the SDK, over real sockets against a real
//! server: what dropping handles does, where events go and how the queues
//! stay bounded, sends held during a reconnection, reconnection through the
//! server's own limits, and the edges of login/logout.
//!
//! A small TCP proxy between client and server lets a test cut the link,
//! refuse new connections, or accept them and never answer.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rtm::client::{
    ChannelEvent, ClientEvent, ClientEvents, ConnectionChangeReason, ConnectionState, ErrorKind,
    PeerOnlineState, RtmClient, RtmMessage,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What the proxy does with a new connection.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Mode {
    Forward = 0,
    /// Closes it at once (the server is unreachable).
    Refuse = 1,
    /// Keeps it open and says nothing (a login that hangs).
    Stall = 2,
}

/// A TCP proxy in front of the test server.
#[derive(Clone)]
struct Proxy {
    url: String,
    mode: Arc<AtomicU8>,
    /// Cancelled to cut every link forwarded so far.
    links: Arc<Mutex<CancellationToken>>,
}

impl Proxy {
    async fn start(to: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            url: format!("ws://{}", listener.local_addr().unwrap()),
            mode: Arc::new(AtomicU8::new(Mode::Forward as u8)),
            links: Arc::new(Mutex::new(CancellationToken::new())),
        };
        let me = proxy.clone();
        tokio::spawn(async move {
            let mut stalled = Vec::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                match me.mode.load(Ordering::SeqCst) {
                    1 => drop(inbound),
                    2 => stalled.push(inbound),
                    _ => {
                        let cut = me.links.lock().unwrap().clone();
                        tokio::spawn(async move {
                            let Ok(mut outbound) = TcpStream::connect(to).await else {
                                return;
                            };
                            tokio::select! {
                                _ = cut.cancelled() => {}
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            }
                        });
                    }
                }
            }
        });
        proxy
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Drops every link forwarded so far (both directions see EOF).
    fn cut(&self) {
        let old = std::mem::take(&mut *self.links.lock().unwrap());
        old.cancel();
    }
}

/// The next presence change of `uid` seen by a watcher.
async fn next_state_of(events: &mut ClientEvents, uid: &str) -> PeerOnlineState {
    wait_for_within(events, Duration::from_secs(60), |e| match e {
        ClientEvent::PeersOnlineStatusChanged(m) => {
            m.iter().find(|(u, _)| u.as_str() == uid).map(|(_, s)| *s)
        }
        _ => None,
    })
    .await
}

/// The next state change, whatever it is.
async fn next_state(events: &mut ClientEvents) -> (ConnectionState, ConnectionChangeReason) {
    wait_for_within(events, Duration::from_secs(60), |e| match e {
        ClientEvent::ConnectionStateChanged { state, reason } => Some((*state, *reason)),
        _ => None,
    })
    .await
}

/// The next member joined/left event on the client stream.
async fn next_member_event(events: &mut ClientEvents, within: Duration) -> ChannelEvent {
    wait_for_within(events, within, |e| match e {
        ClientEvent::Channel {
            event: ev @ (ChannelEvent::MemberJoined(_) | ChannelEvent::MemberLeft(_)),
            ..
        } => Some(ev.clone()),
        _ => None,
    })
    .await
}

/// The next channel message text on the client stream.
async fn next_channel_text(events: &mut ClientEvents) -> String {
    wait_for(events, |e| match e {
        ClientEvent::Channel {
            event:
                ChannelEvent::ChannelMessage {
                    message: RtmMessage::Text { text },
                    ..
                },
            ..
        } => Some(text.clone()),
        _ => None,
    })
    .await
}

// ------------------------------------------------------------ drop semantics

#[tokio::test(start_paused = true)]
async fn dropping_the_last_client_handle_logs_out_and_watchers_see_offline_at_once() {
    let server = start_server_with(paused_server_config()).await;
    let (bob, mut be) = login_with(&server.url(), "bob", paused_client_config()).await;
    let (alice, alice_events) = login_with(&server.url(), "alice", paused_client_config()).await;
    let room = alice.create_channel("room").unwrap();
    room.join().await.unwrap();
    bob.subscribe_peers_online_status(&["alice"]).await.unwrap();
    assert_eq!(
        next_state_of(&mut be, "alice").await,
        PeerOnlineState::Online
    );

    // A clone and a channel handle still hold the session.
    let clone = alice.clone();
    drop(alice);
    drop(alice_events);
    drop(room);
    let still = bob.query_peers_online_status(&["alice"]).await.unwrap();
    assert_eq!(still.values().copied().collect::<Vec<_>>(), [true]);

    // The last one ends it: a logout, so OFFLINE comes at once — not
    // UNREACHABLE for the 30 s grace of a dropped link. (Paused time: the
    // grace would elapse at the first idle moment, so a plain close fails.)
    drop(clone);
    let first = wait_for_within(&mut be, Duration::from_secs(1), |e| match e {
        ClientEvent::PeersOnlineStatusChanged(m) => m.values().next().copied(),
        _ => None,
    })
    .await;
    assert_eq!(first, PeerOnlineState::Offline);
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_of_a_joined_channel_leaves_it() {
    let server = start_server_with(paused_server_config()).await;
    let (bob, mut be) = login_with(&server.url(), "bob", paused_client_config()).await;
    let (alice, _ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    let bob_room = bob.create_channel("room").unwrap();
    bob_room.join().await.unwrap();
    let room = alice.create_channel("room").unwrap();
    room.join().await.unwrap();
    assert_eq!(
        next_member_event(&mut be, WAIT).await,
        ChannelEvent::MemberJoined("alice".parse().unwrap())
    );
    // A second handle of the same channel keeps it joined when the first goes.
    let again = alice.create_channel("room").unwrap();
    drop(room);
    assert_eq!(alice.joined_channels().len(), 1);
    drop(again);
    assert_eq!(
        next_member_event(&mut be, Duration::from_secs(1)).await,
        ChannelEvent::MemberLeft("alice".parse().unwrap())
    );
    assert!(alice.joined_channels().is_empty(), "not rejoined later");
    server.shutdown().await;
}

// ------------------------------------------------ event route and bounds

#[tokio::test(start_paused = true)]
async fn a_channel_event_arrives_once_on_the_client_stream_or_the_taken_channel_stream() {
    let server = start_server_with(paused_server_config()).await;
    let (bob, _be) = login_with(&server.url(), "bob", paused_client_config()).await;
    let (alice, mut ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    let bob_room = bob.create_channel("room").unwrap();
    bob_room.join().await.unwrap();
    let room = alice.create_channel("room").unwrap();
    room.join().await.unwrap();
    let say = |text: &'static str| {
        let bob_room = bob_room.clone();
        async move { bob_room.send_message(RtmMessage::text(text)).await.unwrap() }
    };
    // A peer message after the channel message marks "everything before is in".
    let sync = |n: u32| {
        let bob = bob.clone();
        async move {
            bob.send_message_to_peer(
                RtmMessage::text(format!("sync {n}")),
                "alice",
                Default::default(),
            )
            .await
            .unwrap()
        }
    };
    let until_sync = |events: &mut ClientEvents| {
        let mut channel_texts = Vec::new();
        let mut seen = Vec::new();
        while let Some(ev) = events.try_recv() {
            seen.push(ev);
        }
        for ev in seen {
            if let ClientEvent::Channel {
                event:
                    ChannelEvent::ChannelMessage {
                        message: RtmMessage::Text { text },
                        ..
                    },
                ..
            } = ev
            {
                channel_texts.push(text);
            }
        }
        channel_texts
    };

    // No channel stream taken: the client stream has it.
    say("one").await;
    assert_eq!(next_channel_text(&mut ae).await, "one");

    // Taken: only the channel stream has it, and a second reader is refused.
    let mut stream = room.events().expect("the channel stream is free");
    assert!(alice.create_channel("room").unwrap().events().is_none());
    say("two").await;
    sync(1).await;
    wait_for(&mut ae, |e| {
        matches!(e, ClientEvent::MessageFromPeer { .. }).then_some(())
    })
    .await;
    let got = stream.try_recv();
    assert!(
        matches!(&got, Some(ChannelEvent::ChannelMessage { message: RtmMessage::Text { text }, .. }) if text == "two"),
        "{got:?}"
    );
    assert_eq!(stream.try_recv(), None, "once");
    assert!(
        until_sync(&mut ae).is_empty(),
        "not on the client stream too"
    );

    // A second create_channel did not close the first handle's stream.
    say("three").await;
    assert!(matches!(
        stream.recv().await,
        Some(ChannelEvent::ChannelMessage { .. })
    ));

    // Dropped: back to the client stream.
    drop(stream);
    say("four").await;
    assert_eq!(next_channel_text(&mut ae).await, "four");
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_reader_that_falls_behind_gets_lagged_with_the_count_then_the_newest() {
    let server = start_server_with(paused_server_config()).await;
    let (bob, _be) = login_with(&server.url(), "bob", paused_client_config()).await;
    let config = rtm::client::ClientConfig {
        event_queue_capacity: 4,
        ..paused_client_config()
    };
    let (alice, mut ae) = login_with(&server.url(), "alice", config).await;
    for i in 0..10 {
        bob.send_message_to_peer(
            RtmMessage::text(format!("m{i}")),
            "alice",
            Default::default(),
        )
        .await
        .unwrap();
    }
    // A round trip of alice's: its reply comes after the ten messages on her
    // link, so all of them have reached her queue by now.
    alice.query_peers_online_status(&["bob"]).await.unwrap();
    assert_eq!(ae.try_recv(), Some(ClientEvent::Lagged { dropped: 6 }));
    let mut rest = Vec::new();
    while let Some(ClientEvent::MessageFromPeer {
        message: RtmMessage::Text { text },
        ..
    }) = ae.try_recv()
    {
        rest.push(text);
    }
    assert_eq!(rest, ["m6", "m7", "m8", "m9"]);
    server.shutdown().await;
}

// ------------------------------------------------- sends during reconnection

#[tokio::test(start_paused = true)]
async fn a_send_during_reconnection_is_held_and_goes_out_once_the_link_is_back() {
    let server = start_server_with(paused_server_config()).await;
    let proxy = Proxy::start(server.addr).await;
    let (_bob, mut be) = login_with(&server.url(), "bob", paused_client_config()).await;
    let (alice, mut ae) = login_with(&proxy.url, "alice", paused_client_config()).await;
    proxy.set(Mode::Refuse);
    proxy.cut();
    wait_state(&mut ae, ConnectionState::Reconnecting).await;

    let sender = alice.clone();
    let send = tokio::spawn(async move {
        sender
            .send_message_to_peer(RtmMessage::text("held"), "bob", Default::default())
            .await
    });
    // Paused time moves on only once every task is idle: the send is waiting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.set(Mode::Forward);
    wait_state(&mut ae, ConnectionState::Connected).await;
    let sent = send.await.unwrap().expect("sent after the reconnection");
    assert!(sent.has_peer_received);
    let text = wait_for(&mut be, |e| match e {
        ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text },
            ..
        } => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "held");
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_held_send_fails_with_a_clear_error_when_the_link_stays_down() {
    let server = start_server_with(paused_server_config()).await;
    let proxy = Proxy::start(server.addr).await;
    let config = rtm::client::ClientConfig {
        request_timeout: Duration::from_secs(5),
        ..paused_client_config()
    };
    let (alice, mut ae) = login_with(&proxy.url, "alice", config).await;
    proxy.set(Mode::Refuse);
    proxy.cut();
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    let started = tokio::time::Instant::now();
    let err = alice
        .send_message_to_peer(RtmMessage::text("lost"), "bob", Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("reconnect"), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "held, not refused at once"
    );
    server.shutdown().await;
}

// ------------------------------------------- reconnection and server limits

#[tokio::test(start_paused = true)]
async fn reconnection_retries_through_the_servers_login_limit() {
    let server = start_server_with(paused_server_config()).await;
    let proxy = Proxy::start(server.addr).await;
    let (alice, mut ae) = login_with(&proxy.url, "alice", paused_client_config()).await;
    let room = alice.create_channel("room").unwrap();
    room.join().await.unwrap();
    // Two drops in quick succession: the third login within a second is
    // over the server's 2-per-second limit and refused with TOO_OFTEN.
    proxy.cut();
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    wait_state(&mut ae, ConnectionState::Connected).await;
    proxy.cut();
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    assert_eq!(
        next_state(&mut ae).await,
        (
            ConnectionState::Connected,
            ConnectionChangeReason::LoginSuccess
        ),
        "a transient refusal is retried, not final"
    );
    let rejoined = wait_for(&mut ae, |e| match e {
        ClientEvent::Restored { rejoined, .. } => Some(rejoined.clone()),
        _ => None,
    })
    .await;
    assert_eq!(rejoined, ["room".parse().unwrap()]);
    server.shutdown().await;
}

// --------------------------------------------------------- login and logout

#[tokio::test]
async fn logout_when_not_logged_in_says_so() {
    let (client, _events) = RtmClient::new("ws://127.0.0.1:1", paused_client_config());
    let err = client.logout().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn, "{err}");
}

#[tokio::test(start_paused = true)]
async fn logout_cancels_a_pending_login() {
    let server = start_server_with(paused_server_config()).await;
    let proxy = Proxy::start(server.addr).await;
    proxy.set(Mode::Stall);
    let (alice, mut ae) = RtmClient::new(proxy.url.clone(), paused_client_config());
    let login = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.login("alice", None).await })
    };
    wait_state(&mut ae, ConnectionState::Connecting).await;
    alice.logout().await.expect("logout during a pending login");
    assert!(
        login.await.unwrap().is_err(),
        "the pending login was cancelled"
    );
    assert_eq!(
        next_state(&mut ae).await,
        (
            ConnectionState::Disconnected,
            ConnectionChangeReason::Logout
        )
    );
    // And the client can log in again.
    proxy.set(Mode::Forward);
    alice.login("alice", None).await.unwrap();
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn login_again_after_aborted_works() {
    let server = start_server_with(paused_server_config()).await;
    let (first, mut fe) = login_with(&server.url(), "alice", paused_client_config()).await;
    let (_second, _se) = login_with(&server.url(), "alice", paused_client_config()).await;
    assert_eq!(
        next_state(&mut fe).await,
        (
            ConnectionState::Aborted,
            ConnectionChangeReason::RemoteLogin
        )
    );
    // (Past the server's 2-logins-per-second limit of the uid.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    first
        .login("alice", None)
        .await
        .expect("login from ABORTED");
    assert_eq!(first.connection_state(), ConnectionState::Connected);
    server.shutdown().await;
}
