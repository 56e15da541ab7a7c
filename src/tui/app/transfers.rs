//! Files and images: `/file` and `/image` upload and then send, `/save`
//! downloads; each transfer is a progress line in its conversation until
//! it ends, and Esc (in an empty input line) cancels the newest one of the
//! open conversation. The executor holds the SDK's transfer handlers; the
//! app knows transfers by id only.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::client::{ConnectionState, MediaType, RtmMessage};
use crate::tui::conversation::{ConvId, Delivery, Entry, EntryKind, TransferLine};
use crate::tui::media::{Media, expand_path};

/// A transfer that has not ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub conv: ConvId,
    pub upload: bool,
    pub file_name: String,
    /// When it started (the app's clock), for its speed.
    pub started: u64,
}

/// Speed is shown once a transfer has run this long (earlier figures jump).
const SPEED_AFTER_MS: u64 = 500;

impl App {
    /// The running transfers, by id.
    pub fn transfers(&self) -> &BTreeMap<u64, Transfer> {
        &self.transfers
    }

    /// Sets the home directory that `~` in paths stands for (tests fix it).
    pub fn set_home(&mut self, home: Option<PathBuf>) {
        self.home = home;
    }

    /// `/file` and `/image`: a progress line in the open conversation, and
    /// the upload; the checks that need the disk (exists, size, picture)
    /// come back from the executor in words.
    pub(super) fn send_file(
        &mut self,
        typed: String,
        image: bool,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        let what = if image { "/image" } else { "/file" };
        let Some(conv) = self.selected.clone() else {
            return Err(format!(
                "no conversation is open: open one first, then {what} <path>"
            ));
        };
        if self.me.is_none() {
            return Err("not logged in".into());
        }
        if let ConvId::Channel(c) = &conv
            && !self.channels.contains_key(c)
        {
            return Err(format!("you are not in #{c}; /join {c} first"));
        }
        match self.connection {
            ConnectionState::Connected => {}
            ConnectionState::Aborted | ConnectionState::Disconnected => {
                return Err(
                    "the session has ended, so nothing can be sent; quit and start rtm chat again"
                        .into(),
                );
            }
            // A file is not queued like a text: its bytes need the link.
            _ => {
                return Err(format!(
                    "not connected; {what} again once the connection is back"
                ));
            }
        }
        let path = expand_path(&typed, self.home.as_deref());
        let file_name = Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| typed.clone());
        let id = self.next_id;
        self.next_id += 1;
        self.start_transfer(id, conv, true, file_name);
        out.push(Command::Upload {
            id,
            path,
            typed,
            kind: if image {
                MediaType::Image
            } else {
                MediaType::File
            },
        });
        Ok(())
    }

    /// `/save [destination]`: the search hit when it is a file, else the
    /// newest file of the open conversation.
    pub(super) fn save_file(
        &mut self,
        dest: Option<String>,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        let Some(id) = self.selected.clone() else {
            return Err("no conversation is open: open the one with the file, then /save".into());
        };
        let media = self.file_to_save(&id).ok_or_else(|| {
            format!("no file in {id} to save: files and pictures people send show as ▤ and ▨ lines")
        })?;
        if self.me.is_none() {
            return Err("not logged in".into());
        }
        let transfer = self.next_id;
        self.next_id += 1;
        self.start_transfer(transfer, id, false, media.file_name.clone());
        out.push(Command::Download {
            id: transfer,
            media_id: media.media_id.clone(),
            file_name: media.file_name.clone(),
            dest: dest.map(|d| expand_path(&d, self.home.as_deref())),
        });
        Ok(())
    }

    /// The file `/save` takes in conversation `id`: the search's current
    /// hit when that is a file (a way to pick an older one), else the newest.
    pub fn file_to_save(&self, id: &ConvId) -> Option<Arc<Media>> {
        let conv = self.conversations.get(id)?;
        let hit = self
            .search
            .as_ref()
            .and_then(SearchState::current_entry)
            .and_then(|i| conv.entries.get(i))
            .and_then(|e| e.kind.media());
        hit.or_else(|| conv.entries.iter().rev().find_map(|e| e.kind.media()))
            .filter(|m| !m.media_id.is_empty())
            .cloned()
    }

    fn start_transfer(&mut self, id: u64, conv: ConvId, upload: bool, file_name: String) {
        let ts = self.now();
        let c = self.conversations.entry(conv.clone()).or_default();
        c.to_bottom();
        c.push(Entry {
            ts,
            kind: EntryKind::Transfer(TransferLine {
                id,
                upload,
                file_name: file_name.clone(),
                current: 0,
                total: 0,
                speed: None,
                canceling: false,
            }),
        });
        self.transfers.insert(
            id,
            Transfer {
                conv,
                upload,
                file_name,
                started: ts,
            },
        );
    }

    /// The progress line of transfer `id`.
    fn transfer_entry(&mut self, id: u64) -> Option<&mut Entry> {
        let conv = &self.transfers.get(&id)?.conv;
        self.conversations
            .get_mut(conv)?
            .entries
            .iter_mut()
            .rev()
            .find(|e| matches!(&e.kind, EntryKind::Transfer(t) if t.id == id))
    }

    /// Esc in an empty input line: cancels the newest running transfer of
    /// the open conversation; false when there is none.
    pub(super) fn cancel_newest_transfer(&mut self, out: &mut Vec<Command>) -> bool {
        let Some(open) = self.selected.clone() else {
            return false;
        };
        let newest = self
            .transfers
            .iter()
            .rev()
            .map(|(id, t)| (*id, t))
            .find(|(id, t)| {
                t.conv == open
                    && !self.conversations.get(&open).is_some_and(|c| {
                        c.entries.iter().rev().any(
                        |e| matches!(&e.kind, EntryKind::Transfer(l) if l.id == *id && l.canceling),
                    )
                    })
            })
            .map(|(id, t)| (id, t.upload, t.file_name.clone()));
        let Some((id, upload, name)) = newest else {
            return false;
        };
        if let Some(Entry {
            kind: EntryKind::Transfer(t),
            ..
        }) = self.transfer_entry(id)
        {
            t.canceling = true;
        }
        let verb = if upload { "sending" } else { "saving" };
        self.note(format!("canceling {verb} {name}…"));
        out.push(Command::CancelTransfer(id));
        true
    }

    pub(super) fn on_transfer_progress(&mut self, id: u64, current: u64, total: u64) {
        let Some(started) = self.transfers.get(&id).map(|t| t.started) else {
            return;
        };
        let elapsed = self.now().saturating_sub(started);
        if let Some(Entry {
            kind: EntryKind::Transfer(t),
            ..
        }) = self.transfer_entry(id)
        {
            t.current = current;
            t.total = total;
            t.speed = (elapsed >= SPEED_AFTER_MS).then(|| current * 1000 / elapsed.max(1));
        }
    }

    /// An upload ended: its line becomes the file's message, sent now;
    /// or an error line saying why not.
    pub(super) fn on_uploaded(
        &mut self,
        id: u64,
        result: Result<RtmMessage, String>,
        out: &mut Vec<Command>,
    ) {
        let canceling = self.transfer_canceling(id);
        let Some(transfer) = self.transfers.remove(&id) else {
            return;
        };
        let result = result.and_then(|message| match Media::from_message(&message) {
            Some(media) => Ok((message, media)),
            None => Err("the server's answer was not a file".to_string()),
        });
        let (message, media) = match result {
            Ok(sent) => sent,
            Err(e) => {
                let kind = if canceling {
                    EntryKind::System(format!("sending {} canceled", transfer.file_name))
                } else {
                    EntryKind::Error(format!("could not send {}: {e}", transfer.file_name))
                };
                if canceling {
                    self.note(format!("sending {} canceled", transfer.file_name));
                } else {
                    self.error(format!("could not send {}: {e}", transfer.file_name));
                }
                self.replace_transfer(&transfer.conv, id, kind);
                return;
            }
        };
        let Some(me) = self.me.clone() else {
            return;
        };
        // A link that went down meanwhile: queued like a text, sent (as
        // this file's message) once it is back.
        let queued = self.connection != ConnectionState::Connected;
        let text = format!("[{}]", media.summary());
        let kind = EntryKind::Message {
            from: me,
            text: text.clone(),
            offline: false,
            delivery: if queued {
                Delivery::Queued(id)
            } else {
                Delivery::Sending(id)
            },
            mention: false,
            media: Some(Arc::new(media)),
        };
        let ts = self.now();
        let conv = transfer.conv.clone();
        self.replace_transfer(&conv, id, kind.clone());
        self.record_history(&conv, &Entry { ts, kind }, out);
        if queued {
            let at = self.outbox.partition_point(|o| o.id < id);
            self.outbox.insert(at, Outgoing { conv, id, text });
        } else {
            out.push(Command::SendMedia { conv, message, id });
        }
    }

    /// A download ended: "saved to <path>", or why not.
    pub(super) fn on_saved(&mut self, id: u64, result: Result<PathBuf, String>) {
        let canceling = self.transfer_canceling(id);
        let Some(transfer) = self.transfers.remove(&id) else {
            return;
        };
        let name = &transfer.file_name;
        let kind = match result {
            Ok(path) => {
                self.info(format!("saved to {}", path.display()));
                EntryKind::System(format!("saved {name} to {}", path.display()))
            }
            Err(_) if canceling => {
                self.note(format!("saving {name} canceled"));
                EntryKind::System(format!("saving {name} canceled"))
            }
            Err(e) => {
                self.error(format!("could not save {name}: {e}"));
                EntryKind::Error(format!("could not save {name}: {e}"))
            }
        };
        self.replace_transfer(&transfer.conv, id, kind);
    }

    fn transfer_canceling(&mut self, id: u64) -> bool {
        matches!(
            self.transfer_entry(id),
            Some(Entry { kind: EntryKind::Transfer(t), .. }) if t.canceling
        )
    }

    /// Turns transfer `id`'s line into `kind`, where it is (now).
    fn replace_transfer(&mut self, conv: &ConvId, id: u64, kind: EntryKind) {
        let ts = self.now();
        let Some(c) = self.conversations.get_mut(conv) else {
            return;
        };
        match c
            .entries
            .iter_mut()
            .rev()
            .find(|e| matches!(&e.kind, EntryKind::Transfer(t) if t.id == id))
        {
            Some(e) => {
                e.ts = ts;
                e.kind = kind;
            }
            // Cleared meanwhile (/clear): the outcome still shows.
            None => {
                c.push(Entry { ts, kind });
            }
        }
    }
}
