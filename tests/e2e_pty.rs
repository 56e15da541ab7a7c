//! End to end through the real binary: two `rtm chat` processes in
//! pseudo-terminals against a real server; alice sends, bob's screen shows it;
//! a mention shows as an unread count with a mention mark, rings bob's bell,
//! and is highlighted when bob jumps to it; quitting restores the terminal;
//! a restarted messenger shows the earlier conversation from its local
//! history, and with `--no-history` neither writes nor shows one; SIGTERM
//! and SIGHUP restore the terminal and log out; a file sent with /file is
//! saved with /save byte for byte.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// One `rtm chat` in a pseudo-terminal, its screen kept by a terminal emulator.
struct Chat {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    screen: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    home: std::path::PathBuf,
}

impl Chat {
    /// Starts `rtm chat` for `uid` with a fresh, empty RTM_HOME.
    fn start(server: &str, uid: &str) -> Chat {
        let home = std::env::temp_dir().join(format!("rtm-e2e-{}-{uid}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        Chat::start_in(server, uid, home, &[])
    }

    /// Starts `rtm chat` for `uid` with `home` as RTM_HOME, as it is (a
    /// restart sees what the last run left there), and extra flags.
    fn start_in(server: &str, uid: &str, home: std::path::PathBuf, flags: &[&str]) -> Chat {
        let (rows, cols) = (30, 120);
        let pty = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_rtm"));
        cmd.args(["chat", "--server", server, "--uid", uid]);
        cmd.args(flags);
        cmd.env("RTM_HOME", &home);
        cmd.env("TERM", "xterm-256color");
        // The emulator here answers no terminal queries: no graphics query.
        cmd.env("RTM_IMAGES", "blocks");
        let child = pty.slave.spawn_command(cmd).expect("spawn rtm chat");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let writer = pty.master.take_writer().expect("pty writer");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (screen.clone(), raw.clone());
        // The master must stay open while the child runs; the reader thread owns it.
        let master = pty.master;
        std::thread::spawn(move || {
            let _keep = master;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().process(&buf[..n]);
                r.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Chat {
            child,
            writer,
            screen,
            raw,
            home,
        }
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.contents().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "screen never showed {text:?}; it shows:\n{}",
            self.contents()
        );
    }

    fn type_line(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
        self.writer.write_all(b"\r").unwrap();
        self.writer.flush().unwrap();
    }

    fn ctrl_c(&mut self) {
        self.writer.write_all(&[0x03]).unwrap();
        self.writer.flush().unwrap();
    }

    fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "rtm chat did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_messages_bob_and_bob_sees_it_on_screen() {
    let server = common::start_server().await;
    let url = server.url();
    let (mut alice, mut bob) = tokio::task::spawn_blocking(move || {
        let alice = Chat::start(&url, "alice");
        let bob = Chat::start(&url, "bob");
        alice.wait_for("CONNECTED");
        bob.wait_for("CONNECTED");
        (alice, bob)
    })
    .await
    .unwrap();
    let (alice, bob) = tokio::task::spawn_blocking(move || {
        alice.type_line("/msg bob hello from the pty");
        bob.wait_for("alice: hello from the pty");
        // And back, in the conversation bob now has open.
        bob.type_line("hi alice");
        alice.wait_for("bob: hi alice");
        // Quitting restores the terminal: raw mode off and the main screen back.
        for chat in [&mut alice, &mut bob] {
            chat.ctrl_c();
            let status = chat.wait_exit();
            assert!(status.success(), "exit status {status:?}");
            let raw = chat.raw.lock().unwrap().clone();
            let text = String::from_utf8_lossy(&raw);
            let entered = text
                .rfind("\x1b[?1049h")
                .expect("entered the alternate screen");
            let left = text
                .rfind("\x1b[?1049l")
                .expect("left the alternate screen");
            assert!(
                left > entered,
                "the alternate screen was left after it was entered"
            );
            assert!(!chat.screen.lock().unwrap().screen().alternate_screen());
        }
        (alice, bob)
    })
    .await
    .unwrap();
    drop((alice, bob));
    server.shutdown().await;
}

/// The style of the cell where `text` starts on the screen.
fn cell_style(chat: &Chat, text: &str) -> (vt100::Color, bool) {
    let parser = chat.screen.lock().unwrap();
    let screen = parser.screen();
    let (rows, cols) = screen.size();
    for row in 0..rows {
        let line = screen.contents_between(row, 0, row, cols);
        if let Some(byte) = line.find(text) {
            let col = line[..byte].chars().count() as u16;
            let cell = screen.cell(row, col).expect("a cell");
            return (cell.bgcolor(), cell.bold());
        }
    }
    panic!("{text:?} not on screen:\n{}", screen.contents());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_shows_as_unread_and_highlighted_on_the_other_screen() {
    let server = common::start_server().await;
    let url = server.url();
    tokio::task::spawn_blocking(move || {
        let mut alice = Chat::start(&url, "alice2");
        let mut bob = Chat::start(&url, "bob2");
        alice.wait_for("CONNECTED");
        bob.wait_for("CONNECTED");
        alice.type_line("/join lounge");
        alice.wait_for("joined #lounge");
        bob.type_line("/join lounge");
        bob.wait_for("joined #lounge");
        // bob looks at another channel while alice names him in #lounge.
        bob.type_line("/join quiet");
        bob.wait_for("joined #quiet");
        let bells_before = bob
            .raw
            .lock()
            .unwrap()
            .iter()
            .filter(|b| **b == 0x07)
            .count();
        alice.type_line("hello @bob2, can you review?");
        bob.wait_for("#lounge (2) [1 @1]");
        let bells = bob
            .raw
            .lock()
            .unwrap()
            .iter()
            .filter(|b| **b == 0x07)
            .count();
        assert!(bells > bells_before, "the mention rang bob's bell");
        // Alt-A jumps to it: the line carries the mark and the mention style.
        bob.writer.write_all(b"\x1ba").unwrap();
        bob.writer.flush().unwrap();
        bob.wait_for("» alice2: hello @bob2, can you review?");
        let (bg, bold) = cell_style(&bob, "hello @bob2");
        assert_ne!(bg, vt100::Color::Default, "the mention has a background");
        assert!(bold, "and is bold");
        assert!(
            !bob.contents().contains("[1 @1]"),
            "the unread count is cleared"
        );
        for chat in [&mut alice, &mut bob] {
            chat.ctrl_c();
            assert!(chat.wait_exit().success());
        }
    })
    .await
    .unwrap();
    server.shutdown().await;
}

/// The names of the history files in a messenger's data dir.
fn history_files(home: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(home.join("data"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("history-"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_the_messenger_shows_the_earlier_conversation_unless_no_history() {
    // alice logs in three times within a second or two.
    let mut config = common::test_config();
    config.limit_scale = 10;
    let server = common::start_server_with(config).await;
    let url = server.url();
    tokio::task::spawn_blocking(move || {
        let mut alice = Chat::start(&url, "alice3");
        // bob keeps no history at all: no file may appear in his data dir.
        let bob_home = std::env::temp_dir().join(format!("rtm-e2e-{}-bob3", std::process::id()));
        let _ = std::fs::remove_dir_all(&bob_home);
        let mut bob = Chat::start_in(&url, "bob3", bob_home, &["--no-history"]);
        alice.wait_for("CONNECTED");
        bob.wait_for("CONNECTED");
        alice.type_line("/msg bob3 remember this");
        bob.wait_for("alice3: remember this");
        bob.type_line("noted, alice");
        alice.wait_for("bob3: noted, alice");
        for chat in [&mut alice, &mut bob] {
            chat.ctrl_c();
            assert!(chat.wait_exit().success());
        }
        assert_eq!(history_files(&alice.home), ["history-alice3.sqlite3"]);
        assert!(
            history_files(&bob.home).is_empty(),
            "--no-history wrote a file"
        );

        // Again with the same home: the conversation is back, opened as the
        // most recent one, both sides of it.
        let home = alice.home.clone();
        drop(alice);
        let mut alice = Chat::start_in(&url, "alice3", home.clone(), &[]);
        alice.wait_for("bob3: noted, alice");
        alice.wait_for("alice3: remember this");
        alice.ctrl_c();
        assert!(alice.wait_exit().success());
        drop(alice);

        // With --no-history the same home shows none of it.
        let mut alice = Chat::start_in(&url, "alice3", home, &["--no-history"]);
        alice.wait_for("CONNECTED");
        // A round trip through the server after the login: a history load
        // would have arrived by the time its answer shows.
        alice.type_line("/status bob3");
        alice.wait_for("bob3: offline");
        let screen = alice.contents();
        assert!(
            !screen.contains("remember this") && !screen.contains("noted, alice"),
            "--no-history showed the history:\n{screen}"
        );
        alice.ctrl_c();
        assert!(alice.wait_exit().success());
    })
    .await
    .unwrap();
    server.shutdown().await;
}

/// Sends `signal` ("TERM", "HUP") to a messenger's process.
fn send_signal(chat: &Chat, signal: &str) {
    let pid = chat.child.process_id().expect("the messenger's pid");
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// `kill <pid>` (SIGTERM) and a closed terminal window (SIGHUP) end the
/// messenger like Ctrl-C: the alternate screen and all-motion mouse tracking
/// are switched off, and it logs out, so a peer that watches sees "offline"
/// at once, never "unreachable" (which lasts the 30 s grace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sighup_restore_the_terminal_and_log_out() {
    let server = common::start_server().await;
    let url = server.url();
    tokio::task::spawn_blocking(move || {
        let mut bob = Chat::start(&url, "bob5");
        let mut alice = Chat::start(&url, "alice5");
        let mut carol = Chat::start(&url, "carol5");
        for chat in [&bob, &alice, &carol] {
            chat.wait_for("CONNECTED");
        }
        bob.type_line("/watch alice5 carol5");
        bob.wait_for("watching alice5, carol5");
        // Answered after the subscription's first report: once this shows,
        // bob knows both are online, and a change is news.
        bob.type_line("/status alice5 carol5");
        bob.wait_for("alice5: online · carol5: online");
        for (chat, signal, name) in [
            (&mut alice, "TERM", "alice5"),
            (&mut carol, "HUP", "carol5"),
        ] {
            send_signal(chat, signal);
            let status = chat.wait_exit();
            assert!(status.success(), "SIG{signal}: exit status {status:?}");
            let raw = chat.raw.lock().unwrap().clone();
            let text = String::from_utf8_lossy(&raw);
            let at = |seq: &str| text.rfind(seq);
            let entered = at("\x1b[?1049h").expect("entered the alternate screen");
            for off in ["\x1b[?1049l", "\x1b[?1003l", "\x1b[?1000l", "\x1b[?2004l"] {
                let left = at(off).unwrap_or_else(|| panic!("SIG{signal}: {off:?} never sent"));
                assert!(left > entered, "SIG{signal}: {off:?} after entering");
            }
            assert!(!chat.screen.lock().unwrap().screen().alternate_screen());
            bob.wait_for(&format!("{name} is offline"));
            assert!(
                !bob.contents().contains(&format!("{name} is unreachable")),
                "SIG{signal}: logged out, not dropped"
            );
        }
        bob.ctrl_c();
        assert!(bob.wait_exit().success());
    })
    .await
    .unwrap();
    server.shutdown().await;
}

/// A call through the real binaries: bob's screen rings with the text and
/// a countdown, Ctrl-Y accepts, both conversations keep the call's line;
/// a refusal carries its response; a call to someone offline fails at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rings_on_the_other_screen_and_is_answered() {
    let server = common::start_server().await;
    let url = server.url();
    let (alice, bob) = tokio::task::spawn_blocking(move || {
        let mut alice = Chat::start(&url, "alice");
        let mut bob = Chat::start(&url, "bob");
        alice.wait_for("CONNECTED");
        bob.wait_for("CONNECTED");
        alice.type_line("/call bob lunch?");
        bob.wait_for("alice is calling ·");
        bob.wait_for("lunch?");
        alice.wait_for("bob's phone rings");
        // Ctrl-Y.
        bob.writer.write_all(&[0x19]).unwrap();
        bob.writer.flush().unwrap();
        alice.wait_for("you called bob (lunch?) — accepted");
        bob.wait_for("alice called (lunch?) — accepted");

        alice.type_line("/call bob again?");
        bob.wait_for("alice is calling ·");
        bob.type_line("/refuse busy now");
        alice.wait_for("you called bob (again?) — refused: busy now");

        alice.type_line("/call nobody-here");
        alice.wait_for("call to nobody-here failed: peer offline");
        (alice, bob)
    })
    .await
    .unwrap();
    drop((alice, bob));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_with_file_is_saved_with_save_byte_for_byte() {
    let dir = std::env::temp_dir().join(format!("rtm-e2e-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("saved")).unwrap();
    let mut config = common::test_config();
    config.hub.media.dir = Some(dir.join("media"));
    let server = common::start_server_with(config).await;
    let url = server.url();
    // 300 KB of varied bytes: more than one transfer chunk.
    let bytes: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let source = dir.join("report.bin");
    std::fs::write(&source, &bytes).unwrap();
    let saved_dir = dir.join("saved");
    let (alice, bob) = tokio::task::spawn_blocking(move || {
        let mut alice = Chat::start(&url, "alice");
        let mut bob = Chat::start(&url, "bob");
        alice.wait_for("CONNECTED");
        bob.wait_for("CONNECTED");
        alice.type_line("/msg bob a file is coming");
        bob.wait_for("alice: a file is coming");
        alice.type_line(&format!("/file {}", source.display()));
        // Sent: alice's line turns into the file's line; bob sees it.
        alice.wait_for("alice: ▤ report.bin · 293 KB");
        bob.wait_for("alice: ▤ report.bin · 293 KB");
        bob.type_line(&format!("/save {}", saved_dir.display()));
        bob.wait_for("saved to");
        // Saved again: the name is taken, so " (1)" — nothing overwritten.
        bob.type_line(&format!("/save {}", saved_dir.display()));
        bob.wait_for("report (1).bin");
        (alice, bob)
    })
    .await
    .unwrap();
    assert_eq!(std::fs::read(dir.join("saved/report.bin")).unwrap(), bytes);
    assert_eq!(
        std::fs::read(dir.join("saved/report (1).bin")).unwrap(),
        bytes
    );
    drop((alice, bob));
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown().await;
}
