//! What a run costs Redis: `INFO commandstats`, `INFO stats` and
//! `INFO memory` read before and after the measured phase over a plain TCP
//! connection (one inline command, one bulk-string reply), so the count
//! does not depend on the redis client the server uses.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One reading of a Redis server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Calls per command (`cmdstat_<name>:calls=N`), `info` left out (the
    /// bench's own readings).
    pub calls: BTreeMap<String, u64>,
    pub used_memory: u64,
    pub instantaneous_ops_per_sec: u64,
}

impl Snapshot {
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }
}

/// What the measured phase cost Redis.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RedisCost {
    /// Commands Redis ran between the two readings (all nodes, including
    /// their background work such as liveness keys).
    pub commands: u64,
    /// commands ÷ messages sent (fanout: channel messages; peer: peer
    /// messages, two per round trip; presence: logins + logouts).
    pub per_message: Option<f64>,
    /// commands ÷ deliveries received.
    pub per_delivery: Option<f64>,
    /// commands ÷ the measured window's seconds.
    pub ops_per_s: f64,
    /// The busiest commands: `name=calls`, most first.
    pub top: Vec<String>,
    pub used_memory_before: u64,
    pub used_memory_after: u64,
    /// instantaneous_ops_per_sec at the end of the measured phase.
    pub instantaneous_ops_per_sec: u64,
}

impl RedisCost {
    pub fn between(
        before: &Snapshot,
        after: &Snapshot,
        messages: u64,
        deliveries: u64,
        window_s: f64,
    ) -> RedisCost {
        let mut diff: Vec<(String, u64)> = after
            .calls
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.saturating_sub(*before.calls.get(k).unwrap_or(&0)),
                )
            })
            .filter(|(_, v)| *v > 0)
            .collect();
        diff.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let commands: u64 = diff.iter().map(|(_, v)| v).sum();
        let per = |n: u64| (n > 0).then(|| commands as f64 / n as f64);
        RedisCost {
            commands,
            per_message: per(messages),
            per_delivery: per(deliveries),
            ops_per_s: if window_s > 0.0 {
                commands as f64 / window_s
            } else {
                0.0
            },
            top: diff
                .iter()
                .take(8)
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            used_memory_before: before.used_memory,
            used_memory_after: after.used_memory,
            instantaneous_ops_per_sec: after.instantaneous_ops_per_sec,
        }
    }
}

/// HOST:PORT of a `redis://[user:pass@]HOST:PORT[/DB]` URL (no password
/// support: the bench talks to a loopback Redis it was given).
pub fn host_port(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("redis://")
        .with_context(|| format!("{url}: expected redis://HOST:PORT"))?;
    if rest.contains('@') {
        bail!("{url}: the bench reads Redis without a password");
    }
    let hp = rest.split('/').next().unwrap_or_default();
    if hp.is_empty() {
        bail!("{url}: expected redis://HOST:PORT");
    }
    Ok(if hp.contains(':') {
        hp.to_string()
    } else {
        format!("{hp}:6379")
    })
}

/// Parses the text of `INFO commandstats` + `INFO stats` + `INFO memory`.
pub fn parse_info(text: &str) -> Snapshot {
    let mut s = Snapshot::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("cmdstat_") {
            let Some((name, fields)) = rest.split_once(':') else {
                continue;
            };
            if name == "info" {
                continue;
            }
            let calls = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            s.calls.insert(name.to_string(), calls);
        } else if let Some(n) = line.strip_prefix("used_memory:") {
            s.used_memory = n.parse().unwrap_or(0);
        } else if let Some(n) = line.strip_prefix("instantaneous_ops_per_sec:") {
            s.instantaneous_ops_per_sec = n.parse().unwrap_or(0);
        }
    }
    s
}

async fn info(addr: &str, section: &str) -> anyhow::Result<String> {
    let mut conn = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach Redis at {addr}"))?;
    conn.write_all(format!("INFO {section}\r\n").as_bytes())
        .await?;
    let mut r = BufReader::new(conn);
    let mut head = String::new();
    r.read_line(&mut head).await?;
    let len: usize = head
        .trim()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("Redis answered {head:?} to INFO"))?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Reads the counters of the Redis at `url`.
pub async fn snapshot(url: &str) -> anyhow::Result<Snapshot> {
    let addr = host_port(url)?;
    let mut text = String::new();
    for section in ["commandstats", "stats", "memory"] {
        let t = tokio::time::timeout(Duration::from_secs(5), info(&addr, section))
            .await
            .context("Redis did not answer INFO in 5 s")??;
        text.push_str(&t);
    }
    Ok(parse_info(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_subtracts() {
        let a = parse_info(
            "# Commandstats\r\ncmdstat_publish:calls=10,usec=5\r\ncmdstat_info:calls=3,usec=1\r\n\
             used_memory:1000\r\ninstantaneous_ops_per_sec:7\r\n",
        );
        let b = parse_info(
            "cmdstat_publish:calls=30,usec=9\r\ncmdstat_evalsha:calls=5,usec=9\r\n\
             cmdstat_info:calls=9,usec=1\r\nused_memory:2000\r\ninstantaneous_ops_per_sec:9\r\n",
        );
        assert_eq!(a.total(), 10);
        let c = RedisCost::between(&a, &b, 20, 50, 2.0);
        assert_eq!(c.commands, 25);
        assert_eq!(c.per_message, Some(1.25));
        assert_eq!(c.per_delivery, Some(0.5));
        assert_eq!(c.top, vec!["publish=20", "evalsha=5"]);
        assert_eq!((c.used_memory_before, c.used_memory_after), (1000, 2000));
        assert_eq!(
            host_port("redis://127.0.0.1:7000/0").unwrap(),
            "127.0.0.1:7000"
        );
        assert_eq!(host_port("redis://localhost").unwrap(), "localhost:6379");
    }
}
