//! The store under attack and faults, on real SQLite files: compact bodies
//! and quotas (nobody fills the disk), one server per data directory, and
//! storage faults (file size limit, read-only or damaged database, backups
//! after a clean stop) that end in clear refusals or error replies, never in
//! a dead server or silently lost mail.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rtm::protocol::{ErrorKind, RtmMessage, SendMessageOptions, Uid};
use rtm::server::sqlite::DB_FILE;
use rtm::server::store::OfflineQuota;
use rtm::server::{SqliteStore, Store, TestClock};

const OFFLINE: SendMessageOptions = SendMessageOptions {
    enable_offline_messaging: true,
};

/// The largest message body, in bytes (spec: 32 KB).
const MAX_MESSAGE_BYTES: usize = 32 * 1024;

fn uid(s: &str) -> Uid {
    s.parse().expect("valid uid")
}

/// Rows in `offline_messages` of the database file `file`, read directly.
fn stored_rows(file: &Path) -> i64 {
    let conn = rusqlite::Connection::open(file).expect("open database copy");
    conn.query_row("SELECT COUNT(*) FROM offline_messages", [], |r| r.get(0))
        .expect("count rows")
}

/// Folds the WAL into the main file (as a clean stop should), so tests can
/// look at or damage the main file alone.
fn checkpoint_by_hand(file: &Path) {
    let conn = rusqlite::Connection::open(file).expect("open database");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
}

// ------------------------------------------------------------ disk usage

/// Bytes the database takes per stored message of 32 KB of control
/// characters (the worst case for a JSON-escaped row: 6 bytes per byte).
/// Also printed, as the measurement of the report:
///
/// `cargo test --test storage_faults -- --nocapture a_32_kb_message`
#[tokio::test]
async fn a_32_kb_message_of_control_characters_takes_about_32_kb_on_disk() {
    const MESSAGES: u64 = 20;
    let dir = TempDir::new("size");
    let file = dir.path().join(DB_FILE);
    let store = SqliteStore::open_dir(dir.path()).expect("open store");
    store.barrier().await.expect("schema written");
    drop(store);
    checkpoint_by_hand(&file);
    let empty = std::fs::metadata(&file).expect("db file").len();

    let store = SqliteStore::open_dir(dir.path()).expect("open store");
    let body = "\u{1}".repeat(MAX_MESSAGE_BYTES);
    let from = uid("sender");
    for i in 0..MESSAGES {
        store
            .push_offline(
                &uid(&format!("r{i}")),
                &from,
                &RtmMessage::text(&body),
                1,
                &OfflineQuota::only_cap(200),
            )
            .await
            .expect("stored");
    }
    drop(store);
    checkpoint_by_hand(&file);
    let full = std::fs::metadata(&file).expect("db file").len();
    let per_message = (full - empty) / MESSAGES;
    println!(
        "disk bytes per stored 32 KB message of control characters: {per_message} \
         ({MESSAGES} messages, {empty} → {full} bytes)"
    );
    assert!(
        per_message < 40 * 1024,
        "a 32 KB message takes {per_message} bytes on disk"
    );
    assert_eq!(stored_rows(&file), MESSAGES as i64);
}

// ------------------------------------------------------ one server per dir

#[tokio::test]
async fn two_stores_cannot_share_a_data_directory() {
    let dir = TempDir::new("lock");
    let first = SqliteStore::open_dir(dir.path()).expect("first store");
    let second = SqliteStore::open_dir(dir.path());
    let err = second.err().expect("the second store is refused");
    let msg = err.to_string();
    assert!(msg.contains("in use"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.contains(&std::process::id().to_string()), "{msg}");
    // Once the first is closed, the directory is free again.
    drop(first);
    drop(SqliteStore::open_dir(dir.path()).expect("free after the first closed"));
}

// ------------------------------------------------------------- damage

#[tokio::test]
async fn a_damaged_database_is_refused_at_start_naming_the_file() {
    let dir = TempDir::new("damaged");
    let file = dir.path().join(DB_FILE);
    let store = SqliteStore::open_dir(dir.path()).expect("open store");
    let from = uid("sender");
    for i in 0..60 {
        store
            .push_offline(
                &uid(&format!("user{}", i % 3)),
                &from,
                &RtmMessage::text(format!("message {i} {}", "x".repeat(1500))),
                1,
                &OfflineQuota::only_cap(200),
            )
            .await
            .expect("stored");
    }
    drop(store);
    checkpoint_by_hand(&file);
    // Overwrite the last page (a page of stored messages) with garbage.
    let mut bytes = std::fs::read(&file).expect("read db");
    let page = 4096;
    assert!(bytes.len() > 4 * page, "the database has several pages");
    let last = bytes.len() - page;
    bytes[last..].fill(0xff);
    std::fs::write(&file, &bytes).expect("damage db");

    let err = SqliteStore::open_dir(dir.path())
        .err()
        .expect("a damaged database is refused");
    let msg = err.to_string();
    assert!(msg.contains("damaged"), "{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("backup"), "says what to do: {msg}");
}

// ------------------------------------------------------------ real process

/// A running `rtm serve`; killed when dropped.
struct ServerProcess {
    child: Child,
    url: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `rtm serve` on `data` with `home/config/server.toml`, started through
/// `sh -c PREFIX; exec rtm …` so a test can set limits first (`ulimit -f`)
/// or run it as another user (`setpriv …`).
fn rtm_serve_command(home: &Path, data: &Path, port: u16, prefix: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prefix} exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_rtm"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env("RTM_HOME", home)
        .env("RTM_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts `rtm serve` and waits until it is ready; `Err` holds what it said
/// when it did not start.
fn try_spawn(mut cmd: Command) -> Result<ServerProcess, String> {
    let mut child = cmd.spawn().expect("start rtm serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.expect("read stdout");
        if let Some(rest) = line.strip_prefix("rtm server listening on ") {
            url = Some(rest.to_string());
        }
        let done = line.starts_with("press Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    match url {
        Some(url) if banner.last().is_some_and(|l| l.starts_with("press")) => {
            std::thread::spawn(move || for _ in lines {});
            Ok(ServerProcess { child, url })
        }
        _ => {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let status = child.wait().expect("wait");
            Err(format!("{status}; stdout {banner:?}; stderr {err}"))
        }
    }
}

fn write_server_toml(home: &Path, text: &str) {
    let dir = home.join("config");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(dir.join("server.toml"), text).expect("server.toml");
}

/// Stops the process the way an operator does (SIGTERM) and waits for it.
fn stop_cleanly(mut server: ServerProcess) {
    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = server.child.wait().expect("wait");
    assert!(status.success(), "a clean stop exits 0: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rtm_serve_on_the_same_data_refuses_and_names_the_holder() {
    let home = TempDir::new("lock-proc");
    let data = home.path().join("data");
    let first = try_spawn(rtm_serve_command(home.path(), &data, free_port(), ""))
        .expect("the first server starts");
    let (alice, _e) = login(&first.url, "alice").await;
    let err = try_spawn(rtm_serve_command(home.path(), &data, free_port(), ""))
        .err()
        .expect("the second server on the same data refuses to start");
    assert!(err.contains("in use"), "{err}");
    assert!(err.contains(&first.child.id().to_string()), "{err}");
    assert!(err.contains(&data.display().to_string()), "{err}");
    // The first one is unharmed.
    let r = alice
        .send_message_to_peer(RtmMessage::text("hi"), "bob", OFFLINE)
        .await
        .expect("the first server still stores");
    assert!(r.cached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_clean_stop_the_main_file_alone_holds_the_data() {
    let home = TempDir::new("backup");
    let data = home.path().join("data");
    let server =
        try_spawn(rtm_serve_command(home.path(), &data, free_port(), "")).expect("server starts");
    let (alice, _e) = login(&server.url, "alice").await;
    for i in 0..50 {
        alice
            .send_message_to_peer(RtmMessage::text(format!("m{i}")), "bob", OFFLINE)
            .await
            .expect("stored");
    }
    drop(alice);
    stop_cleanly(server);
    // A backup that copies only the database file.
    let backup = TempDir::new("backup-copy");
    std::fs::copy(data.join(DB_FILE), backup.path().join(DB_FILE)).expect("copy");
    assert_eq!(stored_rows(&backup.path().join(DB_FILE)), 50);
}

/// True when file permissions do not stop this process (root).
fn permissions_are_ignored(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join("permission-probe");
    std::fs::write(&probe, "x").expect("probe");
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let writable = std::fs::OpenOptions::new()
        .append(true)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    writable
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let home = TempDir::new("read-only");
    let data = home.path().join("data");
    let server =
        try_spawn(rtm_serve_command(home.path(), &data, free_port(), "")).expect("server starts");
    let (alice, _e) = login(&server.url, "alice").await;
    alice
        .send_message_to_peer(RtmMessage::text("kept"), "bob", OFFLINE)
        .await
        .expect("stored");
    drop(alice);
    stop_cleanly(server);

    // Read-only for the server: as root, run it as nobody (the files stay
    // root's); otherwise take away the write permissions.
    let prefix = if permissions_are_ignored(home.path()) {
        "setpriv --reuid=65534 --regid=65534 --clear-groups"
    } else {
        for entry in std::fs::read_dir(&data).expect("data dir") {
            let path = entry.expect("entry").path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
        ""
    };
    let cmd = if prefix.is_empty() {
        rtm_serve_command(home.path(), &data, free_port(), "")
    } else {
        // setpriv replaces `sh`'s exec target: `setpriv … rtm serve …`.
        rtm_serve_command(
            home.path(),
            &data,
            free_port(),
            &format!("set -- {prefix} \"$@\";"),
        )
    };
    let result = try_spawn(cmd);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).ok();
    let err = result
        .err()
        .expect("a server that cannot write its data refuses to start");
    assert!(err.contains(&data.display().to_string()), "{err}");
    assert!(err.contains("writ"), "says it cannot write: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_size_limit_gives_error_replies_not_a_dead_server() {
    let home = TempDir::new("fsize");
    let data = home.path().join("data");
    write_server_toml(home.path(), "limit_scale = 100\n");
    // About 1 MB (dash counts 512-byte blocks, bash 1024): the database
    // reaches it after a few dozen 32 KB messages.
    let mut server = try_spawn(rtm_serve_command(
        home.path(),
        &data,
        free_port(),
        "ulimit -f 2048;",
    ))
    .expect("server starts");
    let (alice, _e) = login(&server.url, "alice").await;
    let body = "y".repeat(MAX_MESSAGE_BYTES);
    let mut refused = None;
    for i in 0..400 {
        match alice
            .send_message_to_peer(RtmMessage::text(&body), &format!("r{i}"), OFFLINE)
            .await
        {
            Ok(r) => assert!(r.cached),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("the file size limit is reached");
    assert_eq!(e.kind(), ErrorKind::Unknown, "{e}");
    assert!(e.to_string().contains("could not store"), "{e}");
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "the server is still running"
    );
    // And it still serves.
    let (bob, _be) = login(&server.url, "bob").await;
    bob.send_message_to_peer(
        RtmMessage::text("hello"),
        "alice",
        SendMessageOptions::default(),
    )
    .await
    .expect("live messages still flow");
}

// ---------------------------------------------------------------- quotas

/// A server on a real SQLite file with small quotas, and its wall clock
/// (which the window counts by), moved by the test with `jump` (tokio time
/// cannot be paused here: it would leap ahead while the runtime waits for
/// the SQLite thread).
async fn quota_server(dir: &Path) -> (rtm::server::ServerHandle, Arc<TestClock>) {
    let clock = Arc::new(TestClock::new());
    let mut config = test_config();
    config.timing.clock = clock.clone();
    config.limit_scale = 100;
    config.hub.offline_quota = OfflineQuota {
        per_receiver_messages: 200,
        per_receiver_bytes: 3 * MAX_MESSAGE_BYTES as u64,
        sender_window_ms: 60_000,
        per_sender_messages: 5,
        per_sender_bytes: 1_000_000,
        total_bytes: 8 * MAX_MESSAGE_BYTES as u64,
    };
    let store = Arc::new(SqliteStore::open_dir(dir).expect("open store"));
    (start_server_on("127.0.0.1:0", config, store).await, clock)
}

#[tokio::test]
async fn a_sender_over_its_window_quota_is_refused_until_the_window_passes() {
    let dir = TempDir::new("quota-sender");
    let (server, clock) = quota_server(dir.path()).await;
    let (mallory, _e) = login(&server.url(), "mallory").await;
    for i in 0..5 {
        let r = mallory
            .send_message_to_peer(RtmMessage::text("x"), &format!("new{i}"), OFFLINE)
            .await
            .expect("within the quota");
        assert!(r.cached);
    }
    let e = mallory
        .send_message_to_peer(RtmMessage::text("x"), "new5", OFFLINE)
        .await
        .expect_err("the sixth in the window is refused");
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert_eq!(e.kind().as_str(), "QUOTA_EXCEEDED");
    println!("refusal: {e}");
    assert!(e.to_string().contains("not stored"), "{e}");
    assert_eq!(
        server.hub.store().stats().await.unwrap().offline_messages,
        5
    );
    // Another sender is not affected.
    let (alice, _ae) = login(&server.url(), "alice").await;
    assert!(
        alice
            .send_message_to_peer(RtmMessage::text("hi"), "bob", OFFLINE)
            .await
            .expect("alice has her own quota")
            .cached
    );
    // Once the window has passed, mallory may store again.
    clock.jump(Duration::from_secs(61));
    assert!(
        mallory
            .send_message_to_peer(RtmMessage::text("x"), "new6", OFFLINE)
            .await
            .expect("a new window")
            .cached
    );
}

#[tokio::test]
async fn the_server_total_and_the_receiver_bytes_are_bounded() {
    let dir = TempDir::new("quota-total");
    let (server, _clock) = quota_server(dir.path()).await;
    let big = "z".repeat(MAX_MESSAGE_BYTES);
    // A receiver keeps at most 3 full-size messages: the newest.
    let (alice, _ae) = login(&server.url(), "alice").await;
    for i in 0..5 {
        alice
            .send_message_to_peer(
                RtmMessage::text(format!("{i}{}", &big[1..])),
                "bob",
                OFFLINE,
            )
            .await
            .expect("stored, evicting the oldest");
    }
    let kept = server
        .hub
        .store()
        .pending_offline(&uid("bob"), 0, 0, usize::MAX)
        .await
        .unwrap();
    let firsts: Vec<char> = kept
        .iter()
        .map(|m| match &m.message {
            RtmMessage::Text { text } => text.chars().next().unwrap_or('?'),
            _ => '?',
        })
        .collect();
    assert_eq!(firsts, vec!['2', '3', '4']);
    // The server keeps 8 full-size messages in all, whoever sends them.
    let mut refused = None;
    for s in 0..4 {
        let (c, _e) = login(&server.url(), &format!("s{s}")).await;
        for i in 0..2 {
            if let Err(e) = c
                .send_message_to_peer(RtmMessage::text(&big), &format!("t{s}x{i}"), OFFLINE)
                .await
            {
                refused.get_or_insert(e);
            }
        }
    }
    let e = refused.expect("the server total is reached");
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert!(e.to_string().contains("full"), "{e}");
    println!("refusal: {e}");
    assert_eq!(
        server.hub.store().stats().await.unwrap().offline_messages,
        8
    );
}

/// The same quotas hold in the memory store.
#[tokio::test]
async fn the_memory_store_keeps_the_same_quotas() {
    let store = rtm::server::MemoryStore::new();
    let quota = OfflineQuota {
        per_receiver_messages: 10,
        per_receiver_bytes: 10,
        sender_window_ms: 1000,
        per_sender_messages: 3,
        per_sender_bytes: 100,
        total_bytes: 100,
    };
    let m = RtmMessage::text("four");
    let (a, b) = (uid("a"), uid("b"));
    for _ in 0..3 {
        store.push_offline(&b, &a, &m, 5000, &quota).await.unwrap();
    }
    // 12 bytes for b: the oldest went.
    assert_eq!(
        store
            .pending_offline(&b, 0, 0, usize::MAX)
            .await
            .unwrap()
            .len(),
        2
    );
    // a has 2 messages stored; the third is allowed, the fourth is not.
    store
        .push_offline(&uid("c"), &a, &m, 5000, &quota)
        .await
        .unwrap();
    let e = store
        .push_offline(&uid("d"), &a, &m, 5000, &quota)
        .await
        .unwrap_err();
    assert!(matches!(e, rtm::server::StoreError::Quota(_)), "{e}");
    // A later window (the first three are older than 1 s).
    store.push_offline(&b, &a, &m, 6001, &quota).await.unwrap();
}

/// Messages stored by the previous schema (a JSON frame per row) are still
/// delivered after the upgrade, and count against the quotas.
#[tokio::test]
async fn messages_stored_before_the_compact_format_are_still_read() {
    let dir = TempDir::new("legacy");
    let file = dir.path().join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&file).expect("create v1 database");
        conn.execute_batch(
            "CREATE TABLE channel_attributes (channel TEXT NOT NULL, key TEXT NOT NULL,
                 value TEXT NOT NULL, last_update_user_id TEXT NOT NULL,
                 last_update_ts INTEGER NOT NULL, PRIMARY KEY (channel, key)) WITHOUT ROWID;
             CREATE TABLE channel_empty_since (channel TEXT PRIMARY KEY NOT NULL,
                 since_ms INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE offline_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 receiver TEXT NOT NULL, sender TEXT NOT NULL, message TEXT NOT NULL,
                 server_received_ts INTEGER NOT NULL);
             CREATE INDEX offline_by_receiver ON offline_messages (receiver, seq);
             CREATE INDEX offline_by_ts ON offline_messages (server_received_ts);
             INSERT INTO offline_messages (receiver, sender, message, server_received_ts)
                 VALUES ('bob', 'alice', '{\"type\":\"TEXT\",\"text\":\"old\"}', 5),
                        ('bob', 'alice', '{\"type\":\"RAW\",\"raw\":\"AAE=\",\"description\":\"d\"}', 6);
             PRAGMA user_version = 1;",
        )
        .expect("v1 schema");
    }
    let store = SqliteStore::open_dir(dir.path()).expect("migrates");
    store
        .push_offline(
            &uid("bob"),
            &uid("carol"),
            &RtmMessage::text("new"),
            7,
            &OfflineQuota::only_cap(200),
        )
        .await
        .expect("stored");
    let got: Vec<RtmMessage> = store
        .pending_offline(&uid("bob"), 0, 0, usize::MAX)
        .await
        .expect("read")
        .into_iter()
        .map(|m| m.message)
        .collect();
    assert_eq!(
        got,
        vec![
            RtmMessage::text("old"),
            RtmMessage::Raw {
                raw: vec![0, 1],
                description: "d".into()
            },
            RtmMessage::text("new"),
        ]
    );
    assert_eq!(store.stats().await.unwrap().offline_messages, 3);
}
