//! Cluster mode over real sockets and a real `redis-server`: two (or three)
//! nodes in this process share one Redis, and everything in the model works
//! across them. The failure tests (a node killed with SIGKILL, failover of
//! the messenger's SDK) run real `rtm serve` processes: tests/cluster_faults.rs.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::redis::RedisServer;
use common::*;
use rtm::client::{
    ChannelEvent, ClientEvent, ConnectionChangeReason, ConnectionState, LocalInvitationEvent,
    PeerOnlineState, RtmMessage, SendMessageOptions,
};
use rtm::server::cluster::ClusterConfig;
use rtm::server::{MemoryStore, ServerConfig, ServerHandle, Store};

fn text(s: &str) -> RtmMessage {
    RtmMessage::Text { text: s.into() }
}

/// A node's settings: fast liveness, so failures show within a second.
fn node_config(redis: &RedisServer) -> ServerConfig {
    let mut c = ClusterConfig::new(redis.url());
    c.heartbeat = Duration::from_millis(100);
    c.node_ttl = Duration::from_millis(500);
    ServerConfig {
        cluster: Some(c),
        ..ServerConfig::default()
    }
}

async fn node_with(
    redis: &RedisServer,
    config: ServerConfig,
    store: Arc<dyn Store>,
) -> ServerHandle {
    let _ = redis;
    start_server_on("127.0.0.1:0", config, store).await
}

async fn node(redis: &RedisServer) -> ServerHandle {
    node_with(redis, node_config(redis), Arc::new(MemoryStore::new())).await
}

#[tokio::test]
async fn peer_and_channel_messages_and_members_cross_nodes() {
    let Some(redis) = common::redis::start("cluster-messages") else {
        return;
    };
    let n1 = node(&redis).await;
    let n2 = node(&redis).await;
    let (alice, mut ae) = login(&n1.url(), "alice").await;
    let (bob, mut be) = login(&n2.url(), "bob").await;

    // Peer messages both ways, received live.
    let r = alice
        .send_message_to_peer(text("hi bob"), "bob", SendMessageOptions::default())
        .await
        .unwrap();
    assert!(r.has_peer_received && !r.cached, "{r:?}");
    assert_eq!(peer_text(&mut be).await, ("alice".into(), "hi bob".into()));
    bob.send_message_to_peer(text("hi alice"), "alice", SendMessageOptions::default())
        .await
        .unwrap();
    assert_eq!(peer_text(&mut ae).await, ("bob".into(), "hi alice".into()));

    // A channel spanning both nodes: counts, member events, messages.
    let ach = alice.create_channel("room").unwrap();
    let bch = bob.create_channel("room").unwrap();
    assert_eq!(ach.join().await.unwrap(), 1);
    assert_eq!(bch.join().await.unwrap(), 2);
    assert_eq!(
        next_member_event(&mut ae, "room").await,
        ChannelEvent::MemberJoined(uid("bob"))
    );
    let members: Vec<String> = ach
        .get_members()
        .await
        .unwrap()
        .iter()
        .map(|u| u.to_string())
        .collect();
    assert_eq!(members, ["alice", "bob"]);
    let counts: Vec<(String, u32)> = bob
        .get_channel_member_count(&["room", "empty"])
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.channel_id.to_string(), c.member_count))
        .collect();
    assert_eq!(counts, [("room".to_string(), 2), ("empty".to_string(), 0)]);

    ach.send_message(text("to the room")).await.unwrap();
    assert_eq!(
        next_channel_text(&mut be, "room").await,
        ("alice".into(), "to the room".into())
    );
    bch.send_message(text("back")).await.unwrap();
    assert_eq!(
        next_channel_text(&mut ae, "room").await,
        ("bob".into(), "back".into())
    );

    // Leaving on one node is heard on the other.
    bch.leave().await.unwrap();
    assert_eq!(
        next_member_event(&mut ae, "room").await,
        ChannelEvent::MemberLeft(uid("bob"))
    );
    assert_eq!(ach.get_members().await.unwrap(), vec![uid("alice")]);
    n1.shutdown().await;
    n2.shutdown().await;
}

#[tokio::test]
async fn presence_and_user_attributes_span_nodes() {
    let Some(redis) = common::redis::start("cluster-presence") else {
        return;
    };
    let n1 = node(&redis).await;
    let n2 = node(&redis).await;
    let (alice, mut ae) = login(&n1.url(), "alice").await;
    let (bob, _be) = login(&n2.url(), "bob").await;

    let online = alice
        .query_peers_online_status(&["bob", "carol"])
        .await
        .unwrap();
    assert_eq!(
        online,
        BTreeMap::from([(uid("bob"), true), (uid("carol"), false)])
    );
    alice
        .subscribe_peers_online_status(&["bob", "carol"])
        .await
        .unwrap();
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([
            (uid("bob"), PeerOnlineState::Online),
            (uid("carol"), PeerOnlineState::Offline)
        ])
    );
    let (carol, _ce) = login(&n2.url(), "carol").await;
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([(uid("carol"), PeerOnlineState::Online)])
    );
    carol.logout().await.unwrap();
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([(uid("carol"), PeerOnlineState::Offline)])
    );
    // Once: a watcher on another node hears each change one time.
    assert!(
        none_within(&mut ae, Duration::from_millis(300), |e| matches!(
            e,
            ClientEvent::PeersOnlineStatusChanged(_)
        ))
        .await,
        "a second notification of the same change"
    );

    bob.add_or_update_local_user_attributes(BTreeMap::from([(
        "mood".to_string(),
        "busy".to_string(),
    )]))
    .await
    .unwrap();
    assert_eq!(
        alice.get_user_attributes("bob").await.unwrap(),
        BTreeMap::from([("mood".to_string(), "busy".to_string())])
    );
    assert_eq!(
        alice.get_user_attributes("carol").await.unwrap_err().kind(),
        rtm::protocol::ErrorKind::UserNotFound
    );
    n1.shutdown().await;
    n2.shutdown().await;
}

#[tokio::test]
async fn a_login_on_another_node_ends_the_first_session() {
    let Some(redis) = common::redis::start("cluster-remote-login") else {
        return;
    };
    let n1 = node(&redis).await;
    let n2 = node(&redis).await;
    let (watcher, mut we) = login(&n1.url(), "watcher").await;
    watcher
        .subscribe_peers_online_status(&["bob"])
        .await
        .unwrap();
    let (old, mut oe) = login(&n1.url(), "bob").await;
    let och = old.create_channel("room").unwrap();
    och.join().await.unwrap();
    let wch = watcher.create_channel("room").unwrap();
    wch.join().await.unwrap();

    let (_new, _ne) = login(&n2.url(), "bob").await;
    let reason = wait_for(&mut oe, |e| match e {
        ClientEvent::ConnectionStateChanged {
            state: ConnectionState::Aborted,
            reason,
        } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, ConnectionChangeReason::RemoteLogin);
    // The old session left its channel; the uid stayed online throughout.
    assert_eq!(
        next_member_event(&mut we, "room").await,
        ChannelEvent::MemberLeft(uid("bob"))
    );
    assert_eq!(wch.get_members().await.unwrap(), vec![uid("watcher")]);
    let states: Vec<_> = std::iter::from_fn(|| we.try_recv())
        .filter_map(|e| match e {
            ClientEvent::PeersOnlineStatusChanged(m) => Some(m),
            _ => None,
        })
        .collect();
    assert!(
        states
            .iter()
            .all(|m| m.get(&uid("bob")) != Some(&PeerOnlineState::Offline)),
        "bob never went offline: {states:?}"
    );
    assert_eq!(
        watcher.query_peers_online_status(&["bob"]).await.unwrap(),
        BTreeMap::from([(uid("bob"), true)])
    );
    n1.shutdown().await;
    n2.shutdown().await;
}

#[tokio::test]
async fn invitations_ring_across_nodes() {
    let Some(redis) = common::redis::start("cluster-invitations") else {
        return;
    };
    let n1 = node(&redis).await;
    let n2 = node(&redis).await;
    let (alice, mut ae) = login(&n1.url(), "alice").await;
    let (_bob, mut be) = login(&n2.url(), "bob").await;
    let call = alice.create_local_invitation("bob").unwrap();
    call.set_content("lunch?").unwrap();
    call.send().await.unwrap();
    let ringing = wait_for(&mut be, |e| match e {
        ClientEvent::RemoteInvitationReceived(inv) => Some(inv.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ringing.caller_id().as_str(), "alice");
    assert_eq!(ringing.content(), "lunch?");
    ringing.accept("on my way").await.unwrap();
    let answer = wait_for(&mut ae, |e| match e {
        ClientEvent::LocalInvitation { event, .. }
            if !matches!(event, LocalInvitationEvent::ReceivedByPeer) =>
        {
            Some(event.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(
        answer,
        LocalInvitationEvent::Accepted {
            response: "on my way".into()
        }
    );
    // Nobody logged in anywhere: PEER_OFFLINE at once, as on one node.
    let nobody = alice.create_local_invitation("nobody").unwrap();
    nobody.send().await.unwrap();
    let failed = wait_for(&mut ae, |e| match e {
        ClientEvent::LocalInvitation { event, .. }
            if matches!(event, LocalInvitationEvent::Failure { .. }) =>
        {
            Some(event.clone())
        }
        _ => None,
    })
    .await;
    assert!(format!("{failed:?}").contains("PeerOffline"), "{failed:?}");
    n1.shutdown().await;
    n2.shutdown().await;
}

#[tokio::test]
async fn a_session_whose_link_dropped_resumes_on_another_node() {
    let Some(redis) = common::redis::start("cluster-resume") else {
        return;
    };
    let n1 = node(&redis).await;
    let n2 = node(&redis).await;
    let proxy = Proxy::start(n2.addr).await;
    let (alice, mut ae) = login(&n1.url(), "alice").await;
    let ach = alice.create_channel("room").unwrap();
    ach.join().await.unwrap();
    alice.subscribe_peers_online_status(&["bob"]).await.unwrap();
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([(uid("bob"), PeerOnlineState::Offline)])
    );
    let (bob, _be) = login(&proxy.url(), "bob").await;
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([(uid("bob"), PeerOnlineState::Online)])
    );
    let bch = bob.create_channel("room").unwrap();
    bch.join().await.unwrap();
    assert_eq!(
        next_member_event(&mut ae, "room").await,
        ChannelEvent::MemberJoined(uid("bob"))
    );
    // Node 2 loses bob's link: UNREACHABLE to alice, still a member.
    proxy.block(true);
    proxy.cut();
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([(uid("bob"), PeerOnlineState::Unreachable)])
    );
    drop(bob);
    // Sent while bob's link is down: kept by node 2 for his resume.
    let r = alice
        .send_message_to_peer(text("while away"), "bob", SendMessageOptions::default())
        .await
        .unwrap();
    assert!(!r.has_peer_received && !r.cached, "{r:?}");
    // Bob comes back through node 1 within the grace: the same session.
    let (bob2, mut be2) = login(&n1.url(), "bob").await;
    // What node 2 kept for him follows him to node 1.
    assert_eq!(
        peer_text(&mut be2).await,
        ("alice".into(), "while away".into())
    );
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([(uid("bob"), PeerOnlineState::Online)])
    );
    assert_eq!(
        ach.get_members().await.unwrap(),
        vec![uid("alice"), uid("bob")]
    );
    // Still in the channel, now through node 1.
    ach.send_message(text("welcome back")).await.unwrap();
    assert_eq!(
        next_channel_text(&mut be2, "room").await,
        ("alice".into(), "welcome back".into())
    );
    drop(bob2);
    n1.shutdown().await;
    n2.shutdown().await;
}

#[tokio::test]
async fn after_redis_restarts_empty_the_nodes_register_again() {
    let Some(mut redis) = common::redis::start("cluster-redis-restart") else {
        return;
    };
    let n1 = node(&redis).await;
    let n2 = node(&redis).await;
    let (alice, _ae) = login(&n1.url(), "alice").await;
    let (_bob, mut be) = login(&n2.url(), "bob").await;
    let ach = alice.create_channel("room").unwrap();
    ach.join().await.unwrap();

    // Redis is gone (no persistence: it comes back empty).
    redis.kill();
    let err = alice
        .query_peers_online_status(&["bob"])
        .await
        .expect_err("no Redis, no answer about other nodes");
    assert_eq!(err.kind(), rtm::protocol::ErrorKind::ServerBusy, "{err}");
    // Local work goes on: alice's own channel still answers.
    ach.send_message(text("alone")).await.unwrap();

    redis.restart();
    // Within a few heartbeats both nodes have written their users again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match alice.query_peers_online_status(&["bob"]).await {
            Ok(m) if m.get(&uid("bob")) == Some(&true) => break,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "bob never came back: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    alice
        .send_message_to_peer(text("still here"), "bob", SendMessageOptions::default())
        .await
        .unwrap();
    assert_eq!(
        peer_text(&mut be).await,
        ("alice".into(), "still here".into())
    );
    let (_carol, _) = login(&n2.url(), "carol").await;
    let members = ach.get_members().await.unwrap();
    assert_eq!(members, vec![uid("alice")]);
    n1.shutdown().await;
    n2.shutdown().await;
}

#[tokio::test]
async fn a_session_of_a_node_dead_longer_than_the_grace_is_not_resumed() {
    let Some(redis) = common::redis::start("cluster-stale") else {
        return;
    };
    // What a node killed long ago, with nobody left to reap it, leaves
    // behind: bob's session, in channel "room", watching carol.
    for args in [
        &[
            "HSET",
            "rtm:u:bob",
            "node",
            "0badc0ffee00",
            "sid",
            "1",
            "link",
            "up",
        ][..],
        &["SADD", "rtm:nu:0badc0ffee00", "bob"],
        &["SADD", "rtm:nodes", "0badc0ffee00"],
        &["HSET", "rtm:heartbeats", "0badc0ffee00", "1000"],
        &["HSET", "rtm:members:room", "bob", "0badc0ffee00"],
        &["SADD", "rtm:uch:bob", "room"],
        &["SADD", "rtm:us:bob", "carol"],
    ] {
        redis.cli(args);
    }
    let n1 = node(&redis).await;
    let (bob, _be) = login(&n1.url(), "bob").await;
    // A fresh session: not in "room" any more, and free to join it.
    let bch = bob.create_channel("room").unwrap();
    assert_eq!(bch.join().await.unwrap(), 1);
    assert_eq!(bch.get_members().await.unwrap(), vec![uid("bob")]);
    assert_eq!(redis.cli(&["SCARD", "rtm:us:bob"]), "0");
    n1.shutdown().await;
}
