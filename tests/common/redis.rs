//! Real `redis-server` processes for the cluster and Redis-store tests: each
//! on a free loopback port, in its own directory, killed when dropped.
//!
//! When `redis-server` is not installed the tests that need it print a loud
//! notice and skip; with `RTM_REQUIRE_REDIS=1` (set by `.ci/run`, which
//! installs it) a missing server fails the test instead, so CI always runs
//! them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// The variable that turns a skip into a failure.
pub const REQUIRE_VAR: &str = "RTM_REQUIRE_REDIS";

/// A running `redis-server`; killed (and its directory removed) on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
    /// The `appendfsync` setting it runs with (`None`: no AOF at all).
    appendfsync: Option<&'static str>,
}

fn redis_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// Starts a server, or returns `None` after saying loudly why the calling
/// test skips (panics instead when `RTM_REQUIRE_REDIS=1`).
pub fn start(test: &str) -> Option<RedisServer> {
    start_with(test, None)
}

/// Like [`start`], with the append-only file on and this fsync policy
/// (`"always"`, `"everysec"`), so a restart keeps what was written.
pub fn start_durable(test: &str, appendfsync: &'static str) -> Option<RedisServer> {
    start_with(test, Some(appendfsync))
}

fn start_with(test: &str, appendfsync: Option<&'static str>) -> Option<RedisServer> {
    if redis_binary().is_none() {
        let msg = format!(
            "\n\n!!! SKIPPED {test}: redis-server is not installed.\n\
             !!! Install it (Debian/Ubuntu: apt-get install -y redis-server) to run the cluster tests;\n\
             !!! .ci/run installs it and sets {REQUIRE_VAR}=1 so that this skip fails there.\n"
        );
        if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
            panic!("{msg}");
        }
        eprintln!("{msg}");
        return None;
    }
    let dir = TempDir::new(&format!("redis-{test}"));
    let port = free_port();
    let mut server = RedisServer {
        child: None,
        port,
        dir,
        appendfsync,
    };
    server.spawn();
    Some(server)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .arg("--loglevel")
            .arg("warning")
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"));
        match self.appendfsync {
            Some(policy) => {
                cmd.args(["--appendonly", "yes", "--appendfsync", policy]);
            }
            None => {
                cmd.args(["--appendonly", "no"]);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                if s.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 16];
                    if let Ok(n) = s.read(&mut buf)
                        && buf[..n].starts_with(b"+PONG")
                    {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer PING within 10 s; see {}",
            self.port,
            self.dir.path().join("redis.log").display()
        );
    }

    /// `kill -9`: gone without a word, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (after [`kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs a command through `redis-cli` (for assertions on keys).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
