//! Waiting for particular SDK events, shared by the channel, presence and
//! cluster tests.

use std::collections::BTreeMap;

use rtm::client::{ChannelEvent, ClientEvent, ClientEvents, PeerOnlineState, RtmMessage};
use rtm::protocol::Uid;

use super::wait_for;

pub fn uid(s: &str) -> Uid {
    s.parse().expect("a valid uid")
}

/// The next presence change the client hears.
pub async fn status_change(events: &mut ClientEvents) -> BTreeMap<Uid, PeerOnlineState> {
    wait_for(events, |e| match e {
        ClientEvent::PeersOnlineStatusChanged(m) => Some(m.clone()),
        _ => None,
    })
    .await
}

/// The next event of channel `ch`.
pub async fn channel_event(events: &mut ClientEvents, ch: &str) -> ChannelEvent {
    wait_for(events, |e| match e {
        ClientEvent::Channel { channel_id, event } if channel_id.as_str() == ch => {
            Some(event.clone())
        }
        _ => None,
    })
    .await
}

/// The next member joined/left of channel `ch`.
pub async fn next_member_event(events: &mut ClientEvents, ch: &str) -> ChannelEvent {
    loop {
        let ev = channel_event(events, ch).await;
        if matches!(
            ev,
            ChannelEvent::MemberJoined(_) | ChannelEvent::MemberLeft(_)
        ) {
            return ev;
        }
    }
}

/// The next text message of channel `ch`: (sender, text).
pub async fn next_channel_text(events: &mut ClientEvents, ch: &str) -> (String, String) {
    loop {
        if let ChannelEvent::ChannelMessage {
            message: RtmMessage::Text { text },
            member_id,
            ..
        } = channel_event(events, ch).await
        {
            return (member_id.to_string(), text);
        }
    }
}

/// The next text peer message: (sender, text).
pub async fn peer_text(events: &mut ClientEvents) -> (String, String) {
    wait_for(events, |e| match e {
        ClientEvent::MessageFromPeer {
            message: RtmMessage::Text { text },
            peer_id,
            ..
        } => Some((peer_id.to_string(), text.clone())),
        _ => None,
    })
    .await
}
