//! The input line sent: a message to the open conversation, or a slash
//! command run against the state.

use super::*;
use crate::tui::commands::{self, SlashCommand};
use crate::tui::conversation::{ConvId, Delivery, Entry, EntryKind};
use crate::tui::input::InputLine;

impl App {
    // ---------------------------------------------------------- sending

    pub(super) fn submit(&mut self, out: &mut Vec<Command>) {
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
        if let ConvId::Channel(c) = &id
            && !self.channels.contains_key(c)
        {
            return Err(format!("you are not in #{c}; /join {c} first"));
        }
        let msg_id = self.next_id;
        self.next_id += 1;
        let ts = self.now();
        let entry = Entry {
            ts,
            kind: EntryKind::Message {
                from: me,
                text: text.clone(),
                offline: false,
                delivery: Delivery::Sending(msg_id),
                mention: false,
            },
        };
        self.record_history(&id, &entry, out);
        let conv = self.conversations.entry(id.clone()).or_default();
        conv.to_bottom();
        conv.push(entry);
        out.push(match id {
            ConvId::Peer(peer) => Command::SendPeer {
                peer,
                text,
                id: msg_id,
            },
            ConvId::Channel(channel) => Command::SendChannel {
                channel,
                text,
                id: msg_id,
            },
        });
        Ok(())
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
                // Keep messages still on their way: their results must find them.
                conv.entries.retain(|e| {
                    matches!(
                        e.kind,
                        EntryKind::Message {
                            delivery: Delivery::Sending(_),
                            ..
                        }
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
            SlashCommand::Quit => self.quit(out),
            SlashCommand::Members => self.open_panel(Panel::Members)?,
            SlashCommand::Attrs => self.open_panel(Panel::Attributes)?,
        }
        Ok(())
    }
}
