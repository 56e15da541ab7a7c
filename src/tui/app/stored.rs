//! The local history beyond what is loaded: older pages read as the view
//! nears the top of a conversation (or Ctrl-Home asks for the oldest line),
//! and searches that cover the stored messages, not only the loaded ones.
//! The reads run on the history's thread; `update` only asks and applies
//! the answers, so the UI never waits for the disk.

use super::*;
use crate::tui::conversation::{ConvId, EntryKind, Stored};
use crate::tui::history::{HistoryPage, RowId};

/// The next older page is read when the top of the view comes within this
/// many entries of the oldest loaded one, so that scrolling rarely stops.
pub const PREFETCH_ENTRIES: usize = 100;

impl App {
    /// Pages and searches of the local history can be asked for now.
    pub(super) fn history_readable(&self) -> bool {
        self.keep_history && self.history_ready
    }

    /// Runs after every event: asks the local history for what the open
    /// conversation's view and search need and do not have.
    pub(super) fn after_update(&mut self, out: &mut Vec<Command>) {
        if !self.history_readable() {
            return;
        }
        let (width, height) = (self.text_width(), self.page_height());
        let Some(id) = self.selected.clone() else {
            return;
        };
        let Some(conv) = self.conversations.get_mut(&id) else {
            return;
        };
        let Some(before) = conv.stored.next_page() else {
            conv.to_oldest = false;
            return;
        };
        if let Some(search) = &mut self.search
            && search.store_pending
            && search.asked.is_none()
        {
            let query = search.query.text().to_string();
            search.asked = Some(query.clone());
            out.push(Command::SearchHistory {
                conv: id.clone(),
                query,
                before,
            });
        }
        if conv.loading_older {
            return;
        }
        let until = self
            .search
            .as_ref()
            .filter(|s| s.fetching_hit)
            .and_then(|s| s.stored.first().copied());
        let near_top = conv
            .top_entry(width, height)
            .is_none_or(|top| top < PREFETCH_ENTRIES);
        if until.is_some() || conv.to_oldest || near_top {
            conv.loading_older = true;
            out.push(Command::LoadHistoryPage {
                conv: id,
                before,
                until,
            });
        }
    }

    /// An older page came: put it above the loaded entries, the view (and
    /// the search) staying on the same lines, or stepping to the match
    /// that was asked for.
    pub(super) fn on_history_page(
        &mut self,
        id: ConvId,
        before: Option<RowId>,
        result: Result<HistoryPage, String>,
    ) {
        let (width, height) = (self.text_width(), self.page_height());
        let me = self.me.clone();
        let Some(conv) = self.conversations.get_mut(&id) else {
            return;
        };
        if !conv.loading_older || conv.stored.next_page() != Some(before) {
            // Asked before a /clear: those lines stay away.
            return;
        }
        conv.loading_older = false;
        let mut page = match result {
            Ok(page) => page,
            Err(e) => {
                conv.stored = Stored::Nothing;
                conv.to_oldest = false;
                if let Some(s) = &mut self.search {
                    s.fetching_hit = false;
                }
                return self.error(format!("cannot read older messages of {id}: {e}"));
            }
        };
        for e in &mut page.entries {
            if let EntryKind::Message {
                from,
                text,
                mention,
                ..
            } = &mut e.kind
            {
                *mention = me
                    .as_ref()
                    .is_some_and(|me| me != from && crate::tui::conversation::mentions(text, me));
            }
        }
        let offered = page.entries.len();
        let n = conv.prepend(page.entries);
        // A conversation at its in-memory bound takes no more: stop asking.
        conv.stored = if n < offered {
            Stored::Nothing
        } else {
            Stored::after_page(page.older)
        };
        if conv.to_oldest {
            conv.to_top(width, height);
        }
        if self.selected.as_ref() != Some(&id) {
            return;
        }
        let Some(search) = &mut self.search else {
            return;
        };
        // Entry indexes moved by `n`; the search follows them.
        if let crate::tui::conversation::Scroll::Anchor { entry, line } = search.origin {
            search.origin = crate::tui::conversation::Scroll::Anchor {
                entry: entry + n,
                line,
            };
        }
        let current = search.current_entry().map(|e| e + n);
        search.hits = conv.search(search.query.text());
        let stored = conv.stored;
        search.stored.retain(|row| stored.holds(*row));
        if search.fetching_hit {
            // The newest match among the entries just loaded.
            match search.hits.iter().rposition(|&e| e < n) {
                Some(i) => {
                    search.fetching_hit = false;
                    search.current = Some(i);
                    conv.to_oldest = false;
                    conv.show_entry(search.hits[i], width, height);
                }
                None => search.fetching_hit = !search.stored.is_empty(),
            }
        } else {
            search.current = current.and_then(|e| search.hits.iter().position(|&h| h == e));
        }
    }

    /// The local history answered a search: the matches not loaded. With
    /// none loaded, the newest stored one is brought into view.
    pub(super) fn on_history_found(
        &mut self,
        id: ConvId,
        query: String,
        result: Result<Vec<RowId>, String>,
    ) {
        if self.selected.as_ref() != Some(&id) {
            return;
        }
        let stored = self.conversations.get(&id).map(|c| c.stored);
        let Some(search) = &mut self.search else {
            return;
        };
        if search.asked.as_deref() != Some(query.as_str()) {
            // An answer to a query typed over since.
            return;
        }
        search.store_pending = false;
        match result {
            Ok(mut rows) => {
                // Pages read since the question hold some of them, as loaded hits.
                rows.retain(|r| stored.is_some_and(|s| s.holds(*r)));
                search.stored = rows;
            }
            Err(e) => {
                search.stored.clear();
                self.error(format!("cannot search the older messages of {id}: {e}"));
                return;
            }
        }
        if search.hits.is_empty() && !search.stored.is_empty() {
            search.fetching_hit = true;
        } else if !search.editing && search.total() == 0 {
            self.search = None;
            self.note(format!("no match for {query:?}"));
        }
    }
}
