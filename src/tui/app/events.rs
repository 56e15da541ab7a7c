//! What the SDK pushes: messages, presence, channel events, connection
//! changes.

use super::*;
use crate::client::{
    ChannelAttribute, ChannelEvent, ChannelId, ClientEvent, ConnectionChangeReason,
    ConnectionState, PeerOnlineState, RtmMessage, Uid,
};
use crate::tui::conversation::{ConvId, Delivery, Entry, EntryKind, Scroll, mentions};
use crate::tui::media::Media;
use crate::tui::notify::{Notification, NotifyLevel};

fn text_of(message: &RtmMessage) -> String {
    match message {
        RtmMessage::Text { text } => text.clone(),
        RtmMessage::Raw { raw, description } if description.is_empty() => {
            format!("[raw message, {} bytes]", raw.len())
        }
        RtmMessage::Raw { raw, description } => {
            format!("[raw message, {} bytes: {description}]", raw.len())
        }
        RtmMessage::File {
            file_name, size, ..
        } => format!("[file {file_name}, {size} bytes]"),
        RtmMessage::Image {
            file_name,
            size,
            width,
            height,
            ..
        } => format!("[image {file_name}, {width}×{height}, {size} bytes]"),
    }
}

/// A message's text, and for a file or picture its media (the thumbnail
/// decoded here, once): the text is then "[report.pdf · 2.6 MB]", which
/// searches, notifications and the history read.
fn text_and_media(message: &RtmMessage) -> (String, Option<std::sync::Arc<Media>>) {
    match Media::from_message(message) {
        Some(m) => (format!("[{}]", m.summary()), Some(std::sync::Arc::new(m))),
        None => (text_of(message), None),
    }
}

fn presence_word(s: PeerOnlineState) -> &'static str {
    match s {
        PeerOnlineState::Online => "online",
        PeerOnlineState::Unreachable => "unreachable",
        PeerOnlineState::Offline => "offline",
    }
}

impl App {
    // ------------------------------------------------------ SDK events

    /// Adds an incoming entry to a conversation: unread when it is not the
    /// open one (or the view is scrolled up: "new below"); a message that
    /// mentions us, or any direct message, may ring the bell.
    pub(super) fn push_incoming(
        &mut self,
        id: ConvId,
        entry: Entry,
        counts_unread: bool,
        out: &mut Vec<Command>,
    ) {
        let open = self.selected.as_ref() == Some(&id);
        let conv = self.conversations.entry(id.clone()).or_default();
        let mention = matches!(entry.kind, EntryKind::Message { mention: true, .. });
        if counts_unread {
            if !open {
                if conv.unread == 0 {
                    conv.first_unread = Some(conv.entries.len());
                }
                conv.unread += 1;
                conv.mentions += usize::from(mention);
            } else if conv.scroll != Scroll::Bottom {
                conv.new_below += 1;
            }
        }
        let at_bottom = conv.scroll == Scroll::Bottom;
        let notification = match &entry.kind {
            EntryKind::Message { from, text, .. } if counts_unread => {
                let level = if self.muted.contains(&id) {
                    NotifyLevel::None
                } else {
                    self.notify.level(&id)
                };
                let wanted = match level {
                    NotifyLevel::All => true,
                    NotifyLevel::Mentions => mention,
                    NotifyLevel::None => false,
                };
                // Looking at it already: no need to call.
                let seen = open && at_bottom && self.terminal_focused;
                (wanted
                    && !seen
                    && (self.notify.bell
                        || self.notify.desktop != crate::tui::notify::Desktop::Off))
                    .then(|| Notification {
                        bell: self.notify.bell,
                        desktop: self.notify.desktop,
                        title: match &id {
                            ConvId::Peer(p) => format!("rtm: {p}"),
                            ConvId::Channel(c) => format!("rtm: {from} in #{c}"),
                        },
                        body: text.clone(),
                    })
            }
            _ => None,
        };
        if conv.push(entry) > 0 && open {
            // Entry indexes moved; find the hits again.
            self.run_search();
        }
        if let Some(n) = notification {
            out.push(Command::Notify(n));
        }
    }

    /// True when a message from `from` with `text` names us.
    pub(super) fn is_mention(&self, from: &Uid, text: &str) -> bool {
        self.me
            .as_ref()
            .is_some_and(|me| me != from && mentions(text, me))
    }

    pub(super) fn on_client_event(&mut self, ev: ClientEvent, out: &mut Vec<Command>) {
        match ev {
            // Call invitations come as `Event::Call`: the event loop hands
            // their SDK handles to the executor and the app plain data.
            ClientEvent::LocalInvitation { .. }
            | ClientEvent::RemoteInvitationReceived(_)
            | ClientEvent::RemoteInvitation { .. } => {}
            ClientEvent::ConnectionStateChanged { state, reason } => {
                self.connection = state;
                self.on_connection_change(state, reason);
                match state {
                    ConnectionState::Connected => self.flush_outbox(out),
                    ConnectionState::Aborted | ConnectionState::Disconnected => {
                        let n = self.fail_outbox(out);
                        if n > 0 {
                            let lost = format!(
                                "{} not sent",
                                super::sending::plural(n, "queued message")
                            );
                            match &mut self.status {
                                Some(s) if s.kind == StatusKind::Error => {
                                    s.text = format!("{}; {lost}", s.text);
                                }
                                _ => self.error(lost),
                            }
                        }
                    }
                    ConnectionState::Connecting | ConnectionState::Reconnecting => {}
                }
            }
            // Our own message to ourselves, coming back: it shows once,
            // as the message we sent.
            ClientEvent::MessageFromPeer { peer_id, props, .. }
                if self.me.as_ref() == Some(&peer_id) && !props.is_offline_message => {}
            ClientEvent::MessageFromPeer {
                message,
                peer_id,
                props,
            } => {
                let ts = if props.server_received_ts > 0 {
                    props.server_received_ts
                } else {
                    self.now()
                };
                let (text, media) = text_and_media(&message);
                let entry = Entry {
                    ts,
                    kind: EntryKind::Message {
                        mention: media.is_none() && self.is_mention(&peer_id, &text),
                        from: peer_id.clone(),
                        text,
                        offline: props.is_offline_message,
                        delivery: Delivery::Received,
                        media,
                    },
                };
                let id = ConvId::Peer(peer_id.clone());
                self.record_history(&id, &entry, out);
                self.push_incoming(id, entry, true, out);
                self.follow(&peer_id, out);
                // With nothing open, show the first message that arrives.
                if self.selected.is_none() {
                    self.open(ConvId::Peer(peer_id), out);
                }
            }
            ClientEvent::PeersOnlineStatusChanged(states) => {
                let mut notes = Vec::new();
                for (peer, state) in states {
                    let before = self.presence.insert(peer.clone(), state);
                    // The first report after subscribing is not news; changes are.
                    if self.watched.contains(&peer) && before.is_some() && before != Some(state) {
                        notes.push(format!("{peer} is {}", presence_word(state)));
                    }
                }
                if !notes.is_empty() {
                    self.note(notes.join(" · "));
                }
            }
            ClientEvent::Channel { channel_id, event } => {
                self.on_channel_event(channel_id, event, out);
            }
            ClientEvent::Restored {
                rejoined, failed, ..
            } => {
                for c in &rejoined {
                    self.channels.entry(c.clone()).or_default();
                    // Members may have come and gone while we were away.
                    out.push(Command::GetMembers(c.clone()));
                    self.fetch_channel_attributes(c.clone(), out);
                }
                let mut text = match &self.server_in_use {
                    // Failed over: say where to.
                    Some(server) if std::mem::take(&mut self.server_moved) => {
                        format!("reconnected to {server}")
                    }
                    _ => "reconnected".to_string(),
                };
                if !rejoined.is_empty() {
                    text.push_str(&format!(
                        "; rejoined {}",
                        join_names(rejoined.iter().map(|c| format!("#{c}")))
                    ));
                }
                for (c, e) in &failed {
                    self.channels.remove(c);
                    self.push_to_channel(
                        c,
                        EntryKind::Error(format!("could not rejoin #{c}: {e}")),
                    );
                    text.push_str(&format!("; could not rejoin #{c}"));
                }
                if failed.is_empty() {
                    self.note(text);
                } else {
                    self.error(text);
                }
            }
            ClientEvent::TokenPrivilegeWillExpire { expires_in_s } => {
                if self.token_command {
                    self.note(format!(
                        "the login token expires in {expires_in_s} s; fetching a fresh one…"
                    ));
                    out.push(Command::FetchToken);
                } else {
                    let me = self.me.as_ref().map_or("<uid>".to_string(), Uid::to_string);
                    self.error(format!(
                        "the login token expires in {expires_in_s} s: type /token <new token> (the server's operator makes one with `rtm token --uid {me}`)"
                    ));
                }
            }
            ClientEvent::TokenExpired => {
                self.error(
                    "the login token expired and the session ended; start rtm chat again with a fresh --token",
                );
            }
            ClientEvent::MessagesMissed { count } => self.on_messages_missed(count),
            // The SDK's bounded queue dropped the oldest events while the UI
            // was busy; say so rather than show a silently gappy view.
            ClientEvent::Lagged { dropped } => self.note(format!(
                "the messenger fell behind: {dropped} incoming events were dropped; some messages or presence changes may be missing"
            )),
        }
    }

    /// The server could not keep everything sent while the link was down.
    /// It does not say for whom, so every joined channel and the open
    /// conversation get a line where the gap is, and the status says it.
    fn on_messages_missed(&mut self, count: u64) {
        let line = format!(
            "messages may be missing here: {count} sent while the connection was down could not be kept"
        );
        let mut ids: Vec<ConvId> = self
            .channels
            .keys()
            .map(|c| ConvId::Channel(c.clone()))
            .collect();
        if let Some(open) = &self.selected
            && !ids.contains(open)
        {
            ids.push(open.clone());
        }
        let ts = self.now();
        for id in ids {
            self.conversations.entry(id).or_default().push(Entry {
                ts,
                kind: EntryKind::System(line.clone()),
            });
        }
        self.error(format!(
            "{count} messages sent while the connection was down were lost; conversations may have gaps"
        ));
    }

    pub(super) fn on_connection_change(
        &mut self,
        state: ConnectionState,
        reason: ConnectionChangeReason,
    ) {
        use ConnectionChangeReason as R;
        match (state, reason) {
            (ConnectionState::Reconnecting, _) => {
                self.error("connection lost; reconnecting… (what you send meanwhile is queued)");
            }
            (ConnectionState::Aborted, R::RemoteLogin) => {
                self.error("this uid logged in somewhere else; this session has ended");
            }
            (ConnectionState::Aborted, R::TokenExpired) => {
                self.error(
                    "the login token expired and the session ended; start rtm chat again with a fresh --token",
                );
            }
            (ConnectionState::Aborted, R::BannedByServer) => {
                self.error(
                    "the server's operator banned this uid for a while; logins are refused until the ban ends",
                );
            }
            (ConnectionState::Aborted, _) => self.error("the connection was aborted"),
            _ => {}
        }
    }

    pub(super) fn on_channel_event(
        &mut self,
        channel: ChannelId,
        event: ChannelEvent,
        out: &mut Vec<Command>,
    ) {
        if !self.channels.contains_key(&channel) {
            // Late events for a channel we left; nothing shows it any more.
            return;
        }
        let id = ConvId::Channel(channel.clone());
        let now = self.now();
        match event {
            ChannelEvent::ChannelMessage {
                message,
                member_id,
                props,
            } => {
                let ts = if props.server_received_ts > 0 {
                    props.server_received_ts
                } else {
                    now
                };
                let (text, media) = text_and_media(&message);
                let entry = Entry {
                    ts,
                    kind: EntryKind::Message {
                        mention: media.is_none() && self.is_mention(&member_id, &text),
                        from: member_id,
                        text,
                        offline: props.is_offline_message,
                        delivery: Delivery::Received,
                        media,
                    },
                };
                self.record_history(&id, &entry, out);
                self.push_incoming(id, entry, true, out);
            }
            ChannelEvent::MemberJoined(uid) => {
                if let Some(info) = self.channels.get_mut(&channel)
                    && info.members.insert(uid.clone())
                {
                    info.member_count = Some(info.member_count.unwrap_or(0) + 1);
                }
                self.follow(&uid, out);
                let entry = Entry {
                    ts: now,
                    kind: EntryKind::Quiet(format!("-- {uid} joined")),
                };
                self.push_incoming(id, entry, false, out);
            }
            ChannelEvent::MemberLeft(uid) => {
                if let Some(info) = self.channels.get_mut(&channel)
                    && info.members.remove(&uid)
                {
                    info.member_count = info.member_count.map(|n| n.saturating_sub(1));
                }
                self.members_list.forget(&uid);
                let entry = Entry {
                    ts: now,
                    kind: EntryKind::Quiet(format!("-- {uid} left")),
                };
                self.push_incoming(id, entry, false, out);
            }
            ChannelEvent::MemberCountUpdated(n) => {
                if let Some(info) = self.channels.get_mut(&channel) {
                    info.member_count = Some(n);
                }
            }
            ChannelEvent::AttributesUpdated(attributes) => {
                self.set_channel_attributes(&channel, attributes, true);
                if let Some(info) = self.channels.get_mut(&channel) {
                    // The whole set, as it is now.
                    info.attrs_at = Some(now);
                    info.attrs_error = None;
                }
            }
            // Only on a channel's own stream, which the messenger never takes
            // (its channel events come on the client stream).
            ChannelEvent::Lagged { .. } => {}
        }
    }

    /// Replaces a channel's attributes, marking the keys whose value changed.
    pub(super) fn set_channel_attributes(
        &mut self,
        channel: &ChannelId,
        mut attributes: Vec<ChannelAttribute>,
        mark: bool,
    ) {
        let now = self.now();
        let Some(info) = self.channels.get_mut(channel) else {
            return;
        };
        attributes.sort_by(|a, b| a.key.cmp(&b.key));
        if mark {
            for a in &attributes {
                let same = info
                    .attributes
                    .iter()
                    .any(|old| old.key == a.key && old.value == a.value);
                if !same {
                    info.changed.insert(a.key.clone(), now);
                }
            }
        }
        info.attributes = attributes;
    }
}
