//! Cluster mode with real `rtm serve` processes on one real `redis-server`:
//! offline messages stored through one node reach a user on another, and a
//! node killed with SIGKILL shows its users UNREACHABLE, then OFFLINE after
//! the grace, while a client given several servers carries on elsewhere.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::process::{ServeProcess, free_port};
use common::*;
use rtm::client::{ChannelEvent, ClientEvent, PeerOnlineState, RtmMessage, SendMessageOptions};
use rtm::protocol::Uid;

/// A node's `server.toml`: quick liveness and a short grace.
const NODE_TOML: &str = "grace_s = 3\n[cluster]\nheartbeat_ms = 200\nnode_ttl_ms = 1000\n";

fn start_node(home: &TempDir, name: &str, redis_url: &str) -> ServeProcess {
    let dir = home.path().join(name);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config").join("server.toml"), NODE_TOML).unwrap();
    ServeProcess::start(
        &dir,
        &dir.join("data"),
        free_port(),
        &["--cluster", redis_url],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_messages_and_a_killed_node() {
    let Some(redis) = common::redis::start_durable("cluster-faults", "always") else {
        return;
    };
    let home = TempDir::new("cluster-faults");
    let n1 = start_node(&home, "n1", &redis.url());
    let mut n2 = start_node(&home, "n2", &redis.url());
    assert!(
        n1.banner.iter().any(|l| l.contains("cluster")),
        "{:?}",
        n1.banner
    );

    // An offline message stored through node 1 reaches dave on node 2.
    let (alice, mut ae) = login(&n1.url, "alice").await;
    let stored = alice
        .send_message_to_peer(
            RtmMessage::Text {
                text: "while you were out".into(),
            },
            "dave",
            SendMessageOptions {
                enable_offline_messaging: true,
            },
        )
        .await
        .unwrap();
    assert!(stored.cached, "{stored:?}");
    let (_dave, mut de) = login(&n2.url, "dave").await;
    let got = wait_for(&mut de, |e| match e {
        ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text },
            props,
            ..
        } => Some((text.clone(), props.is_offline_message)),
        _ => None,
    })
    .await;
    assert_eq!(got, ("while you were out".to_string(), true));

    // Bob knows both nodes; carol only node 2.
    let both = format!("{},{}", n2.url, n1.url);
    let (bob, _be) = login(&both, "bob").await;
    let (carol, _ce) = login(&n2.url, "carol").await;
    let ach = alice.create_channel("room").unwrap();
    ach.join().await.unwrap();
    // Kept: dropping an RtmChannel leaves it.
    let mut kept = Vec::new();
    for c in [&bob, &carol] {
        let ch = c.create_channel("room").unwrap();
        ch.join().await.unwrap();
        kept.push(ch);
    }
    alice
        .subscribe_peers_online_status(&["bob", "carol"])
        .await
        .unwrap();
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([
            (uid("bob"), PeerOnlineState::Online),
            (uid("carol"), PeerOnlineState::Online)
        ])
    );

    // kill -9 of node 2.
    n2.kill();
    let mut seen: BTreeMap<Uid, Vec<PeerOnlineState>> = BTreeMap::new();
    let mut carol_left = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(carol_left
        && seen
            .get(&uid("carol"))
            .is_some_and(|s| s.contains(&PeerOnlineState::Offline))
        && seen.get(&uid("bob")).and_then(|s| s.last()) == Some(&PeerOnlineState::Online))
    {
        let ev = tokio::time::timeout_at(deadline, ae.recv())
            .await
            .unwrap_or_else(|_| panic!("not all seen in time: {seen:?}, carol left: {carol_left}"))
            .expect("events");
        match ev {
            ClientEvent::PeersOnlineStatusChanged(m) => {
                for (u, s) in m {
                    seen.entry(u).or_default().push(s);
                }
            }
            ClientEvent::Channel {
                event: ChannelEvent::MemberLeft(u),
                ..
            } if u == uid("carol") => carol_left = true,
            _ => {}
        }
    }
    // Carol: UNREACHABLE first, OFFLINE after the grace.
    assert_eq!(
        seen[&uid("carol")],
        [PeerOnlineState::Unreachable, PeerOnlineState::Offline]
    );
    // Bob moved to node 1 by himself, resumed his session there (never
    // OFFLINE) and is still in the room.
    assert!(
        !seen[&uid("bob")].contains(&PeerOnlineState::Offline),
        "{seen:?}"
    );
    let members = ach.get_members().await.unwrap();
    assert_eq!(members, vec![uid("alice"), uid("bob")]);
    assert_eq!(bob.current_server_url(), Some(n1.url.clone()));
}
