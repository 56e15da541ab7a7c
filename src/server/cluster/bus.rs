//! What nodes tell each other over Redis pub/sub. A payload is lines joined
//! with `\n` (JSON frames never hold a raw newline, ids cannot): the origin
//! node (`*` for a script run on behalf of the whole cluster), the kind,
//! then the kind's fields. Frames travel already encoded, so a channel
//! message is encoded once in the whole cluster.

use crate::protocol::PeerOnlineState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// A live peer message for `to` (on the receiving node): both forms.
    Peer {
        to: String,
        full: String,
        compact: Option<String>,
    },
    /// A frame for `to`'s session as it is (invitation events).
    Frame { to: String, frame: String },
    /// `uid` logged in on another node: end session `sid` here.
    Kick { uid: String, sid: String },
    /// `uid` resumed on node `to`: forget session `sid` here quietly, and
    /// send `to` what was kept for the session while its link was down.
    Moved {
        uid: String,
        sid: String,
        to: String,
    },
    /// An offline message was stored for `uid` just as it logged in here:
    /// look in its mailbox again.
    Mailbox { uid: String },
    /// A channel message from `from` (sent through another node).
    ChannelMessage {
        ch: String,
        from: String,
        full: String,
        compact: Option<String>,
    },
    /// `uid` joined `ch`, which now has `count` members.
    Joined { ch: String, uid: String, count: u32 },
    /// `uid` left `ch` (or was removed), which now has `count` members.
    Left { ch: String, uid: String, count: u32 },
    /// A channel-attribute notification, as its frame.
    Attributes { ch: String, frame: String },
    /// `uid`'s online state changed.
    State { uid: String, state: PeerOnlineState },
    /// Does this node hold `uid` as session `sid` with its link up? Answer
    /// to node `reply_to` with the same `probe`.
    Probe {
        uid: String,
        sid: String,
        reply_to: String,
        probe: u64,
    },
    /// The answer to `Probe`.
    ProbeReply { probe: u64, up: bool },
    /// The operator banned `uid` until `until_ms`: end its session here.
    Ban {
        uid: String,
        until_ms: u64,
        reason: String,
    },
    /// An invitation step for the caller's node to apply (see
    /// `hub::invitations`): `op` is `ack`, `accept` or `refuse`.
    InvitationOp {
        caller: String,
        id: u64,
        callee: String,
        op: String,
        response: String,
    },
}

fn state_code(s: PeerOnlineState) -> &'static str {
    match s {
        PeerOnlineState::Offline => "0",
        PeerOnlineState::Online => "1",
        PeerOnlineState::Unreachable => "2",
    }
}

impl BusEvent {
    pub fn encode(&self, origin: &str) -> String {
        let mut parts: Vec<&str> = vec![origin];
        let count;
        let id;
        match self {
            BusEvent::Peer { to, full, compact } => {
                parts.extend(["peer", to, full]);
                if let Some(c) = compact {
                    parts.push(c);
                }
            }
            BusEvent::Frame { to, frame } => parts.extend(["frame", to, frame]),
            BusEvent::Kick { uid, sid } => parts.extend(["kick", uid, sid]),
            BusEvent::Moved { uid, sid, to } => parts.extend(["moved", uid, sid, to]),
            BusEvent::Mailbox { uid } => parts.extend(["mailbox", uid]),
            BusEvent::ChannelMessage {
                ch,
                from,
                full,
                compact,
            } => {
                parts.extend(["msg", ch, from, full]);
                if let Some(c) = compact {
                    parts.push(c);
                }
            }
            BusEvent::Joined { ch, uid, count: n } => {
                count = n.to_string();
                parts.extend(["joined", ch, uid, &count]);
            }
            BusEvent::Left { ch, uid, count: n } => {
                count = n.to_string();
                parts.extend(["left", ch, uid, &count]);
            }
            BusEvent::Attributes { ch, frame } => parts.extend(["attrs", ch, frame]),
            BusEvent::State { uid, state } => parts.extend(["state", uid, state_code(*state)]),
            BusEvent::Probe {
                uid,
                sid,
                reply_to,
                probe: n,
            } => {
                id = n.to_string();
                parts.extend(["probe", uid, sid, reply_to, &id]);
            }
            BusEvent::ProbeReply { probe: n, up } => {
                id = n.to_string();
                parts.extend(["probed", &id, if *up { "1" } else { "0" }]);
            }
            BusEvent::Ban {
                uid,
                until_ms,
                reason,
            } => {
                id = until_ms.to_string();
                parts.extend(["ban", uid, &id, reason]);
            }
            BusEvent::InvitationOp {
                caller,
                id: n,
                callee,
                op,
                response,
            } => {
                id = n.to_string();
                parts.extend(["inv", caller, &id, callee, op, response]);
            }
        }
        parts.join("\n")
    }

    /// `(origin, event)`, or `None` for a payload this node cannot read.
    pub fn decode(payload: &[u8]) -> Option<(String, BusEvent)> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut it = text.split('\n');
        let origin = it.next()?.to_string();
        let kind = it.next()?;
        let mut next = || it.next().map(str::to_string);
        let event = match kind {
            "peer" => BusEvent::Peer {
                to: next()?,
                full: next()?,
                compact: next(),
            },
            "frame" => BusEvent::Frame {
                to: next()?,
                frame: next()?,
            },
            "kick" => BusEvent::Kick {
                uid: next()?,
                sid: next()?,
            },
            "moved" => BusEvent::Moved {
                uid: next()?,
                sid: next()?,
                to: next()?,
            },
            "mailbox" => BusEvent::Mailbox { uid: next()? },
            "msg" => BusEvent::ChannelMessage {
                ch: next()?,
                from: next()?,
                full: next()?,
                compact: next(),
            },
            "joined" => BusEvent::Joined {
                ch: next()?,
                uid: next()?,
                count: next()?.parse().ok()?,
            },
            "left" => BusEvent::Left {
                ch: next()?,
                uid: next()?,
                count: next()?.parse().ok()?,
            },
            "attrs" => BusEvent::Attributes {
                ch: next()?,
                frame: next()?,
            },
            "state" => BusEvent::State {
                uid: next()?,
                state: match next()?.as_str() {
                    "0" => PeerOnlineState::Offline,
                    "1" => PeerOnlineState::Online,
                    "2" => PeerOnlineState::Unreachable,
                    _ => return None,
                },
            },
            "probe" => BusEvent::Probe {
                uid: next()?,
                sid: next()?,
                reply_to: next()?,
                probe: next()?.parse().ok()?,
            },
            "probed" => BusEvent::ProbeReply {
                probe: next()?.parse().ok()?,
                up: next()? == "1",
            },
            "ban" => BusEvent::Ban {
                uid: next()?,
                until_ms: next()?.parse().ok()?,
                reason: next().unwrap_or_default(),
            },
            "inv" => BusEvent::InvitationOp {
                caller: next()?,
                id: next()?.parse().ok()?,
                callee: next()?,
                op: next()?,
                response: next()?,
            },
            _ => return None,
        };
        Some((origin, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_the_round_trip() {
        let events = [
            BusEvent::Peer {
                to: "bob".into(),
                full: r#"{"event":"x","text":"a\nb"}"#.into(),
                compact: Some("[1]".into()),
            },
            BusEvent::Peer {
                to: "bob".into(),
                full: "{}".into(),
                compact: None,
            },
            BusEvent::Frame {
                to: "a".into(),
                frame: "{}".into(),
            },
            BusEvent::Kick {
                uid: "a".into(),
                sid: "7".into(),
            },
            BusEvent::Moved {
                uid: "a".into(),
                sid: "7".into(),
                to: "n2".into(),
            },
            BusEvent::Mailbox { uid: "a".into() },
            BusEvent::ChannelMessage {
                ch: "c".into(),
                from: "a".into(),
                full: "{}".into(),
                compact: None,
            },
            BusEvent::Joined {
                ch: "c".into(),
                uid: "a".into(),
                count: 3,
            },
            BusEvent::Left {
                ch: "c".into(),
                uid: "a".into(),
                count: 0,
            },
            BusEvent::Attributes {
                ch: "c".into(),
                frame: "{}".into(),
            },
            BusEvent::State {
                uid: "a".into(),
                state: PeerOnlineState::Unreachable,
            },
            BusEvent::Probe {
                uid: "a".into(),
                sid: "7".into(),
                reply_to: "n2".into(),
                probe: 3,
            },
            BusEvent::ProbeReply { probe: 3, up: true },
            BusEvent::Ban {
                uid: "a".into(),
                until_ms: 5,
                reason: "spam".into(),
            },
            BusEvent::InvitationOp {
                caller: "a".into(),
                id: 9,
                callee: "b".into(),
                op: "accept".into(),
                response: String::new(),
            },
        ];
        for e in events {
            let wire = e.encode("n1");
            assert_eq!(BusEvent::decode(wire.as_bytes()), Some(("n1".into(), e)));
        }
    }

    #[test]
    fn what_the_scripts_publish_decodes() {
        // The exact shapes the Lua scripts build by hand.
        assert_eq!(
            BusEvent::decode(b"*\nleft\nroom\nbob\n4"),
            Some((
                "*".into(),
                BusEvent::Left {
                    ch: "room".into(),
                    uid: "bob".into(),
                    count: 4
                }
            ))
        );
        assert_eq!(
            BusEvent::decode(b"n2\nstate\nbob\n0"),
            Some((
                "n2".into(),
                BusEvent::State {
                    uid: "bob".into(),
                    state: PeerOnlineState::Offline
                }
            ))
        );
        assert_eq!(BusEvent::decode(b"n2\nstate\nbob\n9"), None);
        assert_eq!(BusEvent::decode(b"n2\nnonsense"), None);
    }
}
