//! Compact events (PROTOCOL.md §8.13): the two events every message costs —
//! a live `channel_message` and a live `message_from_peer` — as a JSON array
//! instead of an object, for sessions that ask for it at login
//! (`"compact_events": true`). A channel message is paid once per member, so
//! its frame shrinks from about 230 bytes of framing to about 40.
//!
//! ```text
//! ["c", channel_id, member_id, server_received_ts, text]                 channel_message, TEXT
//! ["cr", channel_id, member_id, server_received_ts, raw_base64, description]   … RAW
//! ["p", peer_id, server_received_ts, text]                               message_from_peer, TEXT
//! ["pr", peer_id, server_received_ts, raw_base64, description]           … RAW
//! ```
//!
//! Offline messages, and every other event, keep the object form: a client
//! that asked for compact events reads both.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{ChannelId, Event, MessageProps, RtmMessage, Uid, base64_encode};

/// The compact text of `event`, when it has one (a live channel or peer
/// message); `None` for every other event.
pub fn encode_compact_event(event: &Event) -> Option<String> {
    let live = |p: &MessageProps| !p.is_offline_message && p.message_id.is_none();
    let text = match event {
        Event::ChannelMessage {
            channel_id,
            member_id,
            message,
            props,
        } if live(props) => match message {
            RtmMessage::Text { text } => {
                to_json(&("c", channel_id, member_id, props.server_received_ts, text))
            }
            RtmMessage::Raw { raw, description } => to_json(&(
                "cr",
                channel_id,
                member_id,
                props.server_received_ts,
                base64_encode(raw),
                description,
            )),
            // Media messages are rare and small: the object form.
            _ => return None,
        },
        Event::MessageFromPeer {
            peer_id,
            message,
            props,
        } if live(props) => match message {
            RtmMessage::Text { text } => to_json(&("p", peer_id, props.server_received_ts, text)),
            RtmMessage::Raw { raw, description } => to_json(&(
                "pr",
                peer_id,
                props.server_received_ts,
                base64_encode(raw),
                description,
            )),
            _ => return None,
        },
        _ => return None,
    };
    Some(text)
}

fn to_json(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Whether a server text frame is in the compact form (an array).
pub(super) fn is_compact(text: &str) -> bool {
    text.trim_start().starts_with('[')
}

/// Parses a compact event.
pub(super) fn decode_compact_event(text: &str) -> Result<Event, serde_json::Error> {
    serde_json::from_str::<CompactEvent>(text).map(|c| c.0)
}

struct CompactEvent(Event);

impl<'de> Deserialize<'de> for CompactEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(CompactVisitor)
    }
}

struct CompactVisitor;

fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    at: usize,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(at, &"a compact event's fields"))
}

fn raw<E: de::Error>(b64: &str, description: String) -> Result<RtmMessage, E> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| E::custom(format!("raw is not base64: {e}")))?;
    Ok(RtmMessage::Raw { raw, description })
}

fn live(ts: u64) -> MessageProps {
    MessageProps {
        server_received_ts: ts,
        is_offline_message: false,
        message_id: None,
    }
}

impl<'de> Visitor<'de> for CompactVisitor {
    type Value = CompactEvent;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a compact event: [\"c\"|\"cr\"|\"p\"|\"pr\", …]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CompactEvent, A::Error> {
        let tag: String = next(&mut seq, 0)?;
        let event = match tag.as_str() {
            "c" | "cr" => {
                let channel_id: ChannelId = next(&mut seq, 1)?;
                let member_id: Uid = next(&mut seq, 2)?;
                let ts: u64 = next(&mut seq, 3)?;
                let message = if tag == "c" {
                    RtmMessage::Text {
                        text: next(&mut seq, 4)?,
                    }
                } else {
                    let b64: String = next(&mut seq, 4)?;
                    raw(&b64, next(&mut seq, 5)?)?
                };
                Event::ChannelMessage {
                    channel_id,
                    member_id,
                    message,
                    props: live(ts),
                }
            }
            "p" | "pr" => {
                let peer_id: Uid = next(&mut seq, 1)?;
                let ts: u64 = next(&mut seq, 2)?;
                let message = if tag == "p" {
                    RtmMessage::Text {
                        text: next(&mut seq, 3)?,
                    }
                } else {
                    let b64: String = next(&mut seq, 3)?;
                    raw(&b64, next(&mut seq, 4)?)?
                };
                Event::MessageFromPeer {
                    peer_id,
                    message,
                    props: live(ts),
                }
            }
            other => {
                return Err(de::Error::unknown_variant(other, &["c", "cr", "p", "pr"]));
            }
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("a compact event has extra fields"));
        }
        Ok(CompactEvent(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ServerFrame, encode_event};

    fn uid(s: &str) -> Uid {
        Uid::new(s).expect("valid uid")
    }

    fn channel(text: &str) -> Event {
        Event::ChannelMessage {
            channel_id: "lobby".parse().expect("valid channel"),
            member_id: uid("bob"),
            message: RtmMessage::text(text),
            props: live(1_767_225_600_123),
        }
    }

    #[test]
    fn a_channel_message_is_an_array_and_reads_back_the_same() {
        let ev = channel("hi \"all\" ✓");
        let text = encode_compact_event(&ev).expect("live channel messages are compact");
        assert_eq!(text, r#"["c","lobby","bob",1767225600123,"hi \"all\" ✓"]"#);
        match ServerFrame::decode(&text).expect("decodes") {
            ServerFrame::Event { event } => assert_eq!(event, ev),
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn it_is_much_smaller_than_the_object_form() {
        let ev = channel(&"x".repeat(64));
        let compact = encode_compact_event(&ev).expect("compact").len();
        let full = encode_event(&ev).len();
        assert!(compact + 100 < full, "compact {compact} vs full {full}");
    }

    #[test]
    fn raw_and_peer_messages_round_trip() {
        let events = [
            Event::ChannelMessage {
                channel_id: "lobby".parse().expect("valid channel"),
                member_id: uid("bob"),
                message: RtmMessage::Raw {
                    raw: vec![0, 1, 2, 255],
                    description: "bytes".into(),
                },
                props: live(5),
            },
            Event::MessageFromPeer {
                peer_id: uid("alice"),
                message: RtmMessage::text("psst"),
                props: live(6),
            },
            Event::MessageFromPeer {
                peer_id: uid("alice"),
                message: RtmMessage::Raw {
                    raw: b"\x00zip".to_vec(),
                    description: String::new(),
                },
                props: live(7),
            },
        ];
        for ev in events {
            let text = encode_compact_event(&ev).expect("compact");
            assert_eq!(decode_compact_event(&text).expect("decodes"), ev, "{text}");
        }
    }

    #[test]
    fn offline_and_other_events_keep_the_object_form() {
        let offline = Event::MessageFromPeer {
            peer_id: uid("alice"),
            message: RtmMessage::text("stored"),
            props: MessageProps {
                server_received_ts: 1,
                is_offline_message: true,
                message_id: Some(4),
            },
        };
        assert_eq!(encode_compact_event(&offline), None);
        let joined = Event::MemberJoined {
            channel_id: "lobby".parse().expect("valid channel"),
            member_id: uid("carol"),
        };
        assert_eq!(encode_compact_event(&joined), None);
    }

    #[test]
    fn malformed_compact_frames_are_refused_with_a_reason() {
        for bad in [
            r#"["x","lobby"]"#,
            r#"["c","lobby","bob"]"#,
            r#"["c","lobby","bob",1,"hi","extra"]"#,
            r#"["cr","lobby","bob",1,"!!notbase64","d"]"#,
            r#"["c","","bob",1,"hi"]"#,
            r#"[]"#,
        ] {
            assert!(decode_compact_event(bad).is_err(), "{bad}");
            assert!(ServerFrame::decode(bad).is_err(), "{bad}");
        }
    }
}
