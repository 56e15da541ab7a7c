//! The durable store over real sockets: offline messages (order, flag, cap,
//! expiry, exactly once, crash safety with a killed server process) and
//! channel attributes that survive restarts, all on a real SQLite file.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{ServeProcess, free_port};
use common::*;
use rtm::client::{ClientConfig, ClientEvent, ClientEvents};
use rtm::protocol::{ChannelAttributeOptions, RtmMessage, SendMessageOptions};
use rtm::server::store::OfflineQuota;
use rtm::server::{ServerConfig, ServerHandle, SqliteOptions, SqliteStore, Store};

const OFFLINE: SendMessageOptions = SendMessageOptions {
    enable_offline_messaging: true,
};

fn open_store(dir: &Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open_dir(dir).expect("open store"))
}

async fn start_sqlite(dir: &Path, config: ServerConfig) -> (ServerHandle, Arc<SqliteStore>) {
    let store = open_store(dir);
    let server = start_server_on("127.0.0.1:0", config, store.clone()).await;
    (server, store)
}

fn text(s: &str) -> RtmMessage {
    RtmMessage::text(s)
}

/// Next peer message: (from, text, is_offline_message).
async fn next_peer_message(events: &mut ClientEvents, within: Duration) -> (String, String, bool) {
    wait_for_within(events, within, |e| match e {
        ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text },
            peer_id,
            props,
        } => Some((peer_id.to_string(), text.clone(), props.is_offline_message)),
        _ => None,
    })
    .await
}

/// Waits (real time) until the store holds `n` offline messages: delivered
/// ones are removed only after they were written to the receiver's socket.
async fn wait_offline_count(store: &dyn Store, n: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = store.stats().await.expect("stats").offline_messages;
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "store holds {now} offline messages, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn generous_limits() -> ServerConfig {
    let mut c = test_config();
    c.limit_scale = 1000;
    c
}

#[tokio::test]
async fn offline_messages_arrive_in_order_flagged_exactly_once() {
    let dir = TempDir::new("order");
    let (server, store) = start_sqlite(dir.path(), test_config()).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    for i in 0..5 {
        let r = alice
            .send_message_to_peer(text(&format!("m{i}")), "bob", OFFLINE)
            .await
            .unwrap();
        assert!(!r.has_peer_received);
        assert!(r.cached, "an offline peer's message is stored");
    }
    // Without the option nothing is stored.
    let r = alice
        .send_message_to_peer(text("lost"), "bob", SendMessageOptions::default())
        .await
        .unwrap();
    assert!(!r.has_peer_received && !r.cached);
    assert_eq!(store.stats().await.unwrap().offline_messages, 5);

    let (bob, mut be) = login(&server.url(), "bob").await;
    for i in 0..5 {
        assert_eq!(
            next_peer_message(&mut be, WAIT).await,
            ("alice".into(), format!("m{i}"), true)
        );
    }
    // Live messages follow, unflagged.
    alice
        .send_message_to_peer(text("live"), "bob", OFFLINE)
        .await
        .unwrap();
    assert_eq!(
        next_peer_message(&mut be, WAIT).await,
        ("alice".into(), "live".into(), false)
    );
    wait_offline_count(store.as_ref(), 0).await;

    // Exactly once: the next login gets nothing more.
    bob.logout().await.unwrap();
    let (_bob, mut be) = login(&server.url(), "bob").await;
    assert!(
        none_within(&mut be, Duration::from_millis(300), |e| matches!(
            e,
            ClientEvent::MessageFromPeer { .. }
        ))
        .await
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_201st_offline_message_evicts_the_oldest() {
    let dir = TempDir::new("cap");
    let (server, store) = start_sqlite(dir.path(), generous_limits()).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    for i in 0..201 {
        let r = alice
            .send_message_to_peer(text(&format!("m{i}")), "bob", OFFLINE)
            .await
            .unwrap();
        assert!(r.cached);
    }
    assert_eq!(store.stats().await.unwrap().offline_messages, 200);
    let (_bob, mut be) = login(&server.url(), "bob").await;
    for i in 1..201 {
        assert_eq!(
            next_peer_message(&mut be, WAIT).await,
            ("alice".into(), format!("m{i}"), true)
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_cap_is_configurable() {
    let dir = TempDir::new("cap3");
    let mut config = test_config();
    config.hub.offline_quota.per_receiver_messages = 3;
    let (server, _store) = start_sqlite(dir.path(), config).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    for i in 0..5 {
        alice
            .send_message_to_peer(text(&format!("m{i}")), "bob", OFFLINE)
            .await
            .unwrap();
    }
    let (_bob, mut be) = login(&server.url(), "bob").await;
    for i in 2..5 {
        assert_eq!(next_peer_message(&mut be, WAIT).await.1, format!("m{i}"));
    }
    server.shutdown().await;
}

/// Client settings for a test whose clock jumps: no timer of the client
/// itself may fire meanwhile.
fn jumping_client_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(100 * 24 * 3600),
        login_timeout: Duration::from_secs(100 * 24 * 3600),
        heartbeat_interval: Duration::from_secs(100 * 24 * 3600),
        heartbeat_timeout: Duration::from_secs(200 * 24 * 3600),
        ..fast_client_config()
    }
}

fn jumping_server_config() -> ServerConfig {
    let mut c = with_tokio_clock(test_config());
    c.timing.heartbeat_interval = Duration::from_secs(100 * 24 * 3600);
    c.timing.heartbeat_timeout = Duration::from_secs(200 * 24 * 3600);
    c.conn.login_timeout = Duration::from_secs(100 * 24 * 3600);
    c
}

/// Pauses the clock and keeps a 10 ms timer running: while the runtime waits
/// for the SQLite thread (which tokio cannot see), paused time jumps to the
/// next timer, and without this one that could be a request timeout.
fn pause_clock() -> tokio::task::JoinHandle<()> {
    tokio::time::pause();
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// A long limit for waits after the clock was paused: while the runtime
/// waits for the SQLite thread, paused time may jump to the next timer.
const PAUSED_WAIT: Duration = Duration::from_secs(50 * 24 * 3600);

#[tokio::test]
async fn offline_messages_expire_after_the_configured_while() {
    let dir = TempDir::new("expiry");
    let mut config = jumping_server_config();
    config.hub.offline_ttl = Duration::from_secs(7 * 24 * 3600);
    let (server, _store) = start_sqlite(dir.path(), config).await;
    let (alice, _ae) = login_with(&server.url(), "alice", jumping_client_config()).await;
    alice
        .send_message_to_peer(text("old"), "bob", OFFLINE)
        .await
        .unwrap();
    // The clock is ours from here: seven days and a minute pass.
    let ticker = pause_clock();
    tokio::time::advance(Duration::from_secs(7 * 24 * 3600 + 60)).await;
    alice
        .send_message_to_peer(text("new"), "bob", OFFLINE)
        .await
        .unwrap();
    let (_bob, mut be) = login_with(&server.url(), "bob", jumping_client_config()).await;
    // "old" would come first (send order); the first to arrive is "new".
    assert_eq!(
        next_peer_message(&mut be, PAUSED_WAIT).await,
        ("alice".into(), "new".into(), true)
    );
    server.shutdown().await;
    ticker.abort();
}

/// The machine sleeps for eight hours while the server runs inside `rtm
/// chat`: tokio time stands still across the suspend, the wall clock does not.
#[tokio::test]
async fn after_a_suspend_timestamps_and_offline_expiry_follow_the_wall_clock() {
    let dir = TempDir::new("suspend");
    let clock = Arc::new(rtm::server::TestClock::new());
    let mut config = test_config();
    config.timing.clock = clock.clone();
    config.hub.offline_ttl = Duration::from_secs(3600);
    let (server, _store) = start_sqlite(dir.path(), config).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let old = alice
        .send_message_to_peer(text("old"), "bob", OFFLINE)
        .await
        .unwrap();
    clock.jump(Duration::from_secs(8 * 3600));
    let new = alice
        .send_message_to_peer(text("new"), "bob", OFFLINE)
        .await
        .unwrap();
    assert!(
        new.server_received_ts >= old.server_received_ts + 8 * 3600 * 1000,
        "{} then {}",
        old.server_received_ts,
        new.server_received_ts
    );
    let (_bob, mut be) = login(&server.url(), "bob").await;
    // "old" would come first (send order); it is past its hour, so "new" does.
    assert_eq!(
        next_peer_message(&mut be, WAIT).await,
        ("alice".into(), "new".into(), true)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn nothing_is_stored_for_a_receiver_who_is_online() {
    let dir = TempDir::new("online");
    let (server, store) = start_sqlite(dir.path(), test_config()).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let (_bob, mut be) = login(&server.url(), "bob").await;
    let r = alice
        .send_message_to_peer(text("hi"), "bob", OFFLINE)
        .await
        .unwrap();
    assert!(r.has_peer_received);
    assert!(!r.cached);
    assert_eq!(
        next_peer_message(&mut be, WAIT).await,
        ("alice".into(), "hi".into(), false)
    );
    assert_eq!(store.stats().await.unwrap().offline_messages, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_senders_to_one_offline_receiver_keep_their_order() {
    let dir = TempDir::new("concurrent");
    let (server, store) = start_sqlite(dir.path(), generous_limits()).await;
    const SENDERS: usize = 8;
    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let url = server.url();
        tasks.push(tokio::spawn(async move {
            let (c, _e) = login(&url, &format!("s{s}")).await;
            for i in 0..EACH {
                let r = c
                    .send_message_to_peer(text(&i.to_string()), "bob", OFFLINE)
                    .await
                    .unwrap();
                assert!(r.cached);
            }
            c.logout().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store.stats().await.unwrap().offline_messages,
        (SENDERS * EACH) as u64
    );
    let (_bob, mut be) = login(&server.url(), "bob").await;
    let mut next: HashMap<String, usize> = HashMap::new();
    for _ in 0..SENDERS * EACH {
        let (from, body, offline) = next_peer_message(&mut be, WAIT).await;
        assert!(offline);
        let expected = next.entry(from.clone()).or_insert(0);
        assert_eq!(body, expected.to_string(), "order of {from}");
        *expected += 1;
    }
    assert!(next.values().all(|n| *n == EACH));
    server.shutdown().await;
}

#[tokio::test]
async fn live_messages_never_overtake_offline_ones_at_login() {
    let dir = TempDir::new("overtake");
    let (server, _store) = start_sqlite(dir.path(), generous_limits()).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    const STORED: usize = 100;
    const TOTAL: usize = 300;
    // Alice stores 100, then keeps sending while Bob logs in.
    let (stored_tx, stored_rx) = tokio::sync::oneshot::channel();
    let sender = tokio::spawn(async move {
        let mut stored_tx = Some(stored_tx);
        for i in 0..TOTAL {
            if i == STORED
                && let Some(tx) = stored_tx.take()
            {
                let _ = tx.send(());
            }
            alice
                .send_message_to_peer(text(&i.to_string()), "bob", OFFLINE)
                .await
                .unwrap();
        }
        alice
    });
    stored_rx.await.unwrap();
    let (_bob, mut be) = login(&server.url(), "bob").await;
    let mut offline_count = 0;
    for i in 0..TOTAL {
        let (_, body, offline) = next_peer_message(&mut be, WAIT).await;
        assert_eq!(body, i.to_string(), "messages arrive in send order");
        if offline {
            assert_eq!(
                offline_count, i,
                "offline message {i} came after a live one"
            );
            offline_count += 1;
        }
    }
    assert!(offline_count >= STORED);
    let _alice = sender.await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn channel_attributes_survive_a_restart() {
    let dir = TempDir::new("attrs");
    let (server, store) = start_sqlite(dir.path(), test_config()).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let room = alice.create_channel("room").unwrap();
    room.join().await.unwrap();
    alice
        .set_channel_attributes(
            "room",
            BTreeMap::from([("topic".into(), "rust".into()), ("n".into(), "1".into())]),
            ChannelAttributeOptions::default(),
        )
        .await
        .unwrap();
    let before = alice.get_channel_attributes("room").await.unwrap();
    server.shutdown().await;
    // Closes the database and releases the data directory for the next one.
    store.shutdown().await.unwrap();

    let (server, store) = start_sqlite(dir.path(), test_config()).await;
    assert_eq!(store.stats().await.unwrap().channels_with_attributes, 1);
    let (carol, _ce) = login(&server.url(), "carol").await;
    let after = carol.get_channel_attributes("room").await.unwrap();
    assert_eq!(after, before);
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].last_update_user_id.as_str(), "alice");
    server.shutdown().await;
}

#[tokio::test]
async fn attributes_are_cleared_when_the_channel_stayed_empty_while_the_server_was_down() {
    let dir = TempDir::new("attrs-down");
    let mut config = jumping_server_config();
    config.hub.channel_attributes_ttl = Duration::from_secs(300);
    let (server, store) = start_sqlite(dir.path(), config.clone()).await;
    let (alice, _ae) = login_with(&server.url(), "alice", jumping_client_config()).await;
    // A channel with members when the server stops, and one nobody is in.
    let busy = alice.create_channel("busy").unwrap();
    busy.join().await.unwrap();
    for ch in ["busy", "lonely"] {
        alice
            .set_channel_attributes(
                ch,
                BTreeMap::from([("k".into(), "v".into())]),
                ChannelAttributeOptions::default(),
            )
            .await
            .unwrap();
    }
    server.shutdown().await;
    drop(alice);
    store.shutdown().await.unwrap();

    // A short restart keeps both.
    let (server, store) = start_sqlite(dir.path(), config.clone()).await;
    assert_eq!(store.stats().await.unwrap().channels_with_attributes, 2);
    server.shutdown().await;
    store.shutdown().await.unwrap();

    // Down for longer than the while: both are cleared at start-up.
    let ticker = pause_clock();
    tokio::time::advance(Duration::from_secs(301)).await;
    let (server, store) = start_sqlite(dir.path(), config).await;
    assert_eq!(store.stats().await.unwrap().channels_with_attributes, 0);
    let (carol, _ce) = login_with(&server.url(), "carol", jumping_client_config()).await;
    assert!(
        carol
            .get_channel_attributes("lonely")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        carol
            .get_channel_attributes("busy")
            .await
            .unwrap()
            .is_empty()
    );
    server.shutdown().await;
    ticker.abort();
}

#[test]
fn schema_is_created_in_an_empty_dir_and_a_newer_one_is_refused() {
    let dir = TempDir::new("schema");
    let store = SqliteStore::open_dir(dir.path()).expect("fresh dir");
    drop(store);
    let file = dir.path().join(rtm::server::sqlite::DB_FILE);
    let conn = rusqlite::Connection::open(&file).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, rtm::server::sqlite::SCHEMA_VERSION);
    // Opening again is a no-op migration.
    drop(SqliteStore::open_dir(dir.path()).expect("reopen"));

    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open_dir(dir.path())
        .err()
        .expect("a newer schema is refused");
    let msg = err.to_string();
    assert!(msg.contains("schema version 99"), "{msg}");
    assert!(
        msg.contains(&format!(
            "understands up to {}",
            rtm::server::sqlite::SCHEMA_VERSION
        )),
        "{msg}"
    );
    assert!(msg.contains("upgrade rtm"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

// ------------------------------------------------------------ real process

fn spawn_rtm_serve(home: &Path, data: &Path, port: u16) -> ServeProcess {
    ServeProcess::start(home, data, port, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_offline_messages_survive_sigkill() {
    let home = TempDir::new("sigkill-home");
    let data = home.path().join("server-data");
    // One receiver gets all 1,000: raise the per-receiver cap.
    std::fs::create_dir_all(home.path().join("config")).unwrap();
    std::fs::write(
        home.path().join("config").join("server.toml"),
        "offline_cap = 5000\n",
    )
    .unwrap();
    let port = free_port();
    let server = spawn_rtm_serve(home.path(), &data, port);
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains(&data.join("rtm.sqlite3").display().to_string())),
        "start-up says where the data lives: {:?}",
        server.banner
    );

    // 10 senders × 100 messages (each sender stays under the rate limit).
    const SENDERS: usize = 10;
    const EACH: usize = 100;
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let url = server.url.clone();
        tasks.push(tokio::spawn(async move {
            let (c, _e) = login(&url, &format!("s{s}")).await;
            for i in 0..EACH {
                let r = c
                    .send_message_to_peer(text(&i.to_string()), "bob", OFFLINE)
                    .await
                    .unwrap();
                assert!(r.cached && !r.has_peer_received);
            }
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    // Every one acknowledged: kill at once, no chance to clean up.
    drop(server);
    drop(clients);

    let server = spawn_rtm_serve(home.path(), &data, port);
    let total = SENDERS * EACH;
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains(&format!("{total} offline message(s)"))),
        "start-up reports what is stored: {:?}",
        server.banner
    );
    let (bob, mut be) = login(&server.url, "bob").await;
    let mut next: HashMap<String, usize> = HashMap::new();
    for _ in 0..total {
        let (from, body, offline) = next_peer_message(&mut be, WAIT).await;
        assert!(offline);
        let expected = next.entry(from.clone()).or_insert(0);
        assert_eq!(body, expected.to_string(), "order of {from}");
        *expected += 1;
    }
    assert_eq!(next.len(), SENDERS);
    assert!(next.values().all(|n| *n == EACH));
    // Once delivered, never again: log in anew after the hand-over settled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    bob.logout().await.unwrap();
    let (_bob, mut be) = login(&server.url, "bob").await;
    assert!(
        none_within(&mut be, Duration::from_millis(300), |e| matches!(
            e,
            ClientEvent::MessageFromPeer { .. }
        ))
        .await
    );
}

// ------------------------------------------------------------- measurement

/// Messages per second stored for offline receivers, with and without group
/// commit, end to end (SDK → server → SQLite) and at the store alone:
///
/// `cargo test --release --test store -- --ignored --nocapture measure_group_commit`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn measure_group_commit() {
    const CLIENTS: usize = 32;
    const EACH: usize = 100;
    const TASKS: usize = 64;
    const PER_TASK: usize = 200;
    for group_commit in [false, true] {
        let options = SqliteOptions { group_commit };
        // End to end.
        let dir = TempDir::new("measure-e2e");
        let store = Arc::new(SqliteStore::open_dir_with(dir.path(), options).unwrap());
        let server = start_server_on("127.0.0.1:0", generous_limits(), store.clone()).await;
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            clients.push(login(&server.url(), &format!("sender{c}")).await.0);
        }
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (c, client) in clients.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                for i in 0..EACH {
                    let r = client
                        .send_message_to_peer(
                            text(&format!("message {i}")),
                            &format!("away{c}"),
                            OFFLINE,
                        )
                        .await
                        .unwrap();
                    assert!(r.cached);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let e2e = (CLIENTS * EACH) as f64 / start.elapsed().as_secs_f64();
        server.shutdown().await;
        drop(store);

        // The store alone.
        let dir = TempDir::new("measure-store");
        let store = Arc::new(SqliteStore::open_dir_with(dir.path(), options).unwrap());
        let from: rtm::protocol::Uid = "sender".parse().unwrap();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let store = store.clone();
            let from = from.clone();
            tasks.push(tokio::spawn(async move {
                let to: rtm::protocol::Uid = format!("away{t}").parse().unwrap();
                for i in 0..PER_TASK {
                    store
                        .push_offline(
                            &to,
                            &from,
                            &text(&format!("message {i}")),
                            0,
                            &OfflineQuota::only_cap(200),
                        )
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let alone = (TASKS * PER_TASK) as f64 / start.elapsed().as_secs_f64();
        println!(
            "group commit {}: end to end {e2e:.0} msg/s ({CLIENTS} senders × {EACH}); store alone {alone:.0} msg/s ({TASKS} writers × {PER_TASK})",
            if group_commit { "on " } else { "off" }
        );
    }
}
