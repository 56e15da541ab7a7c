//! The server's wall clock, for everything that goes on the wire or expires:
//! message timestamps, offline-message and token expiry, the empty-since
//! stamps of channel attributes. It is read afresh each time, because the
//! monotonic clock that tokio's timers follow stops while the machine sleeps,
//! and the server often runs inside `rtm chat` on a laptop. [`Timing`] puts
//! it together with the heartbeat timings that the hub and every connection
//! share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> u64;
}

/// The machine's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock for tests: it follows tokio time (so paused-time tests move it by
/// advancing), and [`jump`](Self::jump) moves it alone, as a wall clock moves
/// across a suspend that tokio time never sees.
#[derive(Debug, Default)]
pub struct TestClock {
    /// Total of the jumps so far, in milliseconds; owned by the test.
    jumped_ms: AtomicU64,
}

impl TestClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves this clock ahead by `by` without moving tokio time.
    pub fn jump(&self, by: Duration) {
        self.jumped_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        let (wall, base) = tokio_base();
        let followed = wall + Instant::now().duration_since(base);
        followed.as_millis() as u64 + self.jumped_ms.load(Ordering::Relaxed)
    }
}

/// The wall clock at the first use in this process and the tokio instant it
/// corresponds to: shared by every test clock, so two servers of one test
/// (a restart) agree on the time.
fn tokio_base() -> (Duration, Instant) {
    static BASE: OnceLock<(Duration, Instant)> = OnceLock::new();
    *BASE.get_or_init(|| {
        (
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            Instant::now(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_test_clock_follows_tokio_time_and_jumps() {
        let clock = TestClock::new();
        let t0 = clock.now_ms();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(clock.now_ms() - t0, 2000);
        clock.jump(Duration::from_secs(8 * 3600));
        assert_eq!(clock.now_ms() - t0, 2000 + 8 * 3600 * 1000);
    }
}

/// Time as the hub and every connection both go by: the hub announces the
/// heartbeat interval in the login reply, the connection keeps to it; both
/// stamp and expire by the same wall clock.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The wall clock for timestamps and expiry; tests put in a [`TestClock`].
    pub clock: Arc<dyn Clock>,
    /// How often the server pings each connection.
    pub heartbeat_interval: Duration,
    /// No traffic at all for this long means the link is dead; also how long
    /// a connection may wait for room to queue its own reply.
    pub heartbeat_timeout: Duration,
}
