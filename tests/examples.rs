//! The examples as a user runs them: each example binary is started as a
//! child process against a real server on a free port (the server of
//! `tests/common`, and once the `rtm serve` binary itself), a second client
//! drives it through the SDK (someone comes online, a channel attribute
//! changes, a message arrives), and the example's stdout lines are checked.
//! Every child is stopped at the end — Ctrl-C (SIGINT), which the monitors
//! answer by logging out, then a kill if it is still there after [`WAIT`] —
//! and is killed when its test fails, so the suite never hangs on one.
//!
//! How the test gets the binaries: Cargo hands integration tests the paths
//! of the package's binaries (`CARGO_BIN_EXE_<name>`) but not of its
//! examples. A plain `cargo test` does build the examples (to check that
//! they compile), but `cargo test --test examples` does not, and a binary
//! left over from an earlier build would quietly test old code. So the test
//! asks Cargo, once per run of this test binary: `cargo build --example …`
//! with this test's own features and profile, in the same target directory,
//! reading each example's path from Cargo's JSON artifact messages (no
//! guessing at `target/debug/examples`). Cargo releases its build lock
//! before it runs test binaries, so the nested build does not wait for its
//! parent. After a plain `cargo test` the examples are fresh and this takes
//! about a second; after `cargo test --test examples` it compiles the three
//! examples and links them (tens of seconds on a small machine, the library
//! and dependencies being built already). Each test then takes well under a
//! second of real time.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;

use common::*;
use rtm::client::{
    ChannelAttributeOptions, ChannelEvent, ClientEvent, RtmMessage, SendMessageOptions,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const EXAMPLES: [&str; 3] = ["bot", "presence", "attributes"];

/// The examples' executables by name, built (or found fresh) by Cargo once.
fn examples() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(build_examples)
}

fn build_examples() -> BTreeMap<String, PathBuf> {
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--message-format=json-render-diagnostics"])
        // The features this test was built with, so Cargo reuses the
        // library it already built instead of building another one.
        .args(["--no-default-features", "--features", &own_features()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    // Cargo runs this test with variables describing this package
    // (CARGO_MANIFEST_DIR, CARGO_PKG_NAME …). Some build scripts (ring's)
    // rebuild when those change, so a nested cargo that saw them would
    // rebuild half the tree, and the next plain `cargo build` all of it
    // again. Cargo's own settings (CARGO_HOME, CARGO_TARGET_DIR,
    // CARGO_BUILD_* …) stay, so the nested build uses the same target.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_by_cargo = ["CARGO_PKG_", "CARGO_BIN_", "CARGO_CFG_", "CARGO_FEATURE_"]
            .iter()
            .any(|p| key.starts_with(p))
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_MANIFEST_LINKS",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&key);
        if set_by_cargo {
            cmd.env_remove(key);
        }
    }
    for name in EXAMPLES {
        cmd.args(["--example", name]);
    }
    let out = cmd.output().expect("run cargo to build the examples");
    assert!(
        out.status.success(),
        "building the examples failed ({}); see the compiler output above",
        out.status
    );
    let mut found = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_example = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "example"));
        if msg["reason"] == "compiler-artifact"
            && is_example
            && let (Some(name), Some(exe)) =
                (msg["target"]["name"].as_str(), msg["executable"].as_str())
        {
            found.insert(name.to_string(), PathBuf::from(exe));
        }
    }
    for name in EXAMPLES {
        assert!(found.contains_key(name), "cargo built no example {name:?}");
    }
    found
}

/// This test's cargo features, as a `--features` list.
fn own_features() -> String {
    let on = [
        ("client", cfg!(feature = "client")),
        ("server", cfg!(feature = "server")),
        ("tui", cfg!(feature = "tui")),
        ("bench", cfg!(feature = "bench")),
        ("cli", cfg!(feature = "cli")),
    ];
    on.iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| *f)
        .collect::<Vec<_>>()
        .join(",")
}

/// A running example, its stdout read line by line.
struct Example {
    name: &'static str,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Everything it printed so far, for failure messages.
    seen: Vec<String>,
}

impl Example {
    async fn start(name: &'static str, args: &[&str]) -> Example {
        let exe = tokio::task::spawn_blocking(move || examples()[name].clone())
            .await
            .expect("build the examples");
        let mut child = Command::new(exe)
            .args(args)
            .env_remove("RTM_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A failing test drops the handle: the example must not outlive it.
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start example {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Example {
            name,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line whose text after the timestamp satisfies `pick`;
    /// returns that text.
    async fn expect(&mut self, what: &str, pick: impl Fn(&str) -> bool) -> String {
        let found = tokio::time::timeout(WAIT, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                let text = strip_timestamp(&line);
                if pick(text) {
                    return Some(text.to_string());
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(text)) => text,
            Ok(None) => {
                let stderr = self.stderr().await;
                panic!(
                    "example {} ended without printing {what}; it printed {:#?}; stderr: {stderr}",
                    self.name, self.seen
                )
            }
            Err(_) => panic!(
                "example {} did not print {what} within {WAIT:?}; it printed {:#?}",
                self.name, self.seen
            ),
        }
    }

    /// Waits for exactly the line `text` (after the timestamp).
    async fn expect_line(&mut self, text: &str) {
        self.expect(&format!("{text:?}"), |l| l == text).await;
    }

    /// Ctrl-C, as a user would stop it; returns how it exited, killing it if
    /// it has not within [`WAIT`].
    async fn interrupt(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("the example is running").to_string();
        // `kill -INT` rather than a signal crate: the test needs nothing
        // beyond what every Unix has.
        let sent = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .await
            .expect("run kill");
        assert!(sent.success(), "kill -INT {pid} failed");
        match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(status) => status.expect("wait for the example"),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!(
                    "example {} was still running {WAIT:?} after Ctrl-C; it printed {:#?}",
                    self.name, self.seen
                );
            }
        }
    }

    /// Ends it at once. For the bot, which has no Ctrl-C handling of its
    /// own: a SIGINT would end it only where SIGINT is not ignored, and a
    /// suite started in the background by a script ignores it.
    async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Its exit status once it ends by itself (killed after [`WAIT`]).
    async fn exit(&mut self) -> ExitStatus {
        match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(status) => status.expect("wait for the example"),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!("example {} did not exit within {WAIT:?}", self.name);
            }
        }
    }

    /// The rest of its stdout, once it has exited.
    async fn rest(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(WAIT, self.lines.recv()).await {
            rest.push(strip_timestamp(&line).to_string());
        }
        rest
    }

    async fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = tokio::time::timeout(WAIT, err.read_to_string(&mut text)).await;
        }
        text
    }
}

/// The text of an output line after its RFC 3339 UTC timestamp, checking
/// that the timestamp is one (`2026-05-01T12:00:00.000Z`).
fn strip_timestamp(line: &str) -> &str {
    let (stamp, text) = line.split_once(' ').unwrap_or((line, ""));
    let b = stamp.as_bytes();
    assert!(
        b.len() == 24 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && b[23] == b'Z',
        "{line:?} does not start with a UTC timestamp"
    );
    text
}

const NOTIFY: ChannelAttributeOptions = ChannelAttributeOptions {
    enable_notification_to_channel_members: true,
};

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn presence_prints_the_initial_states_and_every_change_until_ctrl_c() {
    let server = start_server().await;
    let url = server.url();
    let (alice, _alice_events) = login(&url, "alice").await;
    let mut monitor = Example::start(
        "presence",
        &["--server", &url, "--uid", "watcher", "alice", "bob"],
    )
    .await;
    monitor
        .expect_line(&format!("watching alice, bob as watcher on {url}"))
        .await;
    monitor.expect_line("alice ONLINE (initial)").await;
    monitor.expect_line("bob OFFLINE (initial)").await;

    let (bob, _bob_events) = login(&url, "bob").await;
    monitor.expect_line("bob ONLINE").await;
    alice.logout().await.unwrap();
    monitor.expect_line("alice OFFLINE").await;
    assert!(
        bob.query_peers_online_status(&["watcher"]).await.unwrap()["watcher"],
        "the monitor is logged in while it runs"
    );

    let status = monitor.interrupt().await;
    assert!(status.success(), "Ctrl-C is a normal end: {status}");
    assert_eq!(monitor.rest().await, ["logged out"]);
    assert!(
        !bob.query_peers_online_status(&["watcher"]).await.unwrap()["watcher"],
        "it logged out rather than just dropping the link (that would take the grace)"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn attributes_prints_the_set_then_who_changed_what() {
    let server = start_server().await;
    let url = server.url();
    let (alice, _alice_events) = login(&url, "alice").await;
    alice
        .set_channel_attributes("lobby", attrs(&[("topic", "hello")]), NOTIFY)
        .await
        .unwrap();
    let mut watcher = Example::start(
        "attributes",
        &["--server", &url, "--uid", "watcher", "lobby"],
    )
    .await;
    watcher
        .expect_line(&format!("watching lobby as watcher on {url} (1 members)"))
        .await;
    let topic = watcher
        .expect("the topic", |l| l.starts_with("topic"))
        .await;
    assert!(
        topic.starts_with(r#"topic = "hello" (by alice at "#),
        "{topic}"
    );

    let (bob, _bob_events) = login(&url, "bob").await;
    bob.add_or_update_channel_attributes(
        "lobby",
        attrs(&[("topic", "bye"), ("mode", "quiet")]),
        NOTIFY,
    )
    .await
    .unwrap();
    let mode = watcher.expect("mode", |l| l.starts_with("mode")).await;
    assert!(mode.starts_with(r#"mode = "quiet" (by bob at "#), "{mode}");
    let topic = watcher
        .expect("the topic", |l| l.starts_with("topic"))
        .await;
    assert!(topic.starts_with(r#"topic = "bye" (by bob at "#), "{topic}");
    alice
        .delete_channel_attributes_by_keys("lobby", &["mode"], NOTIFY)
        .await
        .unwrap();
    watcher.expect_line("mode removed").await;

    let status = watcher.interrupt().await;
    assert!(status.success(), "Ctrl-C is a normal end: {status}");
    assert_eq!(watcher.rest().await, ["logged out"]);
    let counts = bob.get_channel_member_count(&["lobby"]).await.unwrap();
    assert_eq!(counts[0].member_count, 0, "logging out left the channel");
    server.shutdown().await;
}

#[tokio::test]
async fn bot_answers_direct_messages_and_mentions() {
    let server = start_server().await;
    let url = server.url();
    let (alice, mut alice_events) = login(&url, "alice").await;
    let general = alice.create_channel("general").unwrap();
    general.join().await.unwrap();
    // The bot's own output is its business (it may change): it is ready
    // once it has joined the channel.
    let mut bot = Example::start("bot", &[&url, "echobot", "general"]).await;
    wait_for(&mut alice_events, |e| match e {
        ClientEvent::Channel {
            event: ChannelEvent::MemberJoined(who),
            ..
        } if who.as_str() == "echobot" => Some(()),
        _ => None,
    })
    .await;

    alice
        .send_message_to_peer(
            RtmMessage::text("hi"),
            "echobot",
            SendMessageOptions::default(),
        )
        .await
        .unwrap();
    let reply = wait_for(&mut alice_events, |e| match e {
        ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text },
            peer_id,
            ..
        } if peer_id.as_str() == "echobot" => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reply, "you said: hi");

    general
        .send_message(RtmMessage::text("hey echobot"))
        .await
        .unwrap();
    let echo = wait_for(&mut alice_events, |e| match e {
        ClientEvent::Channel {
            event:
                ChannelEvent::ChannelMessage {
                    message: RtmMessage::Text { text },
                    member_id,
                    ..
                },
            ..
        } if member_id.as_str() == "echobot" => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(echo, "alice: hey echobot");
    bot.kill().await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_arguments_get_the_usage_and_a_nonzero_exit() {
    for (name, args, problem) in [
        ("presence", &[][..], "--uid WATCHER is required"),
        ("presence", &["--uid", "w"][..], "name at least one user"),
        (
            "presence",
            &["--uid", "w", "--bogus", "a"][..],
            "unknown option --bogus",
        ),
        ("presence", &["--uid", "w", "café"][..], "user \"café\""),
        ("presence", &["--uid"][..], "--uid needs a value"),
        ("attributes", &[][..], "name the CHANNEL"),
        ("attributes", &["a", "b"][..], "one channel only"),
    ] {
        let mut example = Example::start(name, args).await;
        let status = example.exit().await;
        let stderr = example.stderr().await;
        assert_eq!(status.code(), Some(2), "{name} {args:?}: {stderr}");
        assert!(stderr.contains(problem), "{name} {args:?}: {stderr}");
        assert!(stderr.contains(&format!("usage: {name}")), "{stderr}");
    }
    for name in ["presence", "attributes"] {
        let mut example = Example::start(name, &["--help"]).await;
        assert!(example.exit().await.success());
        let usage = example.lines.recv().await.unwrap_or_default();
        assert!(usage.starts_with(&format!("usage: {name}")), "{usage}");
    }
}

#[tokio::test]
async fn no_server_is_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    for (name, args) in [
        ("presence", vec!["--server", &url, "--uid", "w", "alice"]),
        ("attributes", vec!["--server", &url, "lobby"]),
    ] {
        let mut example = Example::start(name, &args).await;
        let status = example.exit().await;
        let stderr = example.stderr().await;
        assert_eq!(status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("cannot connect to"), "{name}: {stderr}");
        assert!(stderr.contains("rtm serve"), "{name}: {stderr}");
    }
}

/// The `rtm serve` binary, as a user starts it, on a port of its own with
/// a home of its own (no user config, data or logs are touched).
#[cfg(feature = "cli")]
struct RtmServe {
    child: Child,
    home: PathBuf,
    url: String,
}

#[cfg(feature = "cli")]
impl RtmServe {
    async fn start() -> RtmServe {
        let home = std::env::temp_dir().join(format!("rtm-examples-serve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("create the server's home");
        // A port that was free a moment ago.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port");
        let child = Command::new(env!("CARGO_BIN_EXE_rtm"))
            .args(["serve", "--listen", &addr.to_string()])
            .env("RTM_HOME", &home)
            .env_remove("RTM_APP_CERTIFICATE")
            .env_remove("RTM_LISTEN")
            .env_remove("RTM_DATA")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start rtm serve");
        tokio::time::timeout(WAIT, async {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("rtm serve listens");
        RtmServe {
            child,
            home,
            url: format!("ws://{addr}"),
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn presence_works_against_rtm_serve() {
    let server = RtmServe::start().await;
    let mut monitor = Example::start(
        "presence",
        &["--server", &server.url, "--uid", "watcher", "alice"],
    )
    .await;
    monitor.expect_line("alice OFFLINE (initial)").await;
    let (alice, _alice_events) = login(&server.url, "alice").await;
    monitor.expect_line("alice ONLINE").await;
    alice.logout().await.unwrap();
    monitor.expect_line("alice OFFLINE").await;
    assert!(monitor.interrupt().await.success());
    assert_eq!(monitor.rest().await, ["logged out"]);
    server.stop().await;
}

/// Resident and peak memory of a process, in kB, from /proc.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A measurement, run by hand: the bot's memory while its channel gets two
/// bursts of 1,800 × 16 KB messages that it never answers (an SDK whose
/// event queues grow without bound shows it here).
/// `cargo test --test examples -- --ignored --nocapture bot_memory`
#[tokio::test]
#[ignore = "measurement; run by hand"]
async fn bot_memory_under_channel_bursts() {
    const BURST: usize = 1800;
    let mut config = test_config();
    // One sender sends the burst as fast as it can.
    config.limit_scale = 100;
    let server = start_server_with(config).await;
    let url = server.url();
    let (alice, mut alice_events) = login(&url, "alice").await;
    let general = alice.create_channel("general").unwrap();
    general.join().await.unwrap();
    let bot = Example::start("bot", &[&url, "echobot", "general"]).await;
    wait_for(&mut alice_events, |e| match e {
        ClientEvent::Channel {
            event: ChannelEvent::MemberJoined(who),
            ..
        } if who.as_str() == "echobot" => Some(()),
        _ => None,
    })
    .await;
    let pid = bot.child.id().expect("the bot is running");
    let (rss, _) = memory_kb(pid);
    println!("bot idle: {rss} kB");
    let body = "x".repeat(16 * 1024);
    for burst in 1..=2 {
        for chunk in (0..BURST).collect::<Vec<_>>().chunks(100) {
            let sends = chunk
                .iter()
                .map(|_| general.send_message(RtmMessage::text(body.clone())));
            for sent in futures_util::future::join_all(sends).await {
                sent.expect("send a channel message");
            }
        }
        // Let the bot take in what was sent.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let (rss, peak) = memory_kb(pid);
        println!("bot after burst {burst} of {BURST} x 16 KB: {rss} kB (peak {peak} kB)");
    }
}
