//! Presence over real sockets: query, subscribe, ONLINE/UNREACHABLE/OFFLINE,
//! the grace, REMOTE_LOGIN, restore after a server restart.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rtm::client::{ClientEvent, ConnectionState, PeerOnlineState, SubscriptionOption};
use rtm::protocol::ErrorKind;

#[tokio::test]
async fn query_online_status_with_a_mix() {
    let server = start_server().await;
    let (a, _ae) = login(&server.url(), "alice").await;
    let (_b, _be) = login(&server.url(), "bob").await;
    let m = a
        .query_peers_online_status(&["bob", "carol", "alice"])
        .await
        .unwrap();
    assert_eq!(
        m,
        BTreeMap::from([
            (uid("alice"), true),
            (uid("bob"), true),
            (uid("carol"), false)
        ])
    );
    let ids: Vec<String> = (0..257).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(
        a.query_peers_online_status(&refs).await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        a.query_peers_online_status(&refs[..256])
            .await
            .unwrap()
            .len(),
        256
    );
    server.shutdown().await;
}

#[tokio::test]
async fn subscribe_reports_current_state_then_changes() {
    let server = start_server().await;
    let (a, mut ae) = login(&server.url(), "alice").await;
    let (_b, _be) = login(&server.url(), "bob").await;
    a.subscribe_peers_online_status(&["bob", "carol"])
        .await
        .unwrap();
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([
            (uid("bob"), PeerOnlineState::Online),
            (uid("carol"), PeerOnlineState::Offline)
        ])
    );
    let (c, _ce) = login(&server.url(), "carol").await;
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([(uid("carol"), PeerOnlineState::Online)])
    );
    c.logout().await.unwrap();
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([(uid("carol"), PeerOnlineState::Offline)])
    );
    let mut subs = a
        .query_peers_by_subscription_option(SubscriptionOption::OnlineStatus)
        .await
        .unwrap();
    subs.sort();
    assert_eq!(subs, vec![uid("bob"), uid("carol")]);
    a.unsubscribe_peers_online_status(&["carol"]).await.unwrap();
    let (_c, _ce) = login(&server.url(), "carol").await;
    assert!(
        none_within(&mut ae, Duration::from_millis(200), |e| matches!(
            e,
            ClientEvent::PeersOnlineStatusChanged(_)
        ))
        .await
    );
    assert_eq!(
        a.query_peers_by_subscription_option(SubscriptionOption::OnlineStatus)
            .await
            .unwrap(),
        vec![uid("bob")]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn overflow_beyond_512_subscriptions_changes_nothing() {
    let server = start_server().await;
    let (a, _ae) = login(&server.url(), "alice").await;
    let ids: Vec<String> = (0..513).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(
        a.subscribe_peers_online_status(&refs)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Overflow
    );
    assert!(
        a.query_peers_by_subscription_option(SubscriptionOption::OnlineStatus)
            .await
            .unwrap()
            .is_empty()
    );
    a.subscribe_peers_online_status(&refs[..500]).await.unwrap();
    // 500 + 13 new = 513: refused as a whole.
    assert_eq!(
        a.subscribe_peers_online_status(&refs[500..])
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Overflow
    );
    // 12 more is exactly 512.
    a.subscribe_peers_online_status(&refs[500..512])
        .await
        .unwrap();
    assert_eq!(
        a.query_peers_by_subscription_option(SubscriptionOption::OnlineStatus)
            .await
            .unwrap()
            .len(),
        512
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn killed_link_goes_unreachable_then_offline_after_the_grace() {
    let server = start_server_with(paused_server_config()).await;
    let (a, mut ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    let (bob, _) = raw_login(&server.url(), "bob").await;
    a.subscribe_peers_online_status(&["bob"]).await.unwrap();
    assert_eq!(
        status_change(&mut ae).await[&uid("bob")],
        PeerOnlineState::Online
    );
    drop(bob);
    assert_eq!(
        status_change(&mut ae).await[&uid("bob")],
        PeerOnlineState::Unreachable
    );
    let t0 = tokio::time::Instant::now();
    let m = wait_for_within(&mut ae, Duration::from_secs(60), |e| match e {
        ClientEvent::PeersOnlineStatusChanged(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(m[&uid("bob")], PeerOnlineState::Offline);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(29) && waited <= Duration::from_secs(31),
        "{waited:?}"
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn coming_back_within_the_grace_is_unreachable_then_online_never_offline() {
    let server = start_server_with(paused_server_config()).await;
    let (a, mut ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    let (bob, _) = raw_login(&server.url(), "bob").await;
    a.subscribe_peers_online_status(&["bob"]).await.unwrap();
    assert_eq!(
        status_change(&mut ae).await[&uid("bob")],
        PeerOnlineState::Online
    );
    drop(bob);
    assert_eq!(
        status_change(&mut ae).await[&uid("bob")],
        PeerOnlineState::Unreachable
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (_bob, _) = raw_login(&server.url(), "bob").await;
    assert_eq!(
        status_change(&mut ae).await[&uid("bob")],
        PeerOnlineState::Online
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        none_within(&mut ae, Duration::from_secs(1), |e| matches!(
            e,
            ClientEvent::PeersOnlineStatusChanged(_)
        ))
        .await
    );
    server.shutdown().await;
}

#[tokio::test]
async fn remote_login_keeps_the_user_online_for_watchers() {
    let server = start_server().await;
    let (a, mut ae) = login(&server.url(), "alice").await;
    let (_b1, mut b1e) = login(&server.url(), "bob").await;
    a.subscribe_peers_online_status(&["bob"]).await.unwrap();
    assert_eq!(
        status_change(&mut ae).await[&uid("bob")],
        PeerOnlineState::Online
    );
    let (_b2, _b2e) = login(&server.url(), "bob").await;
    wait_state(&mut b1e, ConnectionState::Aborted).await;
    assert!(
        none_within(&mut ae, Duration::from_millis(300), |e| matches!(
            e,
            ClientEvent::PeersOnlineStatusChanged(_)
        ))
        .await
    );
    assert!(a.query_peers_online_status(&["bob"]).await.unwrap()[&uid("bob")]);
    server.shutdown().await;
}

#[tokio::test]
async fn subscriptions_are_restored_after_a_server_restart() {
    let server = start_server().await;
    let addr = server.addr.to_string();
    let (a, mut ae) = login(&server.url(), "alice").await;
    a.subscribe_peers_online_status(&["bob", "carol"])
        .await
        .unwrap();
    status_change(&mut ae).await;
    server.shutdown().await;
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    let server = start_server_on(
        &addr,
        test_config(),
        std::sync::Arc::new(rtm::server::MemoryStore::new()),
    )
    .await;
    wait_state(&mut ae, ConnectionState::Connected).await;
    // The current states are reported again, then changes flow.
    let m = status_change(&mut ae).await;
    assert_eq!(
        m,
        BTreeMap::from([
            (uid("bob"), PeerOnlineState::Offline),
            (uid("carol"), PeerOnlineState::Offline)
        ])
    );
    let (_b, _be) = login(&server.url(), "bob").await;
    assert_eq!(
        status_change(&mut ae).await,
        BTreeMap::from([(uid("bob"), PeerOnlineState::Online)])
    );
    server.shutdown().await;
}
