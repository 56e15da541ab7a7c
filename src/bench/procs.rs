//! Processes: the servers under test (spawned, measured through /proc, killed
//! on drop) and the load worker processes that spread clients past one
//! process's file limit, with the start barrier they share.
//!
//! Worker protocol (one line each, over the worker's stdin/stdout):
//! worker → `READY` when its clients are set up; coordinator → `GO <wall µs>`
//! the common start time; worker → `RESULT <Partial as JSON>` at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

use super::scenarios::Ctx;
use super::stats::Partial;
use super::wire::Target;

/// A server under test, killed on drop.
pub struct Spawned {
    child: Child,
    pub url: String,
    pub pid: Option<u32>,
    pub home: PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Resident memory of a process in kB (VmRSS of /proc/PID/status).
pub fn rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS:")
}

/// The most resident memory a process has had since it started, in kB
/// (VmHWM of /proc/PID/status): catches a peak between two samples of
/// [`rss_kb`].
pub fn hwm_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmHWM:")
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&status, key)
}

/// The kB value of `key` (with its colon) in the text of /proc/PID/status.
pub(super) fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time a process has used so far (user + system), in seconds, from
/// /proc/PID/stat (fields 14 and 15, in clock ticks).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The clock ticks per second of /proc's times: USER_HZ, which Linux fixes
/// at 100 on every architecture this runs on (what `sysconf(_SC_CLK_TCK)`
/// answers there).
const USER_HZ: f64 = 100.0;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn rtm_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the rtm binary")
}

/// Config of the spawned `rtm serve`: call-frequency limits lifted (a load
/// client sends far more than a person), a deep queue, no connection caps.
/// `connect_rate_per_ip` goes last: a server that does not know the key yet
/// is retried without it.
pub const RTM_BENCH_CONFIG: &str = "limit_scale = 100000\nqueue_frames = 65536\n\
max_connections = 0\nmax_connections_per_ip = 0\nlog_level = \"warn\"\nconnect_rate_per_ip = 0\n";

/// nats-server with its WebSocket listener (plain, loopback).
fn nats_config(port: u16, ws_port: u16) -> String {
    format!(
        "listen: 127.0.0.1:{port}\nmax_connections: 100000\nwebsocket {{\n  listen: \"127.0.0.1:{ws_port}\"\n  no_tls: true\n  compression: false\n}}\n"
    )
}

/// Starts the server for `target` on a free loopback port and waits until it
/// accepts connections. `peers_dir` holds the socket.io script.
pub async fn spawn(target: Target, peers_dir: &Path) -> anyhow::Result<Spawned> {
    spawn_node(target, peers_dir, None).await
}

/// [`spawn`], and for rtm with `cluster` (a Redis URL) as a node of that
/// cluster (`rtm serve --cluster`).
async fn spawn_node(
    target: Target,
    peers_dir: &Path,
    cluster: Option<&str>,
) -> anyhow::Result<Spawned> {
    match spawn_with(target, peers_dir, RTM_BENCH_CONFIG, cluster).await {
        Err(e) if target == Target::Rtm => {
            let older = RTM_BENCH_CONFIG.replace("connect_rate_per_ip = 0\n", "");
            spawn_with(target, peers_dir, &older, cluster)
                .await
                .map_err(|_| e)
        }
        r => r,
    }
}

/// Starts `n` rtm servers, each on its own free port with its own data
/// directory; with `cluster` (a Redis URL) as nodes of that one cluster.
pub async fn spawn_rtm_nodes(n: usize, cluster: Option<&str>) -> anyhow::Result<Vec<Spawned>> {
    let mut nodes = Vec::new();
    for _ in 0..n.max(1) {
        nodes.push(spawn_node(Target::Rtm, Path::new("."), cluster).await?);
    }
    Ok(nodes)
}

/// Starts `rtm serve` with `config` (server.toml text) on a free loopback
/// port, with its own temporary data directory that is deleted on drop.
pub async fn spawn_rtm(config: &str) -> anyhow::Result<Spawned> {
    spawn_with(Target::Rtm, Path::new("."), config, None).await
}

async fn spawn_with(
    target: Target,
    peers_dir: &Path,
    rtm_config: &str,
    cluster: Option<&str>,
) -> anyhow::Result<Spawned> {
    let port = free_port()?;
    let home = std::env::temp_dir().join(format!(
        "rtm-bench-{}-{}-{port}",
        std::process::id(),
        target.name()
    ));
    std::fs::create_dir_all(&home)?;
    let mut cmd = match target {
        Target::Rtm => {
            let cfg = home.join("server.toml");
            std::fs::write(&cfg, rtm_config)?;
            let mut c = Command::new(rtm_exe()?);
            c.args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--log-level",
                "warn",
            ])
            .arg("--config")
            .arg(&cfg)
            .arg("--data")
            .arg(home.join("data"))
            .env("RTM_HOME", &home);
            if let Some(redis) = cluster {
                c.arg("--cluster").arg(redis);
            }
            c
        }
        Target::Bare => {
            let mut c = Command::new(rtm_exe()?);
            c.args(["bench", "--bare-server", &format!("127.0.0.1:{port}")]);
            c
        }
        Target::Nats => {
            let cfg = home.join("nats.conf");
            std::fs::write(&cfg, nats_config(free_port()?, port))?;
            let mut c = Command::new("nats-server");
            c.arg("-c").arg(&cfg);
            c
        }
        Target::Socketio => {
            let script = peers_dir.join("socketio.js");
            if !peers_dir.join("node_modules").join("socket.io").exists() {
                bail!(
                    "socket.io is not installed in {}: run `npm ci` there (bench/compare.sh does)",
                    peers_dir.display()
                );
            }
            let mut c = Command::new("node");
            c.arg(script).arg(port.to_string());
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let child = cmd.spawn().with_context(|| {
        format!(
            "cannot start the {} server (is {} installed? bench/compare.sh installs it)",
            target.name(),
            match target {
                Target::Nats => "nats-server",
                Target::Socketio => "node",
                _ => "rtm",
            }
        )
    })?;
    let pid = child.id();
    let mut spawned = Spawned {
        child,
        url: format!("ws://127.0.0.1:{port}"),
        pid,
        home,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = spawned.child.try_wait() {
            bail!(
                "the spawned {} server exited at start ({status})",
                target.name()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the spawned {} server did not listen on {}",
                target.name(),
                spawned.url
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(spawned)
}

/// Load worker processes (`rtm bench --worker CTX`).
pub struct Workers {
    procs: Vec<(Child, ChildStdin, tokio::io::Lines<BufReader<ChildStdout>>)>,
}

impl Workers {
    pub fn spawn(ctxs: &[Ctx]) -> anyhow::Result<Workers> {
        let mut procs = Vec::new();
        for ctx in ctxs {
            let mut child = Command::new(rtm_exe()?)
                .args(["bench", "--worker", &serde_json::to_string(ctx)?])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("cannot start a load worker")?;
            let stdin = child.stdin.take().context("worker stdin")?;
            let stdout = child.stdout.take().context("worker stdout")?;
            procs.push((child, stdin, BufReader::new(stdout).lines()));
        }
        Ok(Workers { procs })
    }

    async fn line(
        lines: &mut tokio::io::Lines<BufReader<ChildStdout>>,
        what: &str,
    ) -> anyhow::Result<String> {
        lines
            .next_line()
            .await?
            .with_context(|| format!("a load worker ended before {what} (its error is above)"))
    }

    pub async fn ready(&mut self) -> anyhow::Result<()> {
        for (_, _, lines) in &mut self.procs {
            let l = Self::line(lines, "READY").await?;
            if l != "READY" {
                bail!("a load worker said {l:?} instead of READY");
            }
        }
        Ok(())
    }

    pub async fn go(&mut self, start_us: u64) -> anyhow::Result<()> {
        for (_, stdin, _) in &mut self.procs {
            stdin
                .write_all(format!("GO {start_us}\n").as_bytes())
                .await?;
            stdin.flush().await?;
        }
        Ok(())
    }

    pub async fn results(mut self) -> anyhow::Result<Vec<Partial>> {
        let mut out = Vec::new();
        for (child, _, lines) in &mut self.procs {
            let l = Self::line(lines, "its RESULT").await?;
            let json = l
                .strip_prefix("RESULT ")
                .with_context(|| format!("a load worker said {l:?} instead of RESULT"))?;
            out.push(serde_json::from_str(json)?);
            let _ = child.wait().await;
        }
        Ok(out)
    }
}
