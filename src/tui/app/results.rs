//! The answers to commands: one method per kind of result.

use std::collections::BTreeMap;

use super::*;
use crate::client::{
    ChannelAttribute, ConnectionState, LoginInfo, PeerMessageSendResult, PeerOnlineState, RtmError,
    Uid,
};
use crate::tui::commands::AttrWrite;
use crate::tui::conversation::{ConvId, Delivery, Entry, EntryKind, Stored};
use crate::tui::history::{HistoryRecord, LoadedConversation};
use crate::tui::input::InputLine;

impl App {
    pub(super) fn on_result(&mut self, r: CommandResult, out: &mut Vec<Command>) {
        match r {
            CommandResult::LoggedIn { uid, result } => self.on_logged_in(uid, result, out),
            CommandResult::TransferProgress { id, current, total } => {
                self.on_transfer_progress(id, current, total)
            }
            CommandResult::Uploaded { id, result } => self.on_uploaded(id, result, out),
            CommandResult::Saved { id, result } => self.on_saved(id, result),
            CommandResult::PeerMessageSent { peer, id, result } => {
                self.on_peer_message_sent(peer, id, result, out)
            }
            CommandResult::ChannelMessageSent {
                channel,
                id,
                result,
            } => self.on_channel_message_sent(channel, id, result, out),
            CommandResult::Joined { channel, result } => self.on_joined(channel, result, out),
            CommandResult::Left { channel, result } => self.on_left(channel, result, out),
            CommandResult::Members { channel, result } => self.on_members(channel, result, out),
            CommandResult::Subscribed { peers, result } => {
                if let Err(e) = result {
                    // Peers followed on our own (members, those we talk
                    // with) are followed again next time; only a failed
                    // /watch is the user's business.
                    let (watched, followed): (Vec<Uid>, Vec<Uid>) =
                        peers.into_iter().partition(|p| self.watched.contains(p));
                    for p in &followed {
                        self.following.remove(p);
                    }
                    if watched.is_empty() {
                        tracing::warn!(
                            "cannot follow the presence of {}: {e}",
                            join_names(&followed)
                        );
                    } else {
                        self.error(format!("cannot watch {}: {e}", join_names(&watched)));
                    }
                }
            }
            CommandResult::Unsubscribed { peers, result } => {
                if let Err(e) = result {
                    self.error(format!("cannot unwatch {}: {e}", join_names(&peers)));
                }
            }
            CommandResult::OnlineStatus { peers, result } => self.on_online_status(peers, result),
            CommandResult::UserAttrWritten { op, result } => self.on_user_attr_written(op, result),
            CommandResult::UserAttributes {
                uid,
                keys,
                explicit,
                result,
            } => self.on_user_attributes(uid, keys.is_none(), explicit, result),
            CommandResult::ChannelAttrWritten {
                channel,
                op,
                notify,
                result,
            } => self.on_channel_attr_written(channel, op, notify, result, out),
            CommandResult::ChannelAttributes {
                channel,
                keys,
                explicit,
                result,
            } => self.on_channel_attributes(channel, keys.is_none(), explicit, result),
            CommandResult::WatchedLoaded(result) => self.on_watched_loaded(result, out),
            CommandResult::TokenRenewed(result) => match result {
                Ok(()) => self.info("login token renewed"),
                Err(e) => self.error(format!(
                    "could not renew the login token: {e}; type /token <new token>"
                )),
            },
            CommandResult::WatchedSaved(result) => {
                if let Err(e) = result {
                    self.error(format!("cannot save the watched list: {e}"));
                }
            }
            CommandResult::MutedLoaded(result) => match result {
                Ok(ids) => self.muted.extend(ids),
                Err(e) => self.error(format!("cannot read the muted list: {e}")),
            },
            CommandResult::MutedSaved(result) => {
                if let Err(e) = result {
                    self.error(format!("cannot save the muted list: {e}"));
                }
            }
            CommandResult::HistoryLoaded(result) => match result {
                Ok(convs) => self.on_history_loaded(convs, out),
                Err(e) => self.error(e),
            },
            r @ (CommandResult::CallSent { .. }
            | CommandResult::CallCanceled { .. }
            | CommandResult::CallAnswered { .. }) => self.on_call_result(r, out),
            CommandResult::HistoryFailed(e) => self.error(format!("{e}; history not saved")),
            CommandResult::HistoryPage {
                conv,
                before,
                result,
            } => self.on_history_page(conv, before, result),
            CommandResult::HistoryFound {
                conv,
                query,
                result,
            } => self.on_history_found(conv, query, result),
        }
    }

    fn on_peer_message_sent(
        &mut self,
        peer: Uid,
        id: u64,
        result: Result<PeerMessageSendResult, RtmError>,
        out: &mut Vec<Command>,
    ) {
        let now = self.now();
        let conv = self
            .conversations
            .entry(ConvId::Peer(peer.clone()))
            .or_default();
        let Some(entry) = conv.sending_mut(id) else {
            return;
        };
        match result {
            Ok(r) => {
                set_delivery(entry, Delivery::Sent);
                if r.server_received_ts > 0 {
                    entry.ts = r.server_received_ts;
                }
                let note = if r.has_peer_received {
                    None
                } else if r.cached {
                    Some(format!("{peer} is offline: stored, will be delivered"))
                } else {
                    Some(format!("{peer} is offline; message not delivered"))
                };
                let ts = entry.ts;
                if let Some(note) = note {
                    conv.push(Entry {
                        ts: now,
                        kind: EntryKind::System(note),
                    });
                }
                self.record_delivery(id, Delivery::Sent, ts, out);
            }
            Err(e) => {
                let text = entry.kind.text().to_string();
                self.on_send_failed(ConvId::Peer(peer), id, text, e, out);
            }
        }
    }

    fn on_channel_message_sent(
        &mut self,
        channel: ChannelId,
        id: u64,
        result: Result<u64, RtmError>,
        out: &mut Vec<Command>,
    ) {
        let conv = self
            .conversations
            .entry(ConvId::Channel(channel.clone()))
            .or_default();
        let Some(entry) = conv.sending_mut(id) else {
            return;
        };
        match result {
            Ok(ts) => {
                set_delivery(entry, Delivery::Sent);
                if ts > 0 {
                    entry.ts = ts;
                }
                let ts = entry.ts;
                self.record_delivery(id, Delivery::Sent, ts, out);
            }
            Err(e) => {
                let text = entry.kind.text().to_string();
                self.on_send_failed(ConvId::Channel(channel), id, text, e, out);
            }
        }
    }

    /// A send failed. Lost to a link that is down (or reconnecting), the
    /// message goes back to the outbox and out again once the link is back;
    /// refused, it is marked unsent, and the retry key sends it again.
    fn on_send_failed(
        &mut self,
        conv: ConvId,
        id: u64,
        text: String,
        e: RtmError,
        out: &mut Vec<Command>,
    ) {
        let link_down = matches!(
            self.connection,
            ConnectionState::Reconnecting | ConnectionState::Connecting
        );
        let transient = matches!(
            e,
            RtmError::Timeout(_) | RtmError::ConnectionLost | RtmError::NotLoggedIn(_)
        );
        if link_down && transient {
            self.requeue(conv, id, text);
            return;
        }
        let Some(entry) = self
            .conversations
            .get_mut(&conv)
            .and_then(|c| c.sending_mut(id))
        else {
            return;
        };
        set_delivery(entry, Delivery::Unsent(id));
        let ts = entry.ts;
        self.record_delivery(id, Delivery::Unsent(id), ts, out);
        let key = self.global_key(crate::tui::keymap::Action::RetryFailed);
        self.error(format!(
            "message to {conv} not sent: {e} ({key} sends it again)"
        ));
    }

    /// Adds a line of ours ("-- you joined #x", an error) to a channel's
    /// conversation, now.
    pub(super) fn push_to_channel(&mut self, channel: &ChannelId, kind: EntryKind) {
        let ts = self.now();
        self.conversations
            .entry(ConvId::Channel(channel.clone()))
            .or_default()
            .push(Entry { ts, kind });
    }

    fn on_joined(
        &mut self,
        channel: ChannelId,
        result: Result<u32, RtmError>,
        out: &mut Vec<Command>,
    ) {
        self.joining.remove(&channel);
        let count = match result {
            Ok(count) => count,
            Err(e) => return self.error(format!("cannot join #{channel}: {e}")),
        };
        self.channels.insert(
            channel.clone(),
            ChannelInfo {
                member_count: Some(count),
                ..ChannelInfo::default()
            },
        );
        self.push_to_channel(
            &channel,
            EntryKind::Quiet(format!("-- you joined #{channel}")),
        );
        // Opening it asks for its attributes.
        self.open(ConvId::Channel(channel.clone()), out);
        self.info(format!("joined #{channel}"));
        out.push(Command::GetMembers(channel));
    }

    fn on_left(
        &mut self,
        channel: ChannelId,
        result: Result<(), RtmError>,
        out: &mut Vec<Command>,
    ) {
        if let Err(e) = result {
            return self.error(format!("cannot leave #{channel}: {e}"));
        }
        self.channels.remove(&channel);
        self.push_to_channel(
            &channel,
            EntryKind::Quiet(format!("-- you left #{channel}")),
        );
        self.channels_list.forget(&channel);
        if self.selected == Some(ConvId::Channel(channel.clone())) {
            // Show something still alive rather than a channel we cannot write to.
            let next = self
                .channels
                .keys()
                .next()
                .cloned()
                .map(ConvId::Channel)
                .or_else(|| self.peer_rows().first().cloned().map(ConvId::Peer));
            self.selected = None;
            if let Some(next) = next {
                self.open(next, out);
            }
        }
        self.info(format!("left #{channel}"));
    }

    fn on_members(
        &mut self,
        channel: ChannelId,
        result: Result<Vec<Uid>, RtmError>,
        out: &mut Vec<Command>,
    ) {
        match result {
            Ok(members) => {
                if let Some(info) = self.channels.get_mut(&channel) {
                    info.member_count = Some(members.len().try_into().unwrap_or(u32::MAX));
                    info.members = members.iter().cloned().collect();
                    // Their presence, so that a member whose link dropped
                    // shows ◐ here as in the Peers pane (within the cap).
                    self.follow_all(members, out);
                }
            }
            Err(e) => self.error(format!("cannot list the members of #{channel}: {e}")),
        }
    }

    fn on_online_status(&mut self, peers: Vec<Uid>, result: Result<BTreeMap<Uid, bool>, RtmError>) {
        let map = match result {
            Ok(map) => map,
            Err(e) => return self.error(format!("cannot query {}: {e}", join_names(&peers))),
        };
        let words: Vec<String> = peers
            .iter()
            .map(|p| {
                let online = map.get(p).copied().unwrap_or(false);
                // A subscription knows better (it also sees UNREACHABLE).
                if !self.watched.contains(p) {
                    let s = if online {
                        PeerOnlineState::Online
                    } else {
                        PeerOnlineState::Offline
                    };
                    self.presence.insert(p.clone(), s);
                }
                format!("{p}: {}", if online { "online" } else { "offline" })
            })
            .collect();
        self.info(words.join(" · "));
    }

    fn on_user_attr_written(&mut self, op: AttrWrite, result: Result<(), RtmError>) {
        if let Err(e) = result {
            return self.error(format!("your attributes were not changed: {e}"));
        }
        let verb = op.done_verb();
        match op {
            AttrWrite::Set(map) => self.my_attrs = map,
            AttrWrite::Put(map) => self.my_attrs.extend(map),
            AttrWrite::Delete(keys) => {
                for k in keys {
                    self.my_attrs.remove(&k);
                }
            }
            AttrWrite::Clear => self.my_attrs.clear(),
        }
        self.info(format!("your attributes: {verb}"));
    }

    /// `all_keys`: the answer is the whole set (replace what is known)
    /// rather than some keys (merge them in).
    fn on_user_attributes(
        &mut self,
        uid: Uid,
        all_keys: bool,
        explicit: bool,
        result: Result<BTreeMap<String, String>, RtmError>,
    ) {
        match result {
            Ok(map) => {
                if explicit {
                    self.info(if map.is_empty() {
                        format!("{uid} has no such attributes")
                    } else {
                        format!(
                            "{uid}: {}",
                            join_names(map.iter().map(|(k, v)| format!("{k}={v}")))
                        )
                    });
                }
                let entry = self
                    .user_attrs
                    .entry(uid)
                    .or_insert_with(|| Ok(BTreeMap::new()));
                match (all_keys, entry) {
                    (false, Ok(known)) => known.extend(map),
                    (_, e) => *e = Ok(map),
                }
            }
            Err(e) => {
                if explicit {
                    self.error(format!("cannot read {uid}'s attributes: {e}"));
                }
                if all_keys {
                    self.user_attrs.insert(uid, Err(e.to_string()));
                }
            }
        }
    }

    fn on_channel_attr_written(
        &mut self,
        channel: ChannelId,
        op: AttrWrite,
        notify: bool,
        result: Result<(), RtmError>,
        out: &mut Vec<Command>,
    ) {
        if let Err(e) = result {
            return self.error(format!("#{channel} attributes were not changed: {e}"));
        }
        let told = if notify { " (members notified)" } else { "" };
        self.info(format!("#{channel} attributes {}{told}", op.done_verb()));
        if self.channels.contains_key(&channel) {
            out.push(Command::GetChannelAttributes {
                channel,
                keys: None,
                explicit: false,
            });
        }
    }

    /// `all_keys`: the answer is the whole set, which replaces what the
    /// Attributes pane shows; an answer for some keys is only reported.
    fn on_channel_attributes(
        &mut self,
        channel: ChannelId,
        all_keys: bool,
        explicit: bool,
        result: Result<Vec<ChannelAttribute>, RtmError>,
    ) {
        let attrs = match result {
            Ok(attrs) => attrs,
            Err(e) => {
                if all_keys && let Some(info) = self.channels.get_mut(&channel) {
                    // What is shown stays, marked as not refreshed.
                    info.attrs_error = Some(e.to_string());
                }
                if explicit || !self.channels.contains_key(&channel) {
                    self.error(format!("cannot read #{channel} attributes: {e}"));
                }
                return;
            }
        };
        if explicit {
            self.info(if attrs.is_empty() {
                format!("#{channel} has no such attributes")
            } else {
                format!(
                    "#{channel}: {}",
                    join_names(attrs.iter().map(|a| format!("{}={}", a.key, a.value)))
                )
            });
        }
        if all_keys {
            let mark = self
                .channels
                .get(&channel)
                .is_some_and(|i| !i.attributes.is_empty());
            self.set_channel_attributes(&channel, attrs, mark);
            let now = self.now();
            if let Some(info) = self.channels.get_mut(&channel) {
                info.attrs_at = Some(now);
                info.attrs_error = None;
            }
        }
    }

    fn on_watched_loaded(&mut self, result: Result<Vec<Uid>, String>, out: &mut Vec<Command>) {
        match result {
            Ok(peers) => {
                let new: Vec<Uid> = peers
                    .into_iter()
                    .filter(|p| self.watched.insert(p.clone()))
                    .collect();
                if self.me.is_some() && !new.is_empty() {
                    out.push(Command::Subscribe(new));
                }
            }
            Err(e) => self.error(format!("cannot read the watched list: {e}")),
        }
    }

    /// Puts the local history before what this session already shows: not
    /// unread, no bell. With nothing open yet, opens the most recent
    /// conversation, so the messenger starts where it was left.
    pub(super) fn on_history_loaded(
        &mut self,
        convs: Vec<LoadedConversation>,
        out: &mut Vec<Command>,
    ) {
        let recent = convs.first().map(|l| l.conv.clone());
        self.history_ready = true;
        let mut peers = Vec::new();
        for LoadedConversation { conv: id, page } in convs {
            let mut entries = page.entries;
            for e in &mut entries {
                if let EntryKind::Message {
                    from,
                    text,
                    mention,
                    ..
                } = &mut e.kind
                {
                    *mention = self.is_mention(from, text);
                }
            }
            match &id {
                ConvId::Channel(c) => {
                    self.past_channels.insert(c.clone());
                }
                ConvId::Peer(p) => peers.push(p.clone()),
            }
            let conv = self.conversations.entry(id).or_default();
            conv.prepend(entries);
            conv.stored = Stored::after_page(page.older);
        }
        // The peers listed from the history show their presence, as those
        // we talk with do: subscribed to at once, in one request.
        self.follow_all(peers, out);
        // Entry indexes moved; find the hits again.
        self.run_search();
        if self.selected.is_none()
            && let Some(id) = recent
        {
            self.open(id, out);
        }
    }

    /// Keeps a message entry in the local history (when it is on).
    pub(super) fn record_history(&mut self, id: &ConvId, entry: &Entry, out: &mut Vec<Command>) {
        let EntryKind::Message {
            from,
            text,
            offline,
            delivery,
            media,
            ..
        } = &entry.kind
        else {
            return;
        };
        if !self.keep_history {
            return;
        }
        if let ConvId::Channel(c) = id {
            // Listed (as left) after leaving, as it will be at the next start.
            self.past_channels.insert(c.clone());
        }
        if let Some(m) = media {
            out.push(Command::RecordHistory(HistoryRecord::Media {
                conv: id.clone(),
                ts: entry.ts,
                from: from.clone(),
                message: m.to_message(),
                offline: *offline,
                outgoing: self.me.as_ref() == Some(from),
                delivery: *delivery,
            }));
            return;
        }
        out.push(Command::RecordHistory(HistoryRecord::Message {
            conv: id.clone(),
            ts: entry.ts,
            from: from.clone(),
            text: text.clone(),
            offline: *offline,
            outgoing: self.me.as_ref() == Some(from),
            delivery: *delivery,
        }));
    }

    /// Keeps the answer to our message `id` in the local history.
    pub(super) fn record_delivery(
        &self,
        id: u64,
        delivery: Delivery,
        ts: u64,
        out: &mut Vec<Command>,
    ) {
        if self.keep_history {
            out.push(Command::RecordHistory(HistoryRecord::Delivery {
                id,
                delivery,
                ts,
            }));
        }
    }

    pub(super) fn on_logged_in(
        &mut self,
        uid: Uid,
        result: Result<LoginInfo, RtmError>,
        out: &mut Vec<Command>,
    ) {
        self.login.busy = false;
        match result {
            Ok(info) => {
                self.screen = Screen::Main;
                self.me = Some(info.uid.clone());
                self.connection = ConnectionState::Connected;
                self.focus = Focus::Input;
                let mode = if info.dev_mode {
                    " (development server: tokens not checked)"
                } else {
                    ""
                };
                self.info(format!("logged in as {}{mode}; F1 for help", info.uid));
                if self.keep_history {
                    out.push(Command::OpenHistory(info.uid.clone()));
                }
                if !self.watched.is_empty() {
                    out.push(Command::Subscribe(self.watched.iter().cloned().collect()));
                }
            }
            Err(e) => {
                self.screen = Screen::Login;
                if self.login.input.is_empty() {
                    self.login.input = InputLine::with_text(uid.as_str());
                }
                self.login.error = Some(e.to_string());
            }
        }
    }
}

fn set_delivery(entry: &mut Entry, to: Delivery) {
    if let EntryKind::Message { delivery, .. } = &mut entry.kind {
        *delivery = to;
    }
}
