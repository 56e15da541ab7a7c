//! `rtm backup` against a running `rtm serve` process: the copy is taken
//! while the server keeps writing, and a fresh server started on the copy
//! delivers what was stored, in order and without gaps.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{ServeProcess, free_port};
use common::*;
use rtm::client::ClientEvent;
use rtm::protocol::{RtmMessage, SendMessageOptions};

const OFFLINE: SendMessageOptions = SendMessageOptions {
    enable_offline_messaging: true,
};

fn rtm(home: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rtm"));
    c.env("RTM_HOME", home)
        .env_remove("RTM_DATA")
        .env_remove("RTM_CLUSTER")
        .env_remove("RTM_APP_CERTIFICATE");
    c
}

/// The number after "it holds " in the backup's report.
fn held_messages(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("it holds "))
        .unwrap_or_else(|| panic!("no count in {stdout:?}"));
    line["it holds ".len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_running_server_restores_its_offline_messages() {
    let home = TempDir::new("backup-home");
    let data = home.path().join("data");
    let server = ServeProcess::start(home.path(), &data, free_port(), &[]);

    // 20 acknowledged messages before the backup…
    let (alice, _ae) = login(&server.url, "alice").await;
    for i in 0..20 {
        let r = alice
            .send_message_to_peer(RtmMessage::text(format!("m{i}")), "bob", OFFLINE)
            .await
            .unwrap();
        assert!(r.cached, "stored for the offline bob");
    }
    // …and a writer that keeps going while the backup runs.
    let url = server.url.clone();
    let writer = tokio::spawn(async move {
        let (carol, _ce) = login(&url, "carol").await;
        for i in 0..100 {
            let r = carol
                .send_message_to_peer(RtmMessage::text(format!("c{i}")), "bob", OFFLINE)
                .await
                .unwrap();
            assert!(r.cached);
        }
        carol
    });
    tokio::time::sleep(Duration::from_millis(50)).await;

    let out_dir = home.path().join("backups");
    std::fs::create_dir_all(&out_dir).unwrap();
    let started = Instant::now();
    let home_path = home.path().to_path_buf();
    let data_arg = data.clone();
    let out_arg = out_dir.clone();
    let output = tokio::task::spawn_blocking(move || {
        rtm(&home_path)
            .arg("backup")
            .arg("--data")
            .arg(&data_arg)
            .arg(&out_arg)
            .output()
            .expect("run rtm backup")
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "rtm backup failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("rtm backup took {took:?} while the server was writing:\n{stdout}");
    let held = held_messages(&stdout);
    assert!(
        held >= 20,
        "the acknowledged messages are in the copy: {stdout}"
    );
    let _carol = writer.await.unwrap();
    let copy = out_dir.join("rtm.sqlite3");
    assert!(copy.is_file());
    for sidecar in ["rtm.sqlite3-wal", "rtm.sqlite3-shm"] {
        assert!(!out_dir.join(sidecar).exists(), "the copy is one file");
    }
    // The live server's database is still its own: the backup took no lock.
    let mut server = server;
    server.kill();

    // A fresh server on a new data directory holding only the copy.
    let restored = home.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&copy, restored.join("rtm.sqlite3")).unwrap();
    let server = ServeProcess::start(home.path(), &restored, free_port(), &[]);
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains(&format!("stored: {held} offline message(s)"))),
        "{:?}",
        server.banner
    );
    let (_bob, mut be) = login(&server.url, "bob").await;
    let mut got = Vec::new();
    while (got.len() as u64) < held {
        let (from, text) = wait_for(&mut be, |e| match e {
            ClientEvent::MessageFromPeer {
                message: RtmMessage::Text { text },
                peer_id,
                props,
            } if props.is_offline_message => Some((peer_id.to_string(), text.clone())),
            _ => None,
        })
        .await;
        got.push((from, text));
    }
    // Per sender in order and without gaps: one moment of the database.
    let from = |who: &str| -> Vec<String> {
        got.iter()
            .filter(|(f, _)| f == who)
            .map(|(_, t)| t.clone())
            .collect()
    };
    let a = from("alice");
    let c = from("carol");
    assert_eq!(a, (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(c, (0..c.len()).map(|i| format!("c{i}")).collect::<Vec<_>>());
    eprintln!("restored: {} of alice's, {} of carol's", a.len(), c.len());
}

#[test]
fn a_backup_without_a_database_says_so_and_creates_nothing() {
    let home = TempDir::new("backup-none");
    let data = home.path().join("empty");
    std::fs::create_dir_all(&data).unwrap();
    let output = rtm(home.path())
        .arg("backup")
        .arg("--data")
        .arg(&data)
        .arg(home.path().join("out.sqlite3"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("there is no server database"), "{stderr}");
    assert!(!data.join("rtm.sqlite3").exists());
    assert!(!home.path().join("out.sqlite3").exists());
}
