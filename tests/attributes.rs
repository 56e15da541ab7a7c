//! User and channel attributes over real sockets: every operation, every
//! limit at its boundary, all-or-nothing under concurrent writers,
//! notifications, provenance, USER_NOT_FOUND, restore, clear-after-empty.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rtm::client::{ChannelAttributeOptions, ChannelEvent, ClientEvent, ConnectionState};
use rtm::protocol::ErrorKind;

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn n_attrs(n: usize, value_len: usize) -> BTreeMap<String, String> {
    (0..n)
        .map(|i| (format!("k{i:02}"), "v".repeat(value_len)))
        .collect()
}

const NOTIFY: ChannelAttributeOptions = ChannelAttributeOptions {
    enable_notification_to_channel_members: true,
};
const QUIET: ChannelAttributeOptions = ChannelAttributeOptions {
    enable_notification_to_channel_members: false,
};

/// A client whose limits are lifted, so a test can make many calls.
async fn busy_server() -> rtm::server::ServerHandle {
    let mut c = test_config();
    c.limit_scale = 1000;
    start_server_with(c).await
}

#[tokio::test]
async fn user_attribute_operations() {
    let server = busy_server().await;
    let (a, _ae) = login(&server.url(), "alice").await;
    let (b, _be) = login(&server.url(), "bob").await;
    a.set_local_user_attributes(attrs(&[("mood", "happy"), ("city", "Oslo")]))
        .await
        .unwrap();
    assert_eq!(
        b.get_user_attributes("alice").await.unwrap(),
        attrs(&[("city", "Oslo"), ("mood", "happy")])
    );
    a.add_or_update_local_user_attributes(attrs(&[("mood", "busy"), ("lang", "nb")]))
        .await
        .unwrap();
    assert_eq!(
        b.get_user_attributes("alice").await.unwrap(),
        attrs(&[("city", "Oslo"), ("lang", "nb"), ("mood", "busy")])
    );
    assert_eq!(
        b.get_user_attributes_by_keys("alice", &["mood", "nope"])
            .await
            .unwrap(),
        attrs(&[("mood", "busy")])
    );
    a.delete_local_user_attributes_by_keys(&["city"])
        .await
        .unwrap();
    assert_eq!(
        b.get_user_attributes("alice").await.unwrap(),
        attrs(&[("lang", "nb"), ("mood", "busy")])
    );
    a.set_local_user_attributes(attrs(&[("only", "this")]))
        .await
        .unwrap();
    assert_eq!(
        b.get_user_attributes("alice").await.unwrap(),
        attrs(&[("only", "this")])
    );
    a.clear_local_user_attributes().await.unwrap();
    assert!(b.get_user_attributes("alice").await.unwrap().is_empty());
    // Offline users: USER_NOT_FOUND.
    assert_eq!(
        b.get_user_attributes("carol").await.unwrap_err().kind(),
        ErrorKind::UserNotFound
    );
    // Cleared at logout.
    a.set_local_user_attributes(attrs(&[("x", "1")]))
        .await
        .unwrap();
    a.logout().await.unwrap();
    assert_eq!(
        b.get_user_attributes("alice").await.unwrap_err().kind(),
        ErrorKind::UserNotFound
    );
    a.login("alice", None).await.unwrap();
    assert!(b.get_user_attributes("alice").await.unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn user_attribute_limits_at_their_boundaries() {
    let server = busy_server().await;
    let (a, _ae) = login(&server.url(), "alice").await;
    // 32 keys OK, 33 fail.
    a.set_local_user_attributes(n_attrs(32, 1)).await.unwrap();
    assert_eq!(
        a.set_local_user_attributes(n_attrs(33, 1))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SizeOverflow
    );
    // Adding a 33rd key to 32 fails on the server and changes nothing.
    let err = a
        .add_or_update_local_user_attributes(attrs(&[("extra", "1")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SizeOverflow);
    assert!(
        matches!(err, rtm::client::RtmError::Server(_)),
        "the server enforces it: {err:?}"
    );
    let (b, _be) = login(&server.url(), "bob").await;
    assert_eq!(b.get_user_attributes("alice").await.unwrap().len(), 32);
    // Value 8192 bytes OK, 8193 fails.
    a.set_local_user_attributes(attrs(&[("big", &"v".repeat(8192))]))
        .await
        .unwrap();
    assert_eq!(
        a.set_local_user_attributes(attrs(&[("big", &"v".repeat(8193))]))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SizeOverflow
    );
    // Key 32 bytes OK, 33 fails; empty value refused.
    a.set_local_user_attributes(attrs(&[(&"k".repeat(32), "v")]))
        .await
        .unwrap();
    assert_eq!(
        a.set_local_user_attributes(attrs(&[(&"k".repeat(33), "v")]))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SizeOverflow
    );
    assert!(
        a.set_local_user_attributes(attrs(&[("k", "")]))
            .await
            .is_err()
    );
    // Total 16 KB: two 8 KB values with 2-byte keys = 16388 > 16384 fail;
    // 8190 + 8190 + 2 + 2 = 16384 fits exactly.
    a.set_local_user_attributes(attrs(&[
        ("k1", &"v".repeat(8190)),
        ("k2", &"v".repeat(8190)),
    ]))
    .await
    .unwrap();
    assert_eq!(
        a.set_local_user_attributes(attrs(&[
            ("k1", &"v".repeat(8192)),
            ("k2", &"v".repeat(8192))
        ]))
        .await
        .unwrap_err()
        .kind(),
        ErrorKind::SizeOverflow
    );
    // add_or_update that would push the total over fails on the server.
    assert_eq!(
        a.add_or_update_local_user_attributes(attrs(&[("k3", "v")]))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SizeOverflow
    );
    assert_eq!(b.get_user_attributes("alice").await.unwrap().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn channel_attribute_operations_provenance_and_notifications() {
    let server = busy_server().await;
    let (a, mut ae) = login(&server.url(), "alice").await;
    let (b, mut be) = login(&server.url(), "bob").await;
    let (c, _ce) = login(&server.url(), "carol").await;
    let _room_b = b.create_channel("room").unwrap();
    _room_b.join().await.unwrap();
    // alice writes without joining; bob (a member) is notified only when asked.
    let before = rtm::protocol::now_ms();
    a.set_channel_attributes("room", attrs(&[("topic", "launch")]), QUIET)
        .await
        .unwrap();
    assert!(
        none_within(&mut be, Duration::from_millis(200), |e| matches!(
            e,
            ClientEvent::Channel {
                event: ChannelEvent::AttributesUpdated(_),
                ..
            }
        ))
        .await
    );
    a.add_or_update_channel_attributes("room", attrs(&[("owner", "alice")]), NOTIFY)
        .await
        .unwrap();
    let got = wait_for(&mut be, |e| match e {
        ClientEvent::Channel {
            event: ChannelEvent::AttributesUpdated(v),
            ..
        } => Some(v.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        got.iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect::<Vec<_>>(),
        vec![("owner", "alice"), ("topic", "launch")]
    );
    assert!(
        got.iter()
            .all(|x| x.last_update_user_id.as_str() == "alice")
    );
    assert!(
        got.iter()
            .all(|x| x.last_update_ts >= before
                && x.last_update_ts <= rtm::protocol::now_ms() + 1000)
    );
    // carol updates one key: only that key's provenance changes.
    c.add_or_update_channel_attributes("room", attrs(&[("topic", "landing")]), QUIET)
        .await
        .unwrap();
    let all = c.get_channel_attributes("room").await.unwrap();
    let topic = all.iter().find(|x| x.key == "topic").unwrap();
    let owner = all.iter().find(|x| x.key == "owner").unwrap();
    assert_eq!(
        (topic.value.as_str(), topic.last_update_user_id.as_str()),
        ("landing", "carol")
    );
    assert_eq!(owner.last_update_user_id.as_str(), "alice");
    assert_eq!(
        c.get_channel_attributes_by_keys("room", &["owner"])
            .await
            .unwrap()
            .len(),
        1
    );
    c.delete_channel_attributes_by_keys("room", &["owner"], QUIET)
        .await
        .unwrap();
    assert_eq!(a.get_channel_attributes("room").await.unwrap().len(), 1);
    c.clear_channel_attributes("room", NOTIFY).await.unwrap();
    let got = wait_for(&mut be, |e| match e {
        ClientEvent::Channel {
            event: ChannelEvent::AttributesUpdated(v),
            ..
        } => Some(v.clone()),
        _ => None,
    })
    .await;
    assert!(got.is_empty());
    // Non-members are never notified.
    assert!(
        none_within(&mut ae, Duration::from_millis(100), |e| matches!(
            e,
            ClientEvent::Channel { .. }
        ))
        .await
    );
    server.shutdown().await;
}

#[tokio::test]
async fn channel_attribute_limits_at_their_boundaries() {
    let server = busy_server().await;
    let (a, _ae) = login(&server.url(), "alice").await;
    a.set_channel_attributes("ch", n_attrs(32, 1), QUIET)
        .await
        .unwrap();
    assert_eq!(
        a.set_channel_attributes("ch", n_attrs(33, 1), QUIET)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SizeOverflow
    );
    assert_eq!(
        a.add_or_update_channel_attributes("ch", attrs(&[("new", "1")]), QUIET)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SizeOverflow
    );
    assert_eq!(a.get_channel_attributes("ch").await.unwrap().len(), 32);
    // Total 32 KB: 4 keys of 3 bytes with 8189-byte values = 32768 exactly.
    let fits: BTreeMap<String, String> = (0..4)
        .map(|i| (format!("k{i:02}"), "v".repeat(8189)))
        .collect();
    a.set_channel_attributes("ch", fits, QUIET).await.unwrap();
    assert_eq!(
        a.add_or_update_channel_attributes("ch", attrs(&[("x", "y")]), QUIET)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SizeOverflow
    );
    assert_eq!(
        a.set_channel_attributes("ch", attrs(&[("v", &"v".repeat(8193))]), QUIET)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SizeOverflow
    );
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_writers_are_all_or_nothing() {
    let server = busy_server().await;
    let (a, _ae) = login(&server.url(), "alice").await;
    let (b, _be) = login(&server.url(), "bob").await;
    // Each writer adds 20 distinct keys; together they would exceed 32. Exactly
    // one may win each round and the set never holds a partial write.
    for round in 0..10 {
        a.clear_channel_attributes("race", QUIET).await.unwrap();
        let wa: BTreeMap<String, String> = (0..20)
            .map(|i| (format!("a{i}"), format!("{round}")))
            .collect();
        let wb: BTreeMap<String, String> = (0..20)
            .map(|i| (format!("b{i}"), format!("{round}")))
            .collect();
        let (ra, rb) = tokio::join!(
            a.add_or_update_channel_attributes("race", wa, QUIET),
            b.add_or_update_channel_attributes("race", wb, QUIET)
        );
        assert!(
            ra.is_ok() != rb.is_ok(),
            "exactly one writer wins: {ra:?} {rb:?}"
        );
        let set = a.get_channel_attributes("race").await.unwrap();
        assert_eq!(set.len(), 20);
        let prefix = if ra.is_ok() { "a" } else { "b" };
        assert!(set.iter().all(|x| x.key.starts_with(prefix)));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn user_attributes_are_restored_after_a_reconnection() {
    let server = busy_server().await;
    let addr = server.addr.to_string();
    let (a, mut ae) = login(&server.url(), "alice").await;
    a.set_local_user_attributes(attrs(&[("status", "away")]))
        .await
        .unwrap();
    server.shutdown().await;
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    let server = start_server_on(
        &addr,
        test_config(),
        std::sync::Arc::new(rtm::server::MemoryStore::new()),
    )
    .await;
    wait_for(&mut ae, |e| {
        matches!(
            e,
            ClientEvent::Restored {
                attributes_restored: true,
                ..
            }
        )
        .then_some(())
    })
    .await;
    let (b, _be) = login(&server.url(), "bob").await;
    assert_eq!(
        b.get_user_attributes("alice").await.unwrap(),
        attrs(&[("status", "away")])
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn channel_attributes_are_cleared_after_the_channel_stayed_empty() {
    let mut config = paused_server_config();
    config.hub.channel_attributes_ttl = Duration::from_secs(120);
    config.limit_scale = 1000;
    let server = start_server_with(config).await;
    let (a, _ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    let ch = a.create_channel("room").unwrap();
    ch.join().await.unwrap();
    a.set_channel_attributes("room", attrs(&[("topic", "t")]), QUIET)
        .await
        .unwrap();
    // Occupied: kept however long.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(a.get_channel_attributes("room").await.unwrap().len(), 1);
    ch.leave().await.unwrap();
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(
        a.get_channel_attributes("room").await.unwrap().len(),
        1,
        "still within the ttl"
    );
    // Someone joins and leaves again: the countdown restarts.
    ch.join().await.unwrap();
    ch.leave().await.unwrap();
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(
        a.get_channel_attributes("room").await.unwrap().len(),
        1,
        "countdown restarted"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        a.get_channel_attributes("room").await.unwrap().is_empty(),
        "cleared after 120 s empty"
    );
    server.shutdown().await;
}
