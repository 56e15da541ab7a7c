//! `rtm serve` as a real process (for tests that kill it with SIGKILL).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `rtm serve`; killed (SIGKILL) when dropped.
pub struct ServeProcess {
    child: Child,
    pub url: String,
    pub port: u16,
    /// What it printed before "press Ctrl-C".
    pub banner: Vec<String>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl ServeProcess {
    /// Starts `rtm serve --listen 127.0.0.1:PORT --data DATA ARGS…` with
    /// `RTM_HOME=home` (its `config/server.toml` is read) and waits until
    /// it listens.
    pub fn start(home: &Path, data: &Path, port: u16, args: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rtm"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .args(args)
            .env("RTM_HOME", home)
            .env("RTM_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rtm serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            let done = line.starts_with("press Ctrl-C");
            banner.push(line);
            if done {
                break;
            }
        }
        assert!(
            banner.iter().any(|l| l.contains("listening")),
            "rtm serve did not start: {banner:?}"
        );
        // Keep draining so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServeProcess {
            child,
            url: format!("ws://127.0.0.1:{port}"),
            port,
            banner,
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
