//! The input line sent: a message to the open conversation, or a slash
//! command run against the state.

use super::*;
use crate::client::ConnectionState;
use crate::tui::commands::{self, SlashCommand};
use crate::tui::conversation::{ConvId, Delivery, Entry, EntryKind};
use crate::tui::input::InputLine;

impl App {
    // ---------------------------------------------------------- sending

    pub(super) fn submit(&mut self, out: &mut Vec<Command>) {
        self.attr_edit = None;
        let line = self.input.take();
        if line.trim().is_empty() {
            return;
        }
        self.history_of_selected().remember(&line);
        let run = if let Some(literal) = line.strip_prefix("//") {
            // `//text` sends "/text": a way to start a message with a slash.
            self.send_to_selected(format!("/{literal}"), out)
        } else if line.starts_with('/') {
            commands::parse(line.trim_end())
                .map_err(|e| e.to_string())
                .and_then(|cmd| self.run_slash(cmd, out))
        } else {
            self.send_to_selected(line.clone(), out)
        };
        if let Err(e) = run {
            self.error(e);
            // Keep the line so the mistake can be fixed instead of retyped.
            self.input = InputLine::with_text(line);
        }
    }

    /// Sends to the open conversation, if there is one.
    pub(super) fn send_to_selected(
        &mut self,
        text: String,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        match self.selected.clone() {
            Some(id) => self.send(id, text, out),
            None => {
                Err("no conversation is open: /msg <peer> <text> or /join <channel> first".into())
            }
        }
    }

    /// Shows our message at once (marked as on its way) and asks the executor to send it.
    pub(super) fn send(
        &mut self,
        id: ConvId,
        text: String,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        let Some(me) = self.me.clone() else {
            return Err("not logged in".into());
        };
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(format!(
                "the message is {} bytes, over the limit of {MAX_MESSAGE_BYTES} bytes (32 KB): shorten it or send it in parts",
                text.len()
            ));
        }
        if let ConvId::Channel(c) = &id
            && !self.channels.contains_key(c)
        {
            return Err(format!("you are not in #{c}; /join {c} first"));
        }
        self.check_session()?;
        let msg_id = self.next_id;
        self.next_id += 1;
        let ts = self.now();
        // While the link is down the message waits in the outbox, shown as
        // queued, and goes out in order once the connection is back.
        let queued = self.connection != ConnectionState::Connected;
        let entry = Entry {
            ts,
            kind: EntryKind::Message {
                from: me,
                text: text.clone(),
                offline: false,
                delivery: if queued {
                    Delivery::Queued(msg_id)
                } else {
                    Delivery::Sending(msg_id)
                },
                mention: false,
                media: None,
            },
        };
        self.record_history(&id, &entry, out);
        let conv = self.conversations.entry(id.clone()).or_default();
        conv.to_bottom();
        conv.push(entry);
        if queued {
            self.outbox.push(Outgoing {
                conv: id,
                id: msg_id,
                text,
            });
            self.info(format!(
                "not connected: {} queued, sent when the connection is back",
                plural(self.outbox.len(), "message")
            ));
        } else {
            out.push(send_command(id, text, None, msg_id));
        }
        Ok(())
    }

    /// A message can go out now or after a reconnection; not once the
    /// session has ended (nothing would ever send it).
    fn check_session(&self) -> Result<(), String> {
        match self.connection {
            ConnectionState::Aborted | ConnectionState::Disconnected => Err(
                "the session has ended, so nothing can be sent; quit and start rtm chat again"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Puts a message whose send failed because the link went down back in
    /// the outbox, in the order it was typed.
    pub(super) fn requeue(&mut self, conv: ConvId, id: u64, text: String) {
        if let Some(entry) = self
            .conversations
            .get_mut(&conv)
            .and_then(|c| c.sending_mut(id))
            && let EntryKind::Message { delivery, .. } = &mut entry.kind
        {
            *delivery = Delivery::Queued(id);
        }
        let at = self.outbox.partition_point(|o| o.id < id);
        self.outbox.insert(at, Outgoing { conv, id, text });
    }

    /// The link is back: sends the outbox, oldest first (the executor's
    /// ordered lane keeps that order on the wire).
    pub(super) fn flush_outbox(&mut self, out: &mut Vec<Command>) {
        if self.outbox.is_empty() {
            return;
        }
        let n = self.outbox.len();
        for o in std::mem::take(&mut self.outbox) {
            let mut media = None;
            if let Some(entry) = self
                .conversations
                .get_mut(&o.conv)
                .and_then(|c| c.sending_mut(o.id))
                && let EntryKind::Message {
                    delivery, media: m, ..
                } = &mut entry.kind
            {
                *delivery = Delivery::Sending(o.id);
                media = m.clone();
            }
            out.push(send_command(o.conv, o.text, media.as_deref(), o.id));
        }
        self.note(format!(
            "connected again: sending {} from the outbox",
            plural(n, "queued message")
        ));
    }

    /// The session ended for good (aborted, logged out): what waits in the
    /// outbox will not go out by itself; it is marked unsent, for the retry key.
    pub(super) fn fail_outbox(&mut self, out: &mut Vec<Command>) -> usize {
        let n = self.outbox.len();
        let ts = self.now();
        for o in std::mem::take(&mut self.outbox) {
            if let Some(entry) = self
                .conversations
                .get_mut(&o.conv)
                .and_then(|c| c.sending_mut(o.id))
                && let EntryKind::Message { delivery, .. } = &mut entry.kind
            {
                *delivery = Delivery::Unsent(o.id);
            }
            self.record_delivery(o.id, Delivery::Unsent(o.id), ts, out);
        }
        n
    }

    /// The retry key: sends again the open conversation's messages that
    /// were not sent in this session, oldest first (queued if the link is down).
    pub(super) fn retry_failed(&mut self, out: &mut Vec<Command>) {
        let Some(conv_id) = self.selected.clone() else {
            return self.error("no conversation is open");
        };
        if let ConvId::Channel(c) = &conv_id
            && !self.channels.contains_key(c)
        {
            return self.error(format!("you are not in #{c}; /join {c} first, then retry"));
        }
        if let Err(e) = self.check_session() {
            return self.error(e);
        }
        let queued = self.connection != ConnectionState::Connected;
        let mut again = Vec::new();
        if let Some(conv) = self.conversations.get_mut(&conv_id) {
            for e in &mut conv.entries {
                if let EntryKind::Message {
                    delivery,
                    text,
                    media,
                    ..
                } = &mut e.kind
                    && let Delivery::Unsent(id) = *delivery
                {
                    *delivery = if queued {
                        Delivery::Queued(id)
                    } else {
                        Delivery::Sending(id)
                    };
                    again.push((id, text.clone(), media.clone()));
                }
            }
        }
        if again.is_empty() {
            return self.info("nothing to send again here");
        }
        let n = again.len();
        for (id, text, media) in again {
            if queued {
                self.requeue(conv_id.clone(), id, text);
            } else {
                out.push(send_command(conv_id.clone(), text, media.as_deref(), id));
            }
        }
        if queued {
            self.info(format!(
                "not connected: {} queued again, sent when the connection is back",
                plural(n, "message")
            ));
        } else {
            self.info(format!("sending {} again…", plural(n, "message")));
        }
    }

    /// /mute and /unmute: the named conversation, or the open one.
    pub(super) fn set_muted(
        &mut self,
        target: Option<ConvId>,
        mute: bool,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        let Some(id) = target.or_else(|| self.selected.clone()) else {
            return Err(
                "no conversation is open; say which: /mute <peer> or /mute #channel".into(),
            );
        };
        let changed = if mute {
            self.muted.insert(id.clone())
        } else {
            self.muted.remove(&id)
        };
        let word = if mute { "muted" } else { "unmuted" };
        if changed {
            self.info(format!("{id} {word}"));
            out.push(Command::SaveMuted(self.muted.iter().cloned().collect()));
        } else {
            self.info(format!("{id} was already {word}"));
        }
        Ok(())
    }

    /// Runs a parsed command; an error (in words) when it cannot apply now.
    pub(super) fn run_slash(
        &mut self,
        cmd: SlashCommand,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        match cmd {
            SlashCommand::Msg { peer, text } => {
                self.open(ConvId::Peer(peer.clone()), out);
                self.send(ConvId::Peer(peer), text, out)?;
            }
            SlashCommand::Join(channel) => {
                if self.channels.contains_key(&channel) {
                    self.open(ConvId::Channel(channel.clone()), out);
                    self.info(format!("already in #{channel}"));
                } else {
                    self.info(format!("joining #{channel}…"));
                    self.joining.insert(channel.clone());
                    out.push(Command::Join(channel));
                }
            }
            SlashCommand::Leave(channel) => {
                let channel = channel.or_else(|| self.selected_channel().cloned());
                match channel {
                    None => {
                        return Err(
                            "/leave: no channel is open; say which: /leave <channel>".into()
                        );
                    }
                    Some(c) if !self.channels.contains_key(&c) => {
                        return Err(format!("/leave: you are not in #{c}"));
                    }
                    Some(c) => {
                        self.info(format!("leaving #{c}…"));
                        out.push(Command::Leave(c));
                    }
                }
            }
            SlashCommand::Watch(peers) => {
                self.watched.extend(peers.iter().cloned());
                self.info(format!("watching {}", join_names(&peers)));
                out.push(Command::Subscribe(peers));
                out.push(Command::SaveWatched(self.watched.iter().cloned().collect()));
            }
            SlashCommand::Unwatch(peers) => {
                for p in &peers {
                    self.watched.remove(p);
                    // Without a subscription the state would silently go stale.
                    self.presence.remove(p);
                }
                self.info(format!("no longer watching {}", join_names(&peers)));
                out.push(Command::Unsubscribe(peers));
                out.push(Command::SaveWatched(self.watched.iter().cloned().collect()));
            }
            SlashCommand::Status(peers) => {
                self.info(format!("asking whether {} online…", join_names(&peers)));
                out.push(Command::QueryStatus(peers));
            }
            SlashCommand::UserAttrWrite(op) => out.push(Command::UserAttrWrite(op)),
            SlashCommand::UserAttrGet { uid, keys } => out.push(Command::GetUserAttributes {
                uid,
                keys,
                explicit: true,
            }),
            SlashCommand::ChannelAttrWrite {
                channel,
                op,
                notify,
            } => out.push(Command::ChannelAttrWrite {
                channel,
                op,
                notify,
            }),
            SlashCommand::ChannelAttrGet { channel, keys } => {
                out.push(Command::GetChannelAttributes {
                    channel,
                    keys,
                    explicit: true,
                })
            }
            SlashCommand::Help(topic) => {
                self.help = Some(HelpOverlay { scroll: 0, topic });
            }
            SlashCommand::Search(text) => {
                self.start_search(text);
                if let Some(s) = &mut self.search {
                    s.editing = false;
                    if !s.may_match() {
                        let q = s.query.text().to_string();
                        self.search = None;
                        self.note(format!("no match for {q:?}"));
                    } else {
                        self.focus = Focus::Conversation;
                    }
                }
            }
            SlashCommand::Mute(target) => self.set_muted(target, true, out)?,
            SlashCommand::Unmute(target) => self.set_muted(target, false, out)?,
            SlashCommand::Token(token) => {
                self.info("renewing the login token…");
                out.push(Command::RenewToken(token));
            }
            SlashCommand::Clear => {
                let Some(conv) = self
                    .selected
                    .as_ref()
                    .and_then(|s| self.conversations.get_mut(s))
                else {
                    return Err("no conversation is open".into());
                };
                // Keep messages still on their way (their results must find
                // them), those waiting to be sent or sent again, and the
                // lines of running transfers.
                conv.entries.retain(|e| {
                    matches!(
                        e.kind,
                        EntryKind::Message {
                            delivery: Delivery::Sending(_)
                                | Delivery::Queued(_)
                                | Delivery::Unsent(_),
                            ..
                        } | EntryKind::Transfer(_)
                    )
                });
                conv.to_bottom();
                conv.marker = None;
                conv.first_unread = None;
                // Cleared lines do not come back from the local history.
                conv.stored = crate::tui::conversation::Stored::Nothing;
                conv.loading_older = false;
                conv.to_oldest = false;
                self.search = None;
            }
            SlashCommand::Call { peer, content } => self.start_call(peer, content, out)?,
            SlashCommand::Answer { accept, rest } => self.answer_call(accept, &rest, out)?,
            SlashCommand::Cancel(peer) => self.cancel_call(peer, out)?,
            SlashCommand::SendFile { path, image } => self.send_file(path, image, out)?,
            SlashCommand::Save(dest) => self.save_file(dest, out)?,
            SlashCommand::Quit => self.quit(out),
            SlashCommand::Members => self.open_panel(Panel::Members)?,
            SlashCommand::Attrs => self.open_panel(Panel::Attributes)?,
        }
        Ok(())
    }
}

/// The command that sends `text` to a conversation under the app's id `id`
/// (a file's message when the entry carries `media`).
fn send_command(
    conv: ConvId,
    text: String,
    media: Option<&crate::tui::media::Media>,
    id: u64,
) -> Command {
    if let Some(m) = media {
        return Command::SendMedia {
            conv,
            message: m.to_message(),
            id,
        };
    }
    match conv {
        ConvId::Peer(peer) => Command::SendPeer { peer, text, id },
        ConvId::Channel(channel) => Command::SendChannel { channel, text, id },
    }
}

/// "1 message", "3 messages".
pub(super) fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
