//! Sliding-window call-frequency limits (spec §11): one set per session, and
//! the login limits one server shares across its connections.
//!
//! Time comes from `tokio::time::Instant`, so tests drive it with
//! `tokio::time::pause()` instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::{ErrorBody, ErrorKind, Uid};

/// At most `max` events in any window of length `window`.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    max: usize,
    window: Duration,
    /// Times of the accepted events still inside the window, oldest first.
    stamps: VecDeque<Instant>,
}

impl SlidingWindow {
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            stamps: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&front) = self.stamps.front() {
            if now.duration_since(front) >= self.window {
                self.stamps.pop_front();
            } else {
                break;
            }
        }
    }

    /// True when the window holds as many events as it allows.
    pub fn is_full(&mut self) -> bool {
        self.expire(Instant::now());
        self.stamps.len() >= self.max
    }

    /// True when no event is inside the window any more.
    pub fn is_idle(&mut self) -> bool {
        self.expire(Instant::now());
        self.stamps.is_empty()
    }

    /// Records one event if it fits; otherwise records nothing and returns false.
    pub fn try_acquire(&mut self) -> bool {
        let now = Instant::now();
        self.expire(now);
        if self.stamps.len() >= self.max {
            return false;
        }
        self.stamps.push_back(now);
        true
    }

    /// Like [`try_acquire`](Self::try_acquire) but answers with a TOO_OFTEN error naming the limit.
    pub fn check(&mut self, what: &str) -> Result<(), ErrorBody> {
        if self.try_acquire() {
            Ok(())
        } else {
            Err(ErrorBody::new(
                ErrorKind::TooOften,
                format!(
                    "too many {what}: the limit is {} per {} s; wait a moment and retry",
                    self.max,
                    self.window.as_secs_f32()
                ),
            ))
        }
    }
}

/// The per-session limits of spec §11.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub messages: SlidingWindow,
    pub query_status: SlidingWindow,
    pub subscribe: SlidingWindow,
    pub unsubscribe: SlidingWindow,
    pub query_subscription: SlidingWindow,
    pub user_attr_writes: SlidingWindow,
    pub user_attr_reads: SlidingWindow,
    pub channel_attr_writes: SlidingWindow,
    pub channel_attr_reads: SlidingWindow,
    pub get_members: SlidingWindow,
    pub member_count: SlidingWindow,
    pub joins: SlidingWindow,
    pub renew_token: SlidingWindow,
    /// Joins of one channel: 2 per 5 s each. Entries whose window emptied are
    /// dropped as new ones come, so the map stays small.
    join_same: std::collections::HashMap<crate::protocol::ChannelId, SlidingWindow>,
    scale: usize,
}

/// Multiplier applied to every limit; tests and benchmarks raise it.
#[derive(Debug, Clone, Copy)]
pub struct LimitScale(pub usize);

impl SessionLimits {
    pub fn new(scale: LimitScale) -> Self {
        let w =
            |max: usize, secs: u64| SlidingWindow::new(max * scale.0, Duration::from_secs(secs));
        Self {
            messages: w(180, 3),
            query_status: w(10, 5),
            subscribe: w(10, 5),
            unsubscribe: w(10, 5),
            query_subscription: w(10, 5),
            user_attr_writes: w(10, 5),
            user_attr_reads: w(40, 5),
            channel_attr_writes: w(10, 5),
            channel_attr_reads: w(10, 5),
            get_members: w(5, 2),
            member_count: w(1, 1),
            joins: w(50, 3),
            renew_token: w(2, 1),
            join_same: std::collections::HashMap::new(),
            scale: scale.0,
        }
    }

    /// The per-channel join limit (2 per 5 s for the same channel).
    pub fn join_channel(&mut self, channel: &crate::protocol::ChannelId) -> Result<(), ErrorBody> {
        if self.join_same.len() > 64 {
            let now = Instant::now();
            self.join_same.retain(|_, w| {
                w.expire(now);
                !w.stamps.is_empty()
            });
        }
        let scale = self.scale;
        self.join_same
            .entry(channel.clone())
            .or_insert_with(|| SlidingWindow::new(2 * scale, Duration::from_secs(5)))
            .check("joins of this channel")
    }
}

/// Login limits, shared by every connection of a server: attempts per uid
/// (2 per second, spec §11) and failed logins per address (token guessing).
/// Each table has its own lock and is pruned of idle entries as it grows.
pub struct LoginLimits {
    scale: usize,
    /// Recent login attempts per uid.
    per_uid: Mutex<HashMap<Uid, SlidingWindow>>,
    /// Recent failed logins (bad or missing token) per address.
    failed: Mutex<HashMap<IpAddr, SlidingWindow>>,
}

/// Failed logins allowed per address per [`FAILED_LOGIN_WINDOW`].
const MAX_FAILED_LOGINS: usize = 10;
const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(10);
/// Entries a login table holds before idle ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

impl LoginLimits {
    pub fn new(scale: LimitScale) -> Self {
        Self {
            scale: scale.0,
            per_uid: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a login attempt of `uid`; TOO_OFTEN beyond the limit.
    pub fn check_uid(&self, uid: &Uid) -> Result<(), ErrorBody> {
        let mut per_uid = lock_pruned(&self.per_uid);
        per_uid
            .entry(uid.clone())
            .or_insert_with(|| SlidingWindow::new(2 * self.scale, Duration::from_secs(1)))
            .check("logins of this user id")
    }

    /// Refuses logins from an address that failed too often lately (guessing
    /// tokens); the attempt itself is not counted.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), ErrorBody> {
        let mut failed = lock_pruned(&self.failed);
        if failed.get_mut(&ip).is_some_and(|w| w.is_full()) {
            return Err(ErrorBody::new(
                ErrorKind::TooOften,
                format!(
                    "too many failed logins from your address: the limit is {MAX_FAILED_LOGINS} per {} s; check your token and retry later",
                    FAILED_LOGIN_WINDOW.as_secs()
                ),
            ));
        }
        Ok(())
    }

    /// Counts a failed login (bad or missing token) against its address.
    pub fn record_failure(&self, ip: IpAddr) {
        let max = MAX_FAILED_LOGINS * self.scale;
        lock_pruned(&self.failed)
            .entry(ip)
            .or_insert_with(|| SlidingWindow::new(max, FAILED_LOGIN_WINDOW))
            .try_acquire();
    }
}

/// Locks a login table, first dropping idle entries if it grew large.
fn lock_pruned<K>(
    table: &Mutex<HashMap<K, SlidingWindow>>,
) -> MutexGuard<'_, HashMap<K, SlidingWindow>> {
    // A panic elsewhere leaves the windows usable; limits beat an outage.
    let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
    if t.len() > PRUNE_ABOVE {
        t.retain(|_, w| !w.is_idle());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn window_slides() {
        let mut w = SlidingWindow::new(3, Duration::from_secs(3));
        assert!(w.try_acquire());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(w.try_acquire());
        assert!(w.try_acquire());
        assert!(!w.try_acquire());
        assert_eq!(w.check("messages").unwrap_err().kind, ErrorKind::TooOften);
        // The first stamp leaves the window after 3 s; one slot frees up.
        tokio::time::advance(Duration::from_millis(2000)).await;
        assert!(w.try_acquire());
        assert!(!w.try_acquire());
    }
}
