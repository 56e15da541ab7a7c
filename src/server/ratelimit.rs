//! Sliding-window call-frequency limits (spec §11): one set per session, and
//! the login limits one server shares across its connections.
//!
//! Time comes from `tokio::time::Instant`, so tests drive it with
//! `tokio::time::pause()` instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
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

/// The call-frequency limits of spec §11, counted per uid (see
/// [`LoginLimits::calls_of`]).
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
    /// Call invitations sent (rtm's own limit; the reference has none).
    pub invitations: SlidingWindow,
    /// Joins of one channel: 2 per 5 s each. Entries whose window emptied are
    /// dropped as new ones come, so the map stays small.
    join_same: std::collections::HashMap<crate::protocol::ChannelId, SlidingWindow>,
    scale: usize,
}

/// One uid's [`SessionLimits`], behind a lock held only for a check (never
/// across an `.await`); uncontended but for the rare overlap of a kicked
/// connection and its replacement.
#[derive(Debug)]
pub struct CallLimits(Mutex<SessionLimits>);

impl CallLimits {
    pub fn new(scale: LimitScale) -> Self {
        CallLimits(Mutex::new(SessionLimits::new(scale)))
    }

    /// Runs one check (or several) on the counters.
    pub fn with<R>(&self, f: impl FnOnce(&mut SessionLimits) -> R) -> R {
        // A panic elsewhere leaves the windows usable; limits beat an outage.
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
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
            invitations: w(10, 5),
            join_same: std::collections::HashMap::new(),
            scale: scale.0,
        }
    }

    /// True when no window holds a recent call: forgetting these counters
    /// changes nothing.
    pub fn is_idle(&mut self) -> bool {
        let windows = [
            &mut self.messages,
            &mut self.query_status,
            &mut self.subscribe,
            &mut self.unsubscribe,
            &mut self.query_subscription,
            &mut self.user_attr_writes,
            &mut self.user_attr_reads,
            &mut self.channel_attr_writes,
            &mut self.channel_attr_reads,
            &mut self.get_members,
            &mut self.member_count,
            &mut self.joins,
            &mut self.renew_token,
            &mut self.invitations,
        ];
        windows.into_iter().all(|w| w.is_idle()) && self.join_same.values_mut().all(|w| w.is_idle())
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
    config: LoginLimitsConfig,
    /// The call-frequency counters of each uid, kept past its connections
    /// while they are busy, so a reconnection does not start them afresh.
    calls: Mutex<HashMap<Uid, Arc<CallLimits>>>,
    /// Recent login attempts per uid.
    per_uid: Mutex<HashMap<Uid, SlidingWindow>>,
    /// Recent failed logins (bad or missing token) per address.
    failed: Mutex<HashMap<IpAddr, SlidingWindow>>,
}

/// How failed logins are slowed down (`failed_logins_per_address` and
/// `failed_login_window_s` in `server.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimitsConfig {
    /// Failed logins (bad or missing token) one address may have per
    /// `failed_window` before its further failures are answered TOO_OFTEN
    /// (0: no limit). Valid logins are never counted nor refused by it.
    pub failed_per_address: usize,
    pub failed_window: Duration,
}
/// Entries a login table holds before idle ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

impl LoginLimits {
    pub fn new(scale: LimitScale, config: LoginLimitsConfig) -> Self {
        Self {
            scale: scale.0,
            config,
            per_uid: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// The call-frequency counters of `uid`, shared by all its connections
    /// (spec §11 counts per user, not per connection). Entries nobody holds
    /// and whose windows have emptied are dropped as the table grows.
    pub fn calls_of(&self, uid: &Uid) -> Arc<CallLimits> {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        if calls.len() > PRUNE_ABOVE {
            calls.retain(|_, l| Arc::strong_count(l) > 1 || !l.with(SessionLimits::is_idle));
        }
        calls
            .entry(uid.clone())
            .or_insert_with(|| Arc::new(CallLimits::new(LimitScale(self.scale))))
            .clone()
    }

    /// Counts a login attempt of `uid`; TOO_OFTEN beyond the limit.
    pub fn check_uid(&self, uid: &Uid) -> Result<(), ErrorBody> {
        let mut per_uid = lock_pruned(&self.per_uid);
        per_uid
            .entry(uid.clone())
            .or_insert_with(|| SlidingWindow::new(2 * self.scale, Duration::from_secs(1)))
            .check("logins of this user id")
    }

    /// Counts a failed login (bad or missing token) against its address.
    /// Past the address's budget the failure is answered with the returned
    /// TOO_OFTEN instead of its own error: a guesser learns nothing more, and
    /// is told to stop. Only failures are ever refused this way — a valid
    /// token from the same address (a NAT neighbour) always logs in.
    pub fn record_failure(&self, ip: IpAddr) -> Option<ErrorBody> {
        let max = self.config.failed_per_address.saturating_mul(self.scale);
        if max == 0 {
            return None;
        }
        let window = self.config.failed_window;
        let counted = lock_pruned(&self.failed)
            .entry(ip)
            .or_insert_with(|| SlidingWindow::new(max, window))
            .try_acquire();
        (!counted).then(|| {
            ErrorBody::new(
                ErrorKind::TooOften,
                format!(
                    "too many failed logins from your address: the limit is {max} per {} s; \
                     check your token and retry later",
                    window.as_secs()
                ),
            )
        })
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
