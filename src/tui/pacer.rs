//! Keeps the messenger's own calls under the server's call-frequency limits
//! (spec §11), and retries the ones the server still refuses "for now".
//!
//! After a reconnection the messenger asks for the members and attributes of
//! every joined channel at once: twenty channels are forty requests, while
//! the server takes 5 member lists per 2 s and 10 attribute reads per 5 s
//! and answers the rest TOO_OFTEN. The [`Pacer`] holds each kind of call to
//! its limit, in the order asked (a fair lock, one queue per kind), so they
//! go out as fast as the server takes them; a call refused anyway (a server
//! configured tighter than the defaults, or a link that dropped meanwhile)
//! is tried again after a growing pause, a few times, before its error is
//! shown.
//!
//! Time is `tokio::time`, so tests drive it with `tokio::time::pause()`.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::client::{ErrorKind, RtmError};

/// The kinds of paced calls, each with the server's default limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paced {
    /// `getMembers`: 5 per 2 s.
    Members,
    /// Channel-attribute reads: 10 per 5 s.
    ChannelAttributeReads,
    /// User-attribute reads: 40 per 5 s.
    UserAttributeReads,
    /// Subscribe / unsubscribe to presence: 10 per 5 s each (counted together here).
    Subscriptions,
    /// `queryPeersOnlineStatus`: 10 per 5 s.
    StatusQueries,
}

impl Paced {
    const ALL: [Paced; 5] = [
        Paced::Members,
        Paced::ChannelAttributeReads,
        Paced::UserAttributeReads,
        Paced::Subscriptions,
        Paced::StatusQueries,
    ];

    /// (calls, per window) as the server counts them by default.
    fn limit(self) -> (usize, Duration) {
        match self {
            Paced::Members => (5, Duration::from_secs(2)),
            Paced::ChannelAttributeReads => (10, Duration::from_secs(5)),
            Paced::UserAttributeReads => (40, Duration::from_secs(5)),
            Paced::Subscriptions => (10, Duration::from_secs(5)),
            Paced::StatusQueries => (10, Duration::from_secs(5)),
        }
    }
}

/// Added to every window: the server counts a call when it arrives, a
/// little after we send it, so a call sent exactly one window after the
/// oldest could still land inside the server's window.
const WINDOW_MARGIN: Duration = Duration::from_millis(100);
/// How many times a call refused "for now" is tried in all.
pub const ATTEMPTS: u32 = 5;
/// The pause before the first retry; it doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// One sliding window per kind of call.
#[derive(Debug)]
pub struct Pacer {
    /// Send times of the calls still inside each kind's window, oldest
    /// first, in the order of [`Paced::ALL`]. The lock is held while a call
    /// waits for its turn, so calls go out in the order they were asked.
    windows: Vec<Mutex<VecDeque<Instant>>>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            windows: Paced::ALL
                .iter()
                .map(|_| Mutex::new(VecDeque::new()))
                .collect(),
        }
    }
}

/// Refusals worth another try: the server's "too often", and a link that
/// dropped or did not answer (the SDK reconnects by itself).
pub fn is_transient(e: &RtmError) -> bool {
    matches!(e, RtmError::Timeout(_) | RtmError::ConnectionLost) || e.kind() == ErrorKind::TooOften
}

impl Pacer {
    /// Waits until one more call of `kind` fits in its window, and counts it.
    pub async fn acquire(&self, kind: Paced) {
        let (max, window) = kind.limit();
        let window = window + WINDOW_MARGIN;
        let i = Paced::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let mut sent = self.windows[i].lock().await;
        loop {
            let now = Instant::now();
            while sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                sent.pop_front();
            }
            match sent.front() {
                Some(oldest) if sent.len() >= max => {
                    tokio::time::sleep_until(*oldest + window).await;
                }
                _ => break,
            }
        }
        sent.push_back(Instant::now());
    }

    /// Runs `call` in its turn; tries again, after a growing pause, while it
    /// is refused for a reason that passes ([`is_transient`]), at most
    /// [`ATTEMPTS`] times in all.
    pub async fn run<T, F, Fut>(&self, kind: Paced, mut call: F) -> Result<T, RtmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RtmError>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            self.acquire(kind).await;
            match call().await {
                Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                    tracing::debug!(?kind, attempt, "retrying after {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorBody;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn calls_are_held_to_the_limit_in_the_order_asked() {
        let pacer = Arc::new(Pacer::default());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for n in 0..12u32 {
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                pacer.acquire(Paced::Members).await;
                (n, start.elapsed())
            }));
            // Let each queue up before the next, so the order is the asking order.
            tokio::task::yield_now().await;
        }
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        let window = Duration::from_secs(2) + WINDOW_MARGIN;
        for (n, at) in &done {
            // 5 at once, the next 5 one window later, the last 2 after two.
            assert_eq!(*at, window * (n / 5), "call {n}");
        }
        let mut sorted = done.clone();
        sorted.sort_by_key(|(_, at)| *at);
        assert_eq!(sorted, done, "in the order asked");
    }

    #[tokio::test(start_paused = true)]
    async fn too_often_is_retried_with_backoff_and_a_real_refusal_is_not() {
        let pacer = Pacer::default();
        let tries = AtomicU32::new(0);
        let start = Instant::now();
        let got = pacer
            .run(Paced::ChannelAttributeReads, || async {
                if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(RtmError::Server(ErrorBody::new(
                        ErrorKind::TooOften,
                        "slow down",
                    )))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(got, Ok(7));
        assert_eq!(tries.load(Ordering::SeqCst), 3);
        assert_eq!(start.elapsed(), Duration::from_millis(500 + 1000));

        let tries = AtomicU32::new(0);
        let refused: Result<(), _> = pacer
            .run(Paced::Members, || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(RtmError::Server(ErrorBody::new(
                    ErrorKind::NotInChannel,
                    "not a member",
                )))
            })
            .await;
        assert!(refused.is_err());
        assert_eq!(tries.load(Ordering::SeqCst), 1, "a real refusal is final");

        let tries = AtomicU32::new(0);
        let gave_up: Result<(), _> = pacer
            .run(Paced::Members, || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(RtmError::Timeout(10))
            })
            .await;
        assert_eq!(gave_up, Err(RtmError::Timeout(10)));
        assert_eq!(tries.load(Ordering::SeqCst), ATTEMPTS);
    }
}
