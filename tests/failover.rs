//! A client given several servers fails over between them, over real
//! sockets: it logs in to the first that answers, and when its link drops it
//! reconnects to another by itself and carries on there (channels rejoined,
//! messages flowing). Single-node servers here, so the session starts afresh
//! on the new one (`resumed: false`); resuming across the nodes of a cluster
//! is tested in `cluster.rs`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use rtm::client::{
    ChannelEvent, ClientConfig, ClientEvent, ClientEvents, ConnectionChangeReason, ConnectionState,
    ErrorKind, RtmClient, RtmError, RtmMessage, SendMessageOptions,
};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// A server that is "down" in the quickest way: it accepts TCP connections
/// and closes them at once. Counts them, so a test sees how often the
/// client tried it.
struct DeadNode {
    url: String,
    tries: Arc<AtomicUsize>,
    task: tokio::task::AbortHandle,
}

impl DeadNode {
    async fn start() -> DeadNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = tries.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        })
        .abort_handle();
        DeadNode { url, tries, task }
    }

    fn tries(&self) -> usize {
        self.tries.load(Ordering::SeqCst)
    }
}

impl Drop for DeadNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An address nothing listens on (connections are refused).
fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    drop(l);
    format!("ws://{addr}")
}

/// The next connection state change.
async fn next_state(events: &mut ClientEvents) -> (ConnectionState, ConnectionChangeReason) {
    wait_for(events, |e| match e {
        ClientEvent::ConnectionStateChanged { state, reason } => Some((*state, *reason)),
        _ => None,
    })
    .await
}

async fn next_peer_message(events: &mut ClientEvents) -> (String, String) {
    wait_for(events, |e| match e {
        ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text: t },
            peer_id,
            ..
        } => Some((peer_id.to_string(), t.clone())),
        _ => None,
    })
    .await
}

async fn say(from: &RtmClient, to: &str, text: &str) {
    let sent = from
        .send_message_to_peer(RtmMessage::text(text), to, SendMessageOptions::default())
        .await
        .expect("send");
    assert!(sent.has_peer_received, "{to} is online and gets it");
}

fn client(urls: &[&str], config: ClientConfig) -> (RtmClient, ClientEvents) {
    RtmClient::with_servers(urls, config).expect("good URLs")
}

/// The main case: logged in on the first server, which goes away; the
/// client moves to the second by itself and talks there, its channel
/// rejoined.
#[tokio::test(start_paused = true)]
async fn the_client_moves_to_the_second_server_when_the_first_stops() {
    let a = start_server_with(paused_server_config()).await;
    let b = start_server_with(paused_server_config()).await;
    let (a_url, b_url) = (a.url(), b.url());
    let (alice, mut ae) = client(&[&a_url, &b_url], paused_client_config());
    assert_eq!(alice.server_urls(), [a_url.clone(), b_url.clone()]);
    assert_eq!(alice.server_url(), format!("{a_url},{b_url}"));
    assert_eq!(alice.current_server_url(), None, "before login");
    let info = alice.login("alice", None).await.expect("login");
    assert!(!info.resumed);
    wait_state(&mut ae, ConnectionState::Connected).await;
    assert_eq!(alice.current_server_url().as_deref(), Some(a_url.as_str()));
    let room = alice.create_channel("room").unwrap();
    room.join().await.unwrap();

    // Bob lives on the second server only.
    let (bob, mut be) = login_with(&b_url, "bob", paused_client_config()).await;
    let bobs_room = bob.create_channel("room").unwrap();
    bobs_room.join().await.unwrap();

    a.shutdown().await;
    assert_eq!(
        next_state(&mut ae).await,
        (
            ConnectionState::Reconnecting,
            ConnectionChangeReason::Interrupted
        )
    );
    assert_eq!(
        next_state(&mut ae).await,
        (
            ConnectionState::Connected,
            ConnectionChangeReason::LoginSuccess
        )
    );
    assert_eq!(alice.current_server_url().as_deref(), Some(b_url.as_str()));
    let rejoined = wait_for(&mut ae, |e| match e {
        ClientEvent::Restored { rejoined, .. } => Some(rejoined.clone()),
        _ => None,
    })
    .await;
    assert_eq!(rejoined, ["room".parse().unwrap()]);

    // Both ways, peer to peer and in the channel.
    say(&alice, "bob", "hello from the other side").await;
    assert_eq!(
        next_peer_message(&mut be).await,
        ("alice".into(), "hello from the other side".into())
    );
    say(&bob, "alice", "welcome").await;
    assert_eq!(
        next_peer_message(&mut ae).await,
        ("bob".into(), "welcome".into())
    );
    room.send_message(RtmMessage::text("in the room"))
        .await
        .expect("channel message on the new server");
    let heard = wait_for(&mut be, |e| match e {
        ClientEvent::Channel {
            event:
                ChannelEvent::ChannelMessage {
                    message: RtmMessage::Text { text: t },
                    member_id,
                    ..
                },
            ..
        } => Some((member_id.to_string(), t.clone())),
        _ => None,
    })
    .await;
    assert_eq!(heard, ("alice".into(), "in the room".into()));
    b.shutdown().await;
}

/// A link cut by the network (no goodbye from the server), with the first
/// server unreachable afterwards: the client goes to the second.
#[tokio::test(start_paused = true)]
async fn a_cut_link_fails_over_too() {
    let a = start_server_with(paused_server_config()).await;
    let b = start_server_with(paused_server_config()).await;
    let proxy = Proxy::start(a.addr).await;
    let (alice, mut ae) = client(&[&proxy.url(), &b.url()], paused_client_config());
    alice.login("alice", None).await.expect("login");
    assert_eq!(alice.current_server_url(), Some(proxy.url()));
    proxy.block(true);
    proxy.cut();
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    wait_state(&mut ae, ConnectionState::Connected).await;
    assert_eq!(alice.current_server_url(), Some(b.url()));
    let (bob, mut be) = login_with(&b.url(), "bob", paused_client_config()).await;
    say(&alice, "bob", "still here").await;
    assert_eq!(next_peer_message(&mut be).await.1, "still here");
    drop(bob);
    a.shutdown().await;
    b.shutdown().await;
}

/// After a drop the client starts with the server *after* the one it lost,
/// and a dead server in the way costs one quick failed connect: no backoff
/// wait for it (the backoff is waited once per round of the list).
#[tokio::test(start_paused = true)]
async fn a_dead_server_costs_one_failed_connect_not_a_backoff() {
    const BACKOFF: Duration = Duration::from_secs(60);
    let a = start_server_with(paused_server_config()).await;
    let dead = DeadNode::start().await;
    let c = start_server_with(paused_server_config()).await;
    let config = ClientConfig {
        reconnect_initial: BACKOFF,
        reconnect_max: BACKOFF * 4,
        ..paused_client_config()
    };
    let (alice, mut ae) = client(&[&a.url(), &dead.url, &c.url()], config);
    alice.login("alice", None).await.expect("login");
    assert_eq!(alice.current_server_url(), Some(a.url()));
    assert_eq!(dead.tries(), 0, "the first server answered");

    a.shutdown().await;
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    let lost = Instant::now();
    wait_for_within(&mut ae, BACKOFF * 4, |e| {
        matches!(
            e,
            ClientEvent::ConnectionStateChanged {
                state: ConnectionState::Connected,
                ..
            }
        )
        .then_some(())
    })
    .await;
    let took = lost.elapsed();
    assert_eq!(alice.current_server_url(), Some(c.url()));
    assert_eq!(
        dead.tries(),
        1,
        "the dead server was tried once, in passing"
    );
    // One wait after the drop; a second (doubled) one would be 2 min more.
    assert!(
        took >= BACKOFF && took < BACKOFF * 2,
        "reconnected after {took:?}"
    );
    c.shutdown().await;
}

/// The first server is down at start: the login goes to the second at
/// once (a refused connection, then the next URL; no backoff at login).
#[tokio::test]
async fn login_skips_a_server_that_is_down() {
    let b = start_server().await;
    let dead = closed_url();
    let config = ClientConfig {
        // Were a dead server to cost a backoff wait, the login would hang.
        reconnect_initial: Duration::from_secs(3600),
        reconnect_max: Duration::from_secs(3600),
        ..fast_client_config()
    };
    let (alice, _ae) = client(&[&dead, &b.url()], config);
    let info = tokio::time::timeout(WAIT, alice.login("alice", None))
        .await
        .expect("logged in quickly")
        .expect("login via the second server");
    assert_eq!(info.uid.as_str(), "alice");
    assert_eq!(alice.current_server_url(), Some(b.url()));
    assert_eq!(alice.connection_state(), ConnectionState::Connected);
    b.shutdown().await;
}

/// A server that accepts the connection but never answers holds the login
/// for the login timeout, then the next one is tried.
#[tokio::test(start_paused = true)]
async fn login_moves_on_from_a_server_that_does_not_answer() {
    let b = start_server_with(paused_server_config()).await;
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("ws://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            kept.push(conn);
        }
    });
    let config = ClientConfig {
        login_timeout: Duration::from_secs(5),
        ..paused_client_config()
    };
    let (alice, _ae) = client(&[&silent_url, &b.url()], config);
    alice
        .login("alice", None)
        .await
        .expect("login via the second");
    assert_eq!(alice.current_server_url(), Some(b.url()));
    held.abort();
    b.shutdown().await;
}

/// Every server down at the first login: the login fails with an error
/// that names each server and why, and the state is DISCONNECTED as with
/// one server.
#[tokio::test]
async fn login_fails_when_no_server_answers_and_says_which_were_tried() {
    let (one, two) = (closed_url(), closed_url());
    let (alice, mut ae) = client(&[&one, &two], fast_client_config());
    let err = alice.login("alice", None).await.unwrap_err();
    match &err {
        RtmError::Connect { url, reason } => {
            assert_eq!(*url, format!("{one}, {two}"));
            assert!(reason.contains(&one) && reason.contains(&two), "{reason}");
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert_eq!(
        next_state(&mut ae).await,
        (ConnectionState::Connecting, ConnectionChangeReason::Login)
    );
    assert_eq!(
        next_state(&mut ae).await,
        (
            ConnectionState::Disconnected,
            ConnectionChangeReason::LoginFailure
        )
    );
    assert_eq!(alice.current_server_url(), None);
}

/// Every server goes away while logged in: the client keeps trying (state
/// RECONNECTING, as with one server) for as long as it takes, and gets
/// back in when one of them returns.
#[tokio::test(start_paused = true)]
async fn with_every_server_down_the_client_keeps_trying_until_one_returns() {
    let a = start_server_with(paused_server_config()).await;
    let b = start_server_with(paused_server_config()).await;
    let (a_url, b_addr) = (a.url(), b.addr);
    let (alice, mut ae) = client(&[&a_url, &b.url()], paused_client_config());
    alice.login("alice", None).await.expect("login");
    a.shutdown().await;
    b.shutdown().await;
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    // A good while of failed rounds: still reconnecting, nothing else said.
    assert!(
        none_within(&mut ae, Duration::from_secs(120), |e| matches!(
            e,
            ClientEvent::ConnectionStateChanged { .. }
        ))
        .await,
        "no state change while every server is down"
    );
    assert_eq!(alice.connection_state(), ConnectionState::Reconnecting);
    assert_eq!(
        alice.current_server_url(),
        Some(a_url),
        "the last server in use, while reconnecting"
    );

    // The second one comes back on its address.
    let b = start_server_on(
        &b_addr.to_string(),
        paused_server_config(),
        Arc::new(rtm::server::MemoryStore::new()),
    )
    .await;
    assert_eq!(
        next_state(&mut ae).await,
        (
            ConnectionState::Connected,
            ConnectionChangeReason::LoginSuccess
        )
    );
    assert_eq!(alice.current_server_url(), Some(b.url()));
    b.shutdown().await;
}

/// A refusal is final whichever server says it: the others are not tried.
#[tokio::test]
async fn a_refusal_is_final_and_the_other_servers_are_not_tried() {
    let mut config = test_config();
    config
        .set_app_certificate(Some("the-app-certificate-of-this-test".into()))
        .unwrap();
    let a = start_server_with(config).await;
    let dead = DeadNode::start().await;
    let (alice, _ae) = client(&[&a.url(), &dead.url], fast_client_config());
    let err = alice.login("alice", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidToken, "{err}");
    assert_eq!(dead.tries(), 0);
    a.shutdown().await;
}

/// A bad URL anywhere in the list is a clear, typed error naming it: from
/// `with_servers` at once, from `new` at login, before anything connects.
#[tokio::test]
async fn a_bad_url_in_the_list_is_named() {
    let err = RtmClient::with_servers(
        ["ws://127.0.0.1:7420", "http://b:7420"],
        fast_client_config(),
    )
    .err()
    .expect("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        matches!(&err, RtmError::InvalidServerUrl { url, .. } if url == "http://b:7420"),
        "{err:?}"
    );
    assert!(err.to_string().contains("http://b:7420"), "{err}");

    let err = RtmClient::with_servers(Vec::<String>::new(), fast_client_config())
        .err()
        .expect("an empty list is refused");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    let (client, mut events) =
        RtmClient::new("ws://127.0.0.1:7420,localhost:7421", fast_client_config());
    let err = client.login("alice", None).await.unwrap_err();
    assert!(
        matches!(&err, RtmError::InvalidServerUrl { url, .. } if url == "localhost:7421"),
        "{err:?}"
    );
    assert_eq!(client.connection_state(), ConnectionState::Disconnected);
    assert!(
        none_within(&mut events, Duration::from_millis(50), |_| true).await,
        "nothing connected"
    );
}

/// One comma-separated string works as well as a list, spaces allowed.
#[tokio::test]
async fn a_comma_separated_string_is_a_list() {
    let b = start_server().await;
    let dead = closed_url();
    let (alice, _ae) = RtmClient::new(format!("{dead}, {}", b.url()), fast_client_config());
    assert_eq!(alice.server_urls(), [dead, b.url()]);
    alice
        .login("alice", None)
        .await
        .expect("login via the second");
    assert_eq!(alice.current_server_url(), Some(b.url()));
    b.shutdown().await;
}

/// File transfers go to the server in use, not to the first of the list.
#[tokio::test]
async fn after_a_failover_files_go_to_the_new_server() {
    let server = |dir: &TempDir| {
        let mut config = test_config();
        config.hub.media.dir = Some(dir.path().join("media"));
        start_server_with(config)
    };
    let (dir_a, dir_b) = (TempDir::new("failover-a"), TempDir::new("failover-b"));
    let a = server(&dir_a).await;
    let b = server(&dir_b).await;
    let (alice, mut ae) = client(&[&a.url(), &b.url()], fast_client_config());
    alice.login("alice", None).await.expect("login");
    wait_state(&mut ae, ConnectionState::Connected).await;
    a.shutdown().await;
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    wait_state(&mut ae, ConnectionState::Connected).await;
    assert_eq!(alice.current_server_url(), Some(b.url()));
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let message = alice
        .create_media_message_by_uploading(
            rtm::client::MediaSource::Bytes(bytes.clone()),
            rtm::client::MediaMessageOptions {
                file_name: Some("notes.bin".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("upload to the second server");
    let got = alice
        .download_media(message.media_id().unwrap(), None)
        .await
        .expect("download from it");
    assert_eq!(got, bytes);
    b.shutdown().await;
}
