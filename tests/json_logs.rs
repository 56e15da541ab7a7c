//! `rtm serve --log-format json`: one JSON object per line, and a session's
//! lines carry its span (peer, uid, session).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::free_port;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_session() {
    let home = TempDir::new("json-logs");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtm"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(home.path().join("data"))
        .args(["--log-format", "json", "--log-level", "info"])
        .env("RTM_HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtm serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut out = BufReader::new(stdout).lines();
    for line in out.by_ref() {
        if line.expect("read").starts_with("press Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in out {});
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let (alice, _ae) = login(&format!("ws://127.0.0.1:{port}"), "alice").await;
    alice.logout().await.unwrap();
    // The login line: JSON, with the session span's fields.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let login = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("no login line; saw {seen:#?}"));
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "login" {
            break v;
        }
        seen.push(line);
    };
    assert_eq!(login["span"]["uid"], "alice", "{login}");
    assert!(login["span"]["session"].is_number(), "{login}");
    assert!(
        login["span"]["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{login}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
