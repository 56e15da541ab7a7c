//! The SDK as an application sees it: only `rtm::client` and `rtm::token`,
//! the names an SDK-only program (`default-features = false, features =
//! ["client"]`) can reach. One realistic session — an app server mints
//! tokens, two users log in, talk peer to peer, share a channel with members
//! and attributes, watch each other's presence, leave a message for someone
//! offline, and log out — with what a user would check at each step.
//!
//! The server is the only thing from outside the SDK: `secured_server`
//! starts one through `tests/common` with an app certificate, as an operator
//! would with `rtm serve --app-certificate`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use rtm::client::{
    ChannelAttributeOptions, ChannelEvent, ChannelEvents, ClientConfig, ClientEvent, ClientEvents,
    ConnectionChangeReason, ConnectionState, ErrorKind, PeerOnlineState, RtmClient, RtmMessage,
    SendMessageOptions, SubscriptionOption, Uid, now_ms,
};

/// The app certificate: shared by the server and the app server that mints
/// tokens, never by the clients.
const CERTIFICATE: &str = "the-app-certificate-of-this-test";

/// How long a step may take before the test calls it lost.
const STEP: Duration = Duration::from_secs(10);

async fn secured_server() -> rtm::server::ServerHandle {
    let mut config = common::test_config();
    config
        .set_app_certificate(Some(CERTIFICATE.into()))
        .expect("a long enough certificate");
    common::start_server_with(config).await
}

/// What the app server does: a token for `uid`, valid for an hour.
fn token_for(uid: &str) -> String {
    let uid = Uid::new(uid).expect("a valid uid");
    rtm::token::mint(CERTIFICATE.as_bytes(), &uid, now_ms() / 1000 + 3600)
}

/// Logs in with a fresh token and checks what the server said.
async fn log_in(url: &str, uid: &str) -> (RtmClient, ClientEvents) {
    let (client, events) = RtmClient::new(url, ClientConfig::default());
    let info = client
        .login(uid, Some(token_for(uid)))
        .await
        .expect("log in");
    assert_eq!(info.uid.as_str(), uid);
    assert!(!info.dev_mode, "the server checks tokens");
    assert!(
        info.token_expires_in_s.is_some_and(|s| s > 3500),
        "{info:?}"
    );
    assert_eq!(client.connection_state(), ConnectionState::Connected);
    (client, events)
}

/// The next client event that `pick` accepts, skipping the others.
async fn next<T>(events: &mut ClientEvents, mut pick: impl FnMut(ClientEvent) -> Option<T>) -> T {
    tokio::time::timeout(STEP, async {
        loop {
            let event = events.recv().await.expect("the event stream is open");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("the event came in time")
}

/// The next event of a channel that `pick` accepts, from the channel's own
/// stream (taken with `RtmChannel::events`, so these events no longer come
/// on the client stream).
async fn next_in<T>(
    channel: &mut ChannelEvents,
    mut pick: impl FnMut(ChannelEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(STEP, async {
        loop {
            let event = channel.recv().await.expect("the channel stream is open");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("the channel event came in time")
}

fn presence(event: ClientEvent) -> Option<BTreeMap<Uid, PeerOnlineState>> {
    match event {
        ClientEvent::PeersOnlineStatusChanged(states) => Some(states),
        _ => None,
    }
}

fn uid(s: &str) -> Uid {
    Uid::new(s).expect("a valid uid")
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_session_of_two_users_through_the_public_api() {
    let server = secured_server().await;
    let url = server.url();

    // Without a token, or with someone else's, the server says why.
    let (stranger, _) = RtmClient::new(url.as_str(), ClientConfig::default());
    let refused = stranger.login("mallory", None).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidToken, "{refused}");
    let refused = stranger
        .login("mallory", Some(token_for("bob")))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidArgument, "{refused}");
    assert!(refused.to_string().contains("bob"), "{refused}");

    let (alice, mut alice_events) = log_in(&url, "alice").await;
    let (bob, mut bob_events) = log_in(&url, "bob").await;

    // Presence: bob watches alice and carol; the current states come first.
    bob.subscribe_peers_online_status(&["alice", "carol"])
        .await
        .unwrap();
    assert_eq!(
        next(&mut bob_events, presence).await,
        BTreeMap::from([
            (uid("alice"), PeerOnlineState::Online),
            (uid("carol"), PeerOnlineState::Offline),
        ])
    );
    assert_eq!(
        bob.query_peers_by_subscription_option(SubscriptionOption::OnlineStatus)
            .await
            .unwrap(),
        [uid("alice"), uid("carol")]
    );
    assert_eq!(
        alice
            .query_peers_online_status(&["bob", "carol"])
            .await
            .unwrap(),
        BTreeMap::from([(uid("bob"), true), (uid("carol"), false)])
    );

    // Peer messages, both ways.
    let sent = alice
        .send_message_to_peer(
            RtmMessage::text("lunch?"),
            "bob",
            SendMessageOptions::default(),
        )
        .await
        .unwrap();
    assert!(sent.has_peer_received && !sent.cached, "{sent:?}");
    let (text, from, props) = next(&mut bob_events, |e| match e {
        ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text },
            peer_id,
            props,
        } => Some((text, peer_id, props)),
        _ => None,
    })
    .await;
    assert_eq!((text.as_str(), from.as_str()), ("lunch?", "alice"));
    assert!(!props.is_offline_message);
    assert_eq!(props.server_received_ts, sent.server_received_ts);
    bob.send_message_to_peer(
        RtmMessage::text("noon"),
        "alice",
        SendMessageOptions::default(),
    )
    .await
    .unwrap();
    let answer = next(&mut alice_events, |e| match e {
        ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text },
            ..
        } => Some(text),
        _ => None,
    })
    .await;
    assert_eq!(answer, "noon");

    // For someone offline, the server keeps the message when asked to.
    let stored = alice
        .send_message_to_peer(
            RtmMessage::text("see you at noon"),
            "carol",
            SendMessageOptions {
                enable_offline_messaging: true,
            },
        )
        .await
        .unwrap();
    assert!(stored.cached && !stored.has_peer_received, "{stored:?}");

    // A channel with two members.
    let alice_team = alice.create_channel("team").unwrap();
    let mut alice_team_events = alice_team.events().expect("nobody took the stream yet");
    assert!(alice_team.events().is_none(), "one reader per channel");
    assert_eq!(alice_team.join().await.unwrap(), 1);
    let bob_team = bob.create_channel("team").unwrap();
    let mut bob_team_events = bob_team.events().expect("nobody took the stream yet");
    assert_eq!(bob_team.join().await.unwrap(), 2);
    let joined = next_in(&mut alice_team_events, |e| match e {
        ChannelEvent::MemberJoined(who) => Some(who),
        _ => None,
    })
    .await;
    assert_eq!(joined, uid("bob"));
    let mut members = alice_team.get_members().await.unwrap();
    members.sort();
    assert_eq!(members, [uid("alice"), uid("bob")]);
    assert_eq!(
        bob.get_channel_member_count(&["team"]).await.unwrap()[0].member_count,
        2
    );
    assert_eq!(alice.joined_channels(), [alice_team.channel_id().clone()]);
    bob_team
        .send_message(RtmMessage::text("standup in 5"))
        .await
        .unwrap();
    let (text, from) = next_in(&mut alice_team_events, |e| match e {
        ChannelEvent::ChannelMessage {
            message: RtmMessage::Text { text },
            member_id,
            ..
        } => Some((text, member_id)),
        _ => None,
    })
    .await;
    assert_eq!((text.as_str(), from.as_str()), ("standup in 5", "bob"));

    // Channel attributes: the members are told, with who and when.
    let before = now_ms();
    alice
        .add_or_update_channel_attributes(
            "team",
            attrs(&[("topic", "release")]),
            ChannelAttributeOptions {
                enable_notification_to_channel_members: true,
            },
        )
        .await
        .unwrap();
    let update = next_in(&mut bob_team_events, |e| match e {
        ChannelEvent::AttributesUpdated(set) => Some(set),
        _ => None,
    })
    .await;
    assert_eq!(update.len(), 1);
    assert_eq!(
        (update[0].key.as_str(), update[0].value.as_str()),
        ("topic", "release")
    );
    assert_eq!(update[0].last_update_user_id, uid("alice"));
    assert!(update[0].last_update_ts >= before.saturating_sub(1000));
    assert_eq!(bob.get_channel_attributes("team").await.unwrap(), update);

    // User attributes: set by one, read by another.
    alice
        .set_local_user_attributes(attrs(&[("status", "in a meeting")]))
        .await
        .unwrap();
    assert_eq!(
        bob.get_user_attributes("alice").await.unwrap(),
        attrs(&[("status", "in a meeting")])
    );

    // Bob leaves the channel; alice hears of it.
    bob_team.leave().await.unwrap();
    let left = next_in(&mut alice_team_events, |e| match e {
        ChannelEvent::MemberLeft(who) => Some(who),
        _ => None,
    })
    .await;
    assert_eq!(left, uid("bob"));

    // Carol comes online: bob sees it, and she gets the stored message.
    let (carol, mut carol_events) = RtmClient::new(url.as_str(), ClientConfig::default());
    carol
        .login("carol", Some(token_for("carol")))
        .await
        .unwrap();
    assert_eq!(
        next(&mut bob_events, presence).await,
        BTreeMap::from([(uid("carol"), PeerOnlineState::Online)])
    );
    let (text, props) = next(&mut carol_events, |e| match e {
        ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text },
            props,
            ..
        } => Some((text, props)),
        _ => None,
    })
    .await;
    assert_eq!(text, "see you at noon");
    assert!(props.is_offline_message);

    // Alice logs out: her client says so, bob sees her go at once, and her
    // client refuses requests until she logs in again.
    alice.logout().await.unwrap();
    next(&mut alice_events, |e| match e {
        ClientEvent::ConnectionStateChanged {
            state: ConnectionState::Disconnected,
            reason: ConnectionChangeReason::Logout,
        } => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(
        next(&mut bob_events, presence).await,
        BTreeMap::from([(uid("alice"), PeerOnlineState::Offline)])
    );
    let refused = alice
        .send_message_to_peer(RtmMessage::text("hi"), "bob", SendMessageOptions::default())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NotLoggedIn, "{refused}");
    assert!(alice.joined_channels().is_empty());

    bob.logout().await.unwrap();
    carol.logout().await.unwrap();
    assert_eq!(carol.connection_state(), ConnectionState::Disconnected);
    server.shutdown().await;
}

/// Several servers (a cluster): the list is checked up front, the client
/// says which server it uses, and a login goes to the first that answers.
#[tokio::test]
async fn a_client_of_several_servers() {
    use rtm::client::RtmError;

    let server = secured_server().await;
    // Nothing listens here: a server that is down.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}", l.local_addr().unwrap())
    };

    // A bad URL is named, before anything connects.
    let bad = RtmClient::with_servers([down.as_str(), "tcp://b:7420"], ClientConfig::default())
        .err()
        .expect("a bad URL is refused");
    assert_eq!(bad.kind(), ErrorKind::InvalidArgument);
    assert!(
        matches!(&bad, RtmError::InvalidServerUrl { url, .. } if url == "tcp://b:7420"),
        "{bad}"
    );

    let (alice, _events) =
        RtmClient::with_servers([down.clone(), server.url()], ClientConfig::default())
            .expect("good URLs");
    assert_eq!(alice.server_urls(), [down.clone(), server.url()]);
    assert_eq!(alice.server_url(), format!("{down},{}", server.url()));
    assert_eq!(alice.current_server_url(), None);
    let info = alice
        .login("alice", Some(token_for("alice")))
        .await
        .expect("log in via the second server");
    assert!(!info.resumed, "a fresh session");
    assert_eq!(alice.current_server_url(), Some(server.url()));

    // The same with the list in one string, as a config file may give it.
    let (bob, _events) =
        RtmClient::new(format!("{down}, {}", server.url()), ClientConfig::default());
    bob.login("bob", Some(token_for("bob"))).await.unwrap();
    assert_eq!(bob.current_server_url(), Some(server.url()));

    alice.logout().await.unwrap();
    bob.logout().await.unwrap();
    server.shutdown().await;
}
