//! The start line every load process waits at, so that all shards (the
//! coordinator's own and each worker process's) begin sending at one instant.

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

use super::stats::wall_us;

/// How a load process waits for the common start.
pub enum Barrier {
    /// The only process: start right away.
    Solo,
    /// The coordinator's own share of the load.
    Local {
        ready: Option<oneshot::Sender<()>>,
        go: Option<oneshot::Receiver<u64>>,
    },
    /// A worker process: `READY` on stdout, `GO` on stdin.
    Stdio,
}

impl Barrier {
    /// Says this process is set up; returns the start time (wall µs).
    pub async fn ready(&mut self) -> anyhow::Result<u64> {
        match self {
            Barrier::Solo => Ok(wall_us() + 50_000),
            Barrier::Local { ready, go } => {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                let go = go.take().context("barrier used twice")?;
                go.await.context("the coordinator gave up")
            }
            Barrier::Stdio => {
                let mut out = tokio::io::stdout();
                out.write_all(b"READY\n").await?;
                out.flush().await?;
                let mut line = String::new();
                BufReader::new(tokio::io::stdin())
                    .read_line(&mut line)
                    .await?;
                line.trim()
                    .strip_prefix("GO ")
                    .and_then(|t| t.parse().ok())
                    .with_context(|| format!("expected GO <µs> from the coordinator, got {line:?}"))
            }
        }
    }
}
