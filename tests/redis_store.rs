//! The Redis store of cluster mode against real `redis-server` processes:
//! the semantics of the memory and SQLite stores (order, paging, ack, caps,
//! quotas, attributes, empty channels, purge, stats), two stores on one
//! Redis acting as two nodes, durability across a Redis crash, and a Redis
//! that goes away and comes back.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use rtm::client::ClientEvent;
use rtm::protocol::{
    ChannelAttribute, ChannelId, ErrorBody, ErrorKind, RtmMessage, SendMessageOptions, Uid,
};
use rtm::server::store::{AttributeEdit, OfflineQuota, QuotaRefusal};
use rtm::server::{RedisStore, ServerConfig, Store, StoreError};

fn uid(s: &str) -> Uid {
    s.parse().expect("uid")
}

fn ch(s: &str) -> ChannelId {
    s.parse().expect("channel id")
}

fn text(s: &str) -> RtmMessage {
    RtmMessage::text(s)
}

async fn store(redis: &RedisServer) -> Arc<RedisStore> {
    RedisStore::connect(&redis.url(), "rtm:")
        .await
        .expect("connect to redis")
}

const T0: u64 = 1_700_000_000_000;

async fn push(
    store: &RedisStore,
    to: &str,
    from: &str,
    body: &str,
    ts: u64,
    quota: &OfflineQuota,
) -> Result<(), StoreError> {
    store
        .push_offline(&uid(to), &uid(from), &text(body), ts, quota)
        .await
}

async fn texts(store: &RedisStore, to: &str) -> Vec<String> {
    store
        .pending_offline(&uid(to), 0, 0, 1000)
        .await
        .expect("pending")
        .into_iter()
        .map(|m| match m.message {
            RtmMessage::Text { text } => text,
            other => panic!("not a text: {other:?}"),
        })
        .collect()
}

fn no_limits() -> OfflineQuota {
    OfflineQuota::only_cap(1000)
}

#[tokio::test]
async fn offline_messages_keep_order_page_and_ack() {
    let Some(redis) = common::redis::start("order") else {
        return;
    };
    let s = store(&redis).await;
    assert!(
        s.location().contains(&redis.url()) && s.location().contains("prefix rtm:"),
        "{}",
        s.location()
    );
    let q = no_limits();
    for i in 0..5 {
        push(&s, "bob", "alice", &format!("m{i}"), T0 + i, &q)
            .await
            .unwrap();
    }
    push(&s, "carol", "alice", "for carol", T0, &q)
        .await
        .unwrap();
    // A RAW message with a newline in its description survives as it is.
    let raw = RtmMessage::Raw {
        raw: vec![0, b'\n', 255],
        description: "a\nb".into(),
    };
    s.push_offline(&uid("dave"), &uid("alice"), &raw, T0, &q)
        .await
        .unwrap();
    assert_eq!(
        s.pending_offline(&uid("dave"), 0, 0, 10).await.unwrap()[0].message,
        raw
    );

    let all = s.pending_offline(&uid("bob"), 0, 0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "seq increases");
    assert!(all.iter().all(|m| m.from.as_str() == "alice"));
    assert_eq!(all[3].server_received_ts, T0 + 3);

    // Paging: two at a time, after the last seq seen.
    let page1 = s.pending_offline(&uid("bob"), 0, 0, 2).await.unwrap();
    let page2 = s
        .pending_offline(&uid("bob"), 0, page1[1].seq, 2)
        .await
        .unwrap();
    let page3 = s
        .pending_offline(&uid("bob"), 0, page2[1].seq, 2)
        .await
        .unwrap();
    let paged: Vec<_> = page1.iter().chain(&page2).chain(&page3).cloned().collect();
    assert_eq!(paged, all);
    // min_ts skips older ones but still fills the page.
    let recent = s.pending_offline(&uid("bob"), T0 + 2, 0, 2).await.unwrap();
    assert_eq!(recent, all[2..4].to_vec());

    let stats = s.stats().await.unwrap();
    assert_eq!((stats.offline_messages, stats.offline_receivers), (7, 3));

    // Ack up to the third: the rest stays, in order.
    s.ack_offline(&uid("bob"), all[2].seq).await.unwrap();
    assert_eq!(texts(&s, "bob").await, ["m3", "m4"]);
    s.ack_offline(&uid("bob"), all[4].seq).await.unwrap();
    assert!(texts(&s, "bob").await.is_empty());
    let stats = s.stats().await.unwrap();
    assert_eq!((stats.offline_messages, stats.offline_receivers), (2, 2));
    // Nothing is left behind for bob, and the byte total matches carol's and dave's.
    assert_eq!(redis.cli(&["EXISTS", "rtm:inbox:bob"]), "0");
    assert_eq!(
        redis.cli(&["HGET", "rtm:offline:totals", "bytes"]),
        (text("for carol").size() + raw.size()).to_string()
    );
}

#[tokio::test]
async fn a_full_mailbox_drops_its_oldest() {
    let Some(redis) = common::redis::start("cap") else {
        return;
    };
    let s = store(&redis).await;
    let q = OfflineQuota::only_cap(3);
    for i in 0..5 {
        push(&s, "bob", "alice", &format!("m{i}"), T0 + i, &q)
            .await
            .unwrap();
    }
    assert_eq!(texts(&s, "bob").await, ["m2", "m3", "m4"]);
    assert_eq!(s.stats().await.unwrap().offline_messages, 3);

    // By bytes: a mailbox of 10 bytes keeps the newest that fit.
    let q = OfflineQuota {
        per_receiver_bytes: 10,
        ..OfflineQuota::only_cap(100)
    };
    for body in ["aaaa", "bbbb", "cccc", "dd"] {
        push(&s, "carol", "alice", body, T0, &q).await.unwrap();
    }
    assert_eq!(texts(&s, "carol").await, ["bbbb", "cccc", "dd"]);
    // Evicted messages no longer count for their sender.
    assert_eq!(
        redis.cli(&["ZCARD", "rtm:sender:alice"]),
        (3 + 3).to_string()
    );
}

#[tokio::test]
async fn each_quota_refuses_with_its_reason_and_stores_nothing() {
    let Some(redis) = common::redis::start("quota") else {
        return;
    };
    let s = store(&redis).await;
    let base = OfflineQuota::only_cap(100);

    // Larger than a mailbox.
    let q = OfflineQuota {
        per_receiver_bytes: 4,
        ..base
    };
    let e = push(&s, "bob", "alice", "12345", T0, &q).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Quota(QuotaRefusal::LargerThanMailbox { bytes: 5, limit: 4 })
        ),
        "{e}"
    );

    // Messages per sender within the window.
    let q = OfflineQuota {
        sender_window_ms: 60_000,
        per_sender_messages: 2,
        ..base
    };
    push(&s, "bob", "alice", "a", T0, &q).await.unwrap();
    push(&s, "carol", "alice", "b", T0 + 1, &q).await.unwrap();
    let e = push(&s, "bob", "alice", "c", T0 + 2, &q).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Quota(QuotaRefusal::SenderMessages {
                limit: 2,
                window_s: 60
            })
        ),
        "{e}"
    );
    // Another sender is not affected; after the window the sender may again.
    push(&s, "bob", "erin", "d", T0 + 2, &q).await.unwrap();
    push(&s, "bob", "alice", "e", T0 + 60_001, &q)
        .await
        .unwrap();
    // Delivered messages no longer count.
    s.ack_offline(&uid("carol"), u64::MAX).await.unwrap();
    push(&s, "bob", "alice", "f", T0 + 60_002, &q)
        .await
        .unwrap();
    assert_eq!(texts(&s, "bob").await, ["a", "d", "e", "f"]);

    // Bytes per sender.
    let q = OfflineQuota {
        sender_window_ms: 60_000,
        per_sender_bytes: 10,
        ..base
    };
    push(&s, "bob", "frank", "123456", T0, &q).await.unwrap();
    let e = push(&s, "bob", "frank", "12345", T0, &q).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Quota(QuotaRefusal::SenderBytes {
                limit: 10,
                window_s: 60
            })
        ),
        "{e}"
    );
    push(&s, "bob", "frank", "1234", T0, &q).await.unwrap();

    // The server's total (everything stored so far: 1+1+1+1+6+4 = 14 bytes).
    let before = s.stats().await.unwrap();
    let q = OfflineQuota {
        total_bytes: 16,
        ..base
    };
    let e = push(&s, "zed", "gina", "123", T0, &q).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Quota(QuotaRefusal::ServerFull { limit: 16 })),
        "{e}"
    );
    push(&s, "zed", "gina", "12", T0, &q).await.unwrap();
    let after = s.stats().await.unwrap();
    assert_eq!(after.offline_messages, before.offline_messages + 1);
}

#[tokio::test]
async fn two_nodes_pushing_at_once_never_exceed_a_sender_quota() {
    let Some(redis) = common::redis::start("two-nodes-quota") else {
        return;
    };
    let (a, b) = (store(&redis).await, store(&redis).await);
    let q = OfflineQuota {
        sender_window_ms: 3_600_000,
        per_sender_messages: 10,
        ..OfflineQuota::only_cap(1000)
    };
    // Submit everything first (submitting never blocks), then await.
    let mut tickets = Vec::new();
    for i in 0..30u64 {
        let to = uid(&format!("r{}", i % 4));
        tickets.push(a.push_offline(&to, &uid("spammer"), &text("x"), T0 + i, &q));
        tickets.push(b.push_offline(&to, &uid("spammer"), &text("y"), T0 + i, &q));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tickets {
        match t.await {
            Ok(()) => ok += 1,
            Err(StoreError::Quota(QuotaRefusal::SenderMessages { .. })) => refused += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((ok, refused), (10, 50));
    assert_eq!(a.stats().await.unwrap().offline_messages, 10);
    // Seqs are unique across both nodes.
    let mut seqs = Vec::new();
    for r in 0..4 {
        for m in b
            .pending_offline(&uid(&format!("r{r}")), 0, 0, 100)
            .await
            .unwrap()
        {
            seqs.push(m.seq);
        }
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 10);
}

fn attr(key: &str, value: &str) -> ChannelAttribute {
    ChannelAttribute {
        key: key.into(),
        value: value.into(),
        last_update_user_id: uid("alice"),
        last_update_ts: T0,
    }
}

/// An edit that adds one key to whatever is there.
fn add_key(key: String) -> AttributeEdit {
    Box::new(move |current: &[ChannelAttribute]| {
        let mut next = current.to_vec();
        next.retain(|a| a.key != key);
        next.push(attr(&key, "v"));
        Ok(next)
    })
}

#[tokio::test]
async fn attribute_edits_from_two_nodes_are_all_or_nothing() {
    let Some(redis) = common::redis::start("attrs") else {
        return;
    };
    let (a, b) = (store(&redis).await, store(&redis).await);
    let channel = ch("room");
    let mut tickets = Vec::new();
    for i in 0..50 {
        tickets.push(a.update_channel_attributes(&channel, add_key(format!("a{i:02}"))));
        tickets.push(b.update_channel_attributes(&channel, add_key(format!("b{i:02}"))));
    }
    for t in tickets {
        t.await.expect("stored").expect("not refused");
    }
    let attrs = a.channel_attributes(&channel).await.unwrap();
    assert_eq!(attrs.len(), 100);
    let keys: Vec<_> = attrs.iter().map(|a| a.key.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "in key order");
    assert_eq!(a.stats().await.unwrap().channels_with_attributes, 1);

    // A refusal changes nothing.
    let refuse: AttributeEdit = Box::new(|_: &[ChannelAttribute]| {
        Err(ErrorBody::new(ErrorKind::InvalidArgument, "too many"))
    });
    let r = b.update_channel_attributes(&channel, refuse).await.unwrap();
    assert!(r.is_err());
    assert_eq!(b.channel_attributes(&channel).await.unwrap(), attrs);

    // An empty result removes the channel's attributes.
    let clear: AttributeEdit = Box::new(|_: &[ChannelAttribute]| Ok(Vec::new()));
    assert_eq!(
        b.update_channel_attributes(&channel, clear)
            .await
            .unwrap()
            .unwrap(),
        Vec::new()
    );
    assert!(a.channel_attributes(&channel).await.unwrap().is_empty());
    assert_eq!(a.stats().await.unwrap().channels_with_attributes, 0);
    assert_eq!(redis.cli(&["EXISTS", "rtm:cattr:room"]), "0");
}

#[tokio::test]
async fn an_edit_overtaken_by_another_node_runs_again_on_the_new_state() {
    let Some(redis) = common::redis::start("attrs-cas") else {
        return;
    };
    let s = store(&redis).await;
    set_attrs(&s, "room").await;
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let port = redis.port;
    let counter = runs.clone();
    let edit: AttributeEdit = Box::new(move |current: &[ChannelAttribute]| {
        if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            // Another node writes between this edit's read and its write.
            let theirs = serde_json::to_string(&[attr("k", "v"), attr("theirs", "1")]).unwrap();
            let out = std::process::Command::new("redis-cli")
                .args([
                    "-p",
                    &port.to_string(),
                    "HSET",
                    "rtm:cattr:room",
                    "v",
                    "999999",
                ])
                .args(["a", &theirs])
                .output()
                .expect("redis-cli");
            assert!(out.status.success());
        }
        let mut next = current.to_vec();
        next.push(attr("mine", "2"));
        Ok(next)
    });
    let next = s
        .update_channel_attributes(&ch("room"), edit)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    let keys: Vec<_> = next.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["k", "theirs", "mine"]);
    let stored: Vec<_> = s
        .channel_attributes(&ch("room"))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.key)
        .collect();
    assert_eq!(stored, ["k", "mine", "theirs"]);
}

async fn set_attrs(s: &RedisStore, channel: &str) {
    let edit: AttributeEdit = Box::new(|_: &[ChannelAttribute]| Ok(vec![attr("k", "v")]));
    s.update_channel_attributes(&ch(channel), edit)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn empty_channels_are_swept_but_not_ones_with_members_on_other_nodes() {
    let Some(redis) = common::redis::start("sweep") else {
        return;
    };
    let s = store(&redis).await;
    for c in ["quiet", "busy", "fresh", "rejoined", "elsewhere"] {
        set_attrs(&s, c).await;
    }
    s.set_channel_empty_since(&ch("quiet"), Some(100))
        .await
        .unwrap();
    // An earlier record is kept.
    s.set_channel_empty_since(&ch("quiet"), Some(150))
        .await
        .unwrap();
    s.set_channel_empty_since(&ch("fresh"), Some(900))
        .await
        .unwrap();
    s.set_channel_empty_since(&ch("rejoined"), Some(100))
        .await
        .unwrap();
    s.set_channel_empty_since(&ch("rejoined"), None)
        .await
        .unwrap();
    // "elsewhere" has a member on another node (the cluster's members hash).
    redis.cli(&["HSET", "rtm:members:elsewhere", "carol", "node-2"]);
    s.set_channel_empty_since(&ch("elsewhere"), Some(100))
        .await
        .unwrap();
    // "busy" has members on this node: no record at all.

    let mut cleared = s.sweep_empty_channels(500).await.unwrap();
    cleared.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(cleared, vec![ch("quiet")]);
    assert!(s.channel_attributes(&ch("quiet")).await.unwrap().is_empty());
    for c in ["busy", "fresh", "rejoined", "elsewhere"] {
        assert_eq!(s.channel_attributes(&ch(c)).await.unwrap().len(), 1, "{c}");
    }
    assert_eq!(s.stats().await.unwrap().channels_with_attributes, 4);

    // At start-up every channel without an empty-since record and without
    // members anywhere gets one; "elsewhere" keeps its members.
    s.mark_all_channels_empty(1000).await.unwrap();
    assert_eq!(redis.cli(&["HGET", "rtm:cempty", "busy"]), "1000");
    assert_eq!(redis.cli(&["HGET", "rtm:cempty", "fresh"]), "900");
    assert_eq!(redis.cli(&["HEXISTS", "rtm:cempty", "elsewhere"]), "0");
    let mut cleared = s.sweep_empty_channels(5000).await.unwrap();
    cleared.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(cleared, vec![ch("busy"), ch("fresh"), ch("rejoined")]);
    assert_eq!(
        s.channel_attributes(&ch("elsewhere")).await.unwrap().len(),
        1
    );
    // Once its members are gone, it is swept like any other.
    redis.cli(&["DEL", "rtm:members:elsewhere"]);
    s.set_channel_empty_since(&ch("elsewhere"), Some(6000))
        .await
        .unwrap();
    assert_eq!(
        s.sweep_empty_channels(7000).await.unwrap(),
        vec![ch("elsewhere")]
    );
    assert_eq!(s.stats().await.unwrap().channels_with_attributes, 0);
}

#[tokio::test]
async fn purge_removes_old_messages_with_their_accounting() {
    let Some(redis) = common::redis::start("purge") else {
        return;
    };
    let s = store(&redis).await;
    let q = no_limits();
    for i in 0..1200u64 {
        let to = format!("u{}", i % 3);
        push(&s, &to, "alice", "old", T0 + i, &q).await.unwrap();
    }
    push(&s, "u0", "alice", "new", T0 + 5000, &q).await.unwrap();
    assert_eq!(s.purge_offline(T0 + 5000).await.unwrap(), 1200);
    assert_eq!(texts(&s, "u0").await, ["new"]);
    let stats = s.stats().await.unwrap();
    assert_eq!((stats.offline_messages, stats.offline_receivers), (1, 1));
    assert_eq!(redis.cli(&["ZCARD", "rtm:sender:alice"]), "1");
    assert_eq!(redis.cli(&["ZCARD", "rtm:offline:byts"]), "1");
    assert_eq!(redis.cli(&["HGET", "rtm:offline:totals", "bytes"]), "3");
    assert_eq!(s.purge_offline(T0 + 5000).await.unwrap(), 0);
}

#[tokio::test]
async fn prefixes_keep_stores_apart_and_shutdown_closes() {
    let Some(redis) = common::redis::start("prefix") else {
        return;
    };
    let a = store(&redis).await;
    let b = RedisStore::connect(&redis.url(), "other:").await.unwrap();
    push(&a, "bob", "alice", "hi", T0, &no_limits())
        .await
        .unwrap();
    assert!(texts(&b, "bob").await.is_empty());
    assert_eq!(b.stats().await.unwrap().offline_messages, 0);

    // Everything before the shutdown is done; what comes after is refused.
    let before = a.push_offline(&uid("bob"), &uid("alice"), &text("x"), T0, &no_limits());
    a.shutdown().await.unwrap();
    before.await.unwrap();
    assert!(matches!(a.stats().await, Err(StoreError::Closed)));
    assert_eq!(b.stats().await.unwrap().offline_messages, 0);
}

#[tokio::test]
async fn a_stored_message_survives_a_redis_crash_with_appendfsync_always() {
    let Some(mut redis) = common::redis::start_durable("durable", "always") else {
        return;
    };
    let s = store(&redis).await;
    push(&s, "bob", "alice", "keep me", T0, &no_limits())
        .await
        .unwrap();
    redis.kill();
    redis.restart();
    // The same store reconnects by itself; even the first operation after
    // the restart succeeds (it is sent again on the new connection).
    assert_eq!(texts_now(&s, "bob").await.unwrap(), ["keep me"]);
    // The lost connection did not make a push count twice.
    push(&s, "bob", "alice", "again", T0, &no_limits())
        .await
        .unwrap();
    assert_eq!(texts(&s, "bob").await, ["keep me", "again"]);
}

async fn texts_now(s: &RedisStore, to: &str) -> Result<Vec<String>, StoreError> {
    Ok(s.pending_offline(&uid(to), 0, 0, 100)
        .await?
        .into_iter()
        .map(|m| match m.message {
            RtmMessage::Text { text } => text,
            other => format!("{other:?}"),
        })
        .collect())
}

/// Retries `f` until it succeeds (the first operation after a restart may
/// still meet the old connection); fails the test after 15 s.
async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(Instant::now() < deadline, "still failing: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test]
async fn without_redis_operations_fail_promptly_and_recover_after_it_returns() {
    let Some(mut redis) = common::redis::start("outage") else {
        return;
    };
    let s = store(&redis).await;
    push(&s, "bob", "alice", "before", T0, &no_limits())
        .await
        .unwrap();
    redis.kill();
    // Several operations queued while Redis is gone: each answers an error
    // (the guard below is only against a hang, not a timing assertion).
    let tickets = vec![s.stats(), s.stats()];
    let push_ticket = s.push_offline(
        &uid("bob"),
        &uid("alice"),
        &text("during"),
        T0,
        &no_limits(),
    );
    let edit = s.update_channel_attributes(&ch("room"), add_key("k".into()));
    let guard = Duration::from_secs(30);
    for t in tickets {
        let e = tokio::time::timeout(guard, t)
            .await
            .expect("no hang")
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("unreachable") && msg.contains(&redis.url()),
            "{msg}"
        );
        assert!(msg.contains("retry"), "{msg}");
    }
    assert!(
        tokio::time::timeout(guard, push_ticket)
            .await
            .expect("no hang")
            .is_err()
    );
    assert!(
        tokio::time::timeout(guard, edit)
            .await
            .expect("no hang")
            .is_err()
    );

    redis.restart();
    // No data survives this Redis (no AOF), but the store works again.
    eventually(|| s.stats()).await;
    push(&s, "bob", "alice", "after", T0, &no_limits())
        .await
        .unwrap();
    assert_eq!(texts(&s, "bob").await, ["after"]);
    set_attrs(&s, "room").await;
}

#[tokio::test]
async fn connecting_to_no_redis_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("redis://:secret@127.0.0.1:{port}/0");
    let e = match RedisStore::connect(&url, "rtm:").await {
        Ok(_) => panic!("connected to nothing"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("unreachable") && e.contains(&format!("127.0.0.1:{port}")),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");
    let e = match RedisStore::connect("http://nope", "rtm:").await {
        Ok(_) => panic!("accepted a non-Redis URL"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("not a Redis URL"), "{e}");
}

#[tokio::test]
async fn a_server_on_redis_hands_offline_messages_over() {
    let Some(redis) = common::redis::start("server") else {
        return;
    };
    let s = store(&redis).await;
    let server = start_server_on("127.0.0.1:0", ServerConfig::default(), s.clone()).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let offline = SendMessageOptions {
        enable_offline_messaging: true,
    };
    for i in 0..3 {
        let r = alice
            .send_message_to_peer(text(&format!("m{i}")), "bob", offline)
            .await
            .unwrap();
        assert!(r.cached);
    }
    assert_eq!(s.stats().await.unwrap().offline_messages, 3);
    let (_bob, mut be) = login(&server.url(), "bob").await;
    for i in 0..3 {
        let got = wait_for(&mut be, |e| match e {
            ClientEvent::MessageFromPeer {
                message: RtmMessage::Text { text },
                props,
                ..
            } => Some((text.clone(), props.is_offline_message)),
            _ => None,
        })
        .await;
        assert_eq!(got, (format!("m{i}"), true));
    }
    // Delivered messages are acknowledged and removed.
    let deadline = Instant::now() + WAIT;
    while s.stats().await.unwrap().offline_messages != 0 {
        assert!(Instant::now() < deadline, "delivered messages stay stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}
