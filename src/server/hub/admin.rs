//! What the server's operator sees (the gauges of a scrape, readiness)
//! and can do to sessions (`rtm admin`, through the
//! admin interface of the metrics listener): list them, end one, ban a uid
//! for a while. In cluster mode a ban is kept in Redis (every node refuses
//! the uid's logins) and reaches the node that holds the session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{Departure, Hub, Link};
use crate::protocol::{PeerOnlineState, Uid, close_code};

/// One session, as `rtm admin sessions` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub uid: String,
    pub session: u64,
    /// `up`, or `down` (within the grace).
    pub link: &'static str,
    pub channels: usize,
    pub watching: usize,
}

/// A ban in force on this node: until when (ms since the epoch) and why.
#[derive(Debug, Clone)]
pub(super) struct Ban {
    pub until_ms: u64,
    pub reason: String,
}

/// Bans known to this node.
#[derive(Default)]
pub(super) struct Bans {
    by_uid: HashMap<Uid, Ban>,
}

impl Hub {
    /// Sets the gauges read at a scrape: users, bytes queued.
    pub fn refresh_gauges(&self) {
        let st = self.lock();
        let queued: usize = st.users.values().map(|u| u.session.queued().1).sum();
        let down = st.users.values().filter(|u| u.link == Link::Down).count();
        let m = &crate::server::metrics::METRICS;
        m.users.set(st.users.len() as i64);
        m.sessions
            .get_or_create(&crate::server::metrics::Link { link: "up" })
            .set((st.users.len() - down) as i64);
        m.sessions
            .get_or_create(&crate::server::metrics::Link { link: "down" })
            .set(down as i64);
        crate::server::metrics::METRICS
            .queue_bytes
            .set(queued as i64);
    }

    /// Ready to serve: the store answers and, in cluster mode, Redis does.
    pub async fn ready(&self) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(2), self.store.barrier()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("the store fails: {e}")),
            Err(_) => return Err("the store did not answer within 2 s".into()),
        }
        if let Some(c) = self.cluster()
            && !c.reachable()
        {
            return Err(format!("the cluster's Redis at {} is unreachable", c.url()));
        }
        Ok(())
    }

    /// This node's sessions, by uid.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let st = self.lock();
        let mut out: Vec<SessionInfo> = st
            .users
            .iter()
            .map(|(uid, u)| SessionInfo {
                uid: uid.to_string(),
                session: u.session.id,
                link: if u.link == Link::Up { "up" } else { "down" },
                channels: u.channels.len(),
                watching: u.subscriptions.len(),
            })
            .collect();
        out.sort_by(|a, b| a.uid.cmp(&b.uid));
        out
    }

    /// Ends `uid`'s session here (it may log in again); true if there was one.
    pub fn kick(self: &Arc<Self>, uid: &Uid, reason: &str) -> bool {
        self.end_by_operator(uid, close_code::KICKED, reason)
    }

    /// Bans `uid` until `until_ms`: its session ends (ABORTED,
    /// BANNED_BY_SERVER) and logins are refused until then. True if a
    /// session was ended on this node.
    pub fn ban(self: &Arc<Self>, uid: &Uid, until_ms: u64, reason: &str) -> bool {
        self.remember_ban(uid, until_ms, reason);
        self.cluster_ban(uid, until_ms, reason);
        self.end_by_operator(uid, close_code::BANNED, reason)
    }

    pub(super) fn remember_ban(&self, uid: &Uid, until_ms: u64, reason: &str) {
        self.lock().bans.by_uid.insert(
            uid.clone(),
            Ban {
                until_ms,
                reason: reason.to_string(),
            },
        );
    }

    /// Lifts a ban; true if there was one here.
    pub fn unban(&self, uid: &Uid) -> bool {
        self.cluster_unban(uid);
        self.lock().bans.by_uid.remove(uid).is_some()
    }

    /// Why `uid` may not log in now, if it is banned (here, or in cluster
    /// mode anywhere).
    pub async fn banned(&self, uid: &Uid) -> Option<String> {
        let now = self.now_ms();
        let local = {
            let mut st = self.lock();
            match st.bans.by_uid.get(uid) {
                Some(b) if b.until_ms > now => Some(b.clone()),
                Some(_) => {
                    st.bans.by_uid.remove(uid);
                    None
                }
                None => None,
            }
        };
        let ban = match local {
            Some(b) => Some(b),
            None => self.cluster_ban_of(uid).await,
        }?;
        let left_s = ban.until_ms.saturating_sub(now).div_ceil(1000);
        Some(format!(
            "{uid} is banned by the server's operator for another {left_s} s ({}); try again later",
            if ban.reason.is_empty() {
                "no reason given"
            } else {
                ban.reason.as_str()
            }
        ))
    }

    /// Ends `uid`'s session here with `code`, as a logout would (it leaves
    /// its channels; watchers hear OFFLINE).
    pub(super) fn end_by_operator(self: &Arc<Self>, uid: &Uid, code: u16, reason: &str) -> bool {
        let mut st = self.lock();
        let Some(user) = st.users.remove(uid) else {
            return false;
        };
        let mut text = if code == close_code::BANNED {
            format!("banned by the server's operator: {reason}")
        } else {
            format!("ended by the server's operator: {reason}")
        };
        // A close frame's reason holds at most 123 bytes.
        while text.len() > 120 {
            text.pop();
        }
        user.session.kill_with(code, &text);
        tracing::warn!(%uid, code, reason, "session ended by the operator");
        self.drop_user_state(&mut st, uid, user, Departure::Gone);
        self.notify_watchers(&st, uid, PeerOnlineState::Offline);
        true
    }
}
