//! Conversations (one per peer, one per channel) and how their entries turn
//! into wrapped screen lines. Only the lines that are visible get wrapped, so
//! a conversation of tens of thousands of entries draws as fast as a short one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

use super::media::{Media, bar, human_size, percent};
use super::theme::{CALL_MARK, FILE_MARK, IMAGE_MARK, MENTION_MARK, Theme};
use crate::client::{ChannelId, Uid};

/// Oldest entries are dropped beyond this many, so a long-running session
/// keeps bounded memory.
pub const MAX_ENTRIES: usize = 50_000;

/// Width of `HH:MM `: continuation lines of a wrapped entry are indented by it.
pub const TIME_WIDTH: usize = 6;

/// Which conversation: a direct one with a peer, or a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvId {
    Peer(Uid),
    Channel(ChannelId),
}

impl fmt::Display for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvId::Peer(p) => write!(f, "{p}"),
            ConvId::Channel(c) => write!(f, "#{c}"),
        }
    }
}

/// Where one of our own messages is on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Received from someone else.
    Received,
    /// Handed to the SDK; the id matches the command result.
    Sending(u64),
    /// In the outbox, waiting for the connection to come back; the id is
    /// the one it will be sent with.
    Queued(u64),
    Sent,
    /// Refused or lost in this session; the retry key sends it again under
    /// the same id.
    Unsent(u64),
    /// Not sent, as the local history remembers it from an earlier run.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Message {
        from: Uid,
        text: String,
        /// Stored by the server while we were offline.
        offline: bool,
        delivery: Delivery,
        /// The text names us (decided once, on arrival).
        mention: bool,
        /// A FILE or IMAGE message: what it carries (then `text` is its
        /// summary, for searches, notifications and the history).
        media: Option<Arc<Media>>,
    },
    /// Joins and leaves: `-- bob joined`, drawn dim.
    Quiet(String),
    /// Notes about the conversation ("bob is offline: stored …").
    System(String),
    Error(String),
    /// How a call went: "alice called — accepted: sure", "missed call from
    /// bob"; kept in the local history like a message.
    Call(String),
    /// A file on its way up or down, with its progress bar; replaced by
    /// the file's message (an upload) or a "saved to" line when done.
    Transfer(TransferLine),
}

/// What a transfer's line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLine {
    /// The app's id of the transfer (the executor's key of its handler).
    pub id: u64,
    /// Ours going up (`/file`, `/image`), or a `/save` coming down.
    pub upload: bool,
    pub file_name: String,
    pub current: u64,
    /// 0 until the size is known.
    pub total: u64,
    /// Bytes a second, once it can be told.
    pub speed: Option<u64>,
    /// Esc was pressed; the executor is stopping it.
    pub canceling: bool,
}

impl EntryKind {
    /// The text a search looks in.
    pub fn text(&self) -> &str {
        match self {
            EntryKind::Message { text, .. } => text,
            EntryKind::Quiet(t)
            | EntryKind::System(t)
            | EntryKind::Error(t)
            | EntryKind::Call(t) => t,
            EntryKind::Transfer(t) => &t.file_name,
        }
    }

    /// The media of a FILE or IMAGE message.
    pub fn media(&self) -> Option<&Arc<Media>> {
        match self {
            EntryKind::Message { media, .. } => media.as_ref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// ms since the epoch (server time for messages when known).
    pub ts: u64,
    pub kind: EntryKind,
}

/// Where the view of a conversation is. Anchored to an entry rather than
/// counted in lines from the bottom, so scrolling, drawing and new messages
/// cost what is on screen, never what is above it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scroll {
    /// Following the newest line.
    #[default]
    Bottom,
    /// The bottom row of the view shows line `line` (of its wrapped lines)
    /// of entry `entry`.
    Anchor { entry: usize, line: usize },
}

/// What the drawing of a conversation marks besides the entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Highlight<'a> {
    /// Search text: its occurrences are marked.
    pub query: Option<&'a str>,
    /// The entry of the current search hit.
    pub current: Option<usize>,
}

/// What of a conversation's local history is not loaded yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stored {
    /// Not known: the start-up load left this conversation out (or has not
    /// come yet); the rows there were when the file was opened may hold some.
    #[default]
    Unknown,
    /// Older messages remain in the store, before this row id.
    Before(i64),
    /// Everything stored is loaded (or nothing is stored).
    Nothing,
}

impl Stored {
    /// The `before` of the request for the next older page; `None` when
    /// there is nothing more to read.
    pub fn next_page(self) -> Option<Option<i64>> {
        match self {
            Stored::Unknown => Some(None),
            Stored::Before(row) => Some(Some(row)),
            Stored::Nothing => None,
        }
    }

    /// Where the loaded part ends after a page whose oldest row is `older`.
    pub fn after_page(older: Option<i64>) -> Stored {
        older.map_or(Stored::Nothing, Stored::Before)
    }

    /// Is stored row `row` still to be loaded?
    pub fn holds(self, row: i64) -> bool {
        match self {
            Stored::Unknown => true,
            Stored::Before(before) => row < before,
            Stored::Nothing => false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    pub entries: Vec<Entry>,
    /// Messages that arrived while another conversation was open.
    pub unread: usize,
    /// Of those, the ones that name us.
    pub mentions: usize,
    pub scroll: Scroll,
    /// Messages that arrived below the view while scrolled up.
    pub new_below: usize,
    /// The first entry not yet seen (while `unread` > 0).
    pub first_unread: Option<usize>,
    /// The "new" line is drawn above this entry: where unread began when the
    /// conversation was last opened.
    pub marker: Option<usize>,
    /// Lines sent from this conversation, oldest first (Up/Down recall them).
    pub history: Vec<String>,
    /// What was being typed here when another conversation was opened.
    pub draft: String,
    /// The older messages of the local history not loaded yet.
    pub stored: Stored,
    /// A page of older messages was asked of the history and has not come.
    pub loading_older: bool,
    /// The oldest line was asked for (Ctrl-Home): pages are read and the
    /// view kept at the top until the start of the history.
    pub to_oldest: bool,
}

/// How many sent lines each conversation remembers for Up/Down.
pub const HISTORY_LEN: usize = 100;

/// Does `text` name `me` (as a whole word, any case, with or without `@`)?
pub fn mentions(text: &str, me: &Uid) -> bool {
    let hay = text.to_ascii_lowercase();
    let needle = me.as_str().to_ascii_lowercase();
    if needle.is_empty() {
        return false;
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut from = 0;
    while let Some(i) = hay[from..].find(&needle) {
        let at = from + i;
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        if !word(before) && !word(after) {
            return true;
        }
        from = at + needle.len().max(1);
        while !hay.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

impl Conversation {
    /// Adds an entry; returns how many of the oldest were dropped to stay
    /// within [`MAX_ENTRIES`] (indexes into `entries` shift by that much).
    pub fn push(&mut self, entry: Entry) -> usize {
        let mut dropped = 0;
        if self.entries.len() >= MAX_ENTRIES {
            dropped = MAX_ENTRIES / 10;
            self.entries.drain(..dropped);
            let shift = |i: Option<usize>| i.and_then(|i| i.checked_sub(dropped));
            self.first_unread = shift(self.first_unread);
            self.marker = shift(self.marker);
            if let Scroll::Anchor { entry, line } = self.scroll {
                self.scroll = match entry.checked_sub(dropped) {
                    Some(entry) => Scroll::Anchor { entry, line },
                    None => Scroll::Anchor { entry: 0, line: 0 },
                };
            }
        }
        self.entries.push(entry);
        dropped
    }

    /// Puts older entries (from the local history) before those already
    /// here, keeping the view, the unread start and the "new" line on the
    /// same entries. Beyond [`MAX_ENTRIES`] the oldest of `older` are left
    /// out. Returns how many were added (indexes shift by that much).
    pub fn prepend(&mut self, mut older: Vec<Entry>) -> usize {
        let room = MAX_ENTRIES.saturating_sub(self.entries.len());
        if older.len() > room {
            older.drain(..older.len() - room);
        }
        let n = older.len();
        if n == 0 {
            return 0;
        }
        older.append(&mut self.entries);
        self.entries = older;
        self.first_unread = self.first_unread.map(|i| i + n);
        self.marker = self.marker.map(|i| i + n);
        if let Scroll::Anchor { entry, line } = self.scroll {
            self.scroll = Scroll::Anchor {
                entry: entry + n,
                line,
            };
        }
        n
    }

    /// The entry of our own message `id` that is still on its way (handed
    /// to the SDK or waiting in the outbox).
    pub fn sending_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.entries.iter_mut().rev().find(|e| {
            matches!(
                e.kind,
                EntryKind::Message { delivery: Delivery::Sending(i) | Delivery::Queued(i), .. }
                    if i == id
            )
        })
    }

    /// Entry `i` as drawn: the "new" line first when it carries the marker.
    pub fn block(
        &self,
        i: usize,
        me: Option<&Uid>,
        theme: &Theme,
        width: usize,
        hl: Highlight,
    ) -> Vec<Line<'static>> {
        let Some(entry) = self.entries.get(i) else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        let new_day = match i.checked_sub(1).and_then(|p| self.entries.get(p)) {
            None => true,
            Some(prev) => local_day(prev.ts) != local_day(entry.ts),
        };
        if new_day {
            lines.push(day_line(theme, width, entry.ts));
        }
        if self.marker == Some(i) {
            lines.push(marker_line(theme, width));
        }
        lines.extend(entry_lines(
            entry,
            me,
            theme,
            width,
            hl.query,
            hl.current == Some(i),
        ));
        lines
    }

    fn lines_in(&self, i: usize, width: usize) -> usize {
        static PLAIN: std::sync::LazyLock<Theme> = std::sync::LazyLock::new(Theme::blank);
        self.block(i, None, &PLAIN, width, Highlight::default())
            .len()
            .max(1)
    }

    /// The anchor of the bottom row, `None` when there is nothing to show.
    fn anchor(&self, width: usize) -> Option<(usize, usize)> {
        let last = self.entries.len().checked_sub(1)?;
        Some(match self.scroll {
            Scroll::Bottom => (last, self.lines_in(last, width) - 1),
            Scroll::Anchor { entry, line } => {
                let entry = entry.min(last);
                (entry, line.min(self.lines_in(entry, width) - 1))
            }
        })
    }

    /// Walks `n` lines up from (`e`, `l`); stops at the first line.
    fn walk_up(
        &self,
        (mut e, mut l): (usize, usize),
        mut n: usize,
        width: usize,
    ) -> (usize, usize) {
        while n > 0 {
            if l >= n {
                return (e, l - n);
            }
            if e == 0 {
                return (0, 0);
            }
            n -= l + 1;
            e -= 1;
            l = self.lines_in(e, width) - 1;
        }
        (e, l)
    }

    /// Walks `n` lines down; `None` when that passes the last line.
    fn walk_down(
        &self,
        (mut e, mut l): (usize, usize),
        mut n: usize,
        width: usize,
    ) -> Option<(usize, usize)> {
        while n > 0 {
            let here = self.lines_in(e, width);
            if l + n < here {
                return Some((e, l + n));
            }
            n -= here - l;
            e += 1;
            l = 0;
            if e >= self.entries.len() {
                return None;
            }
        }
        Some((e, l))
    }

    /// Sets the view's bottom row to `at`, keeping the first line from
    /// leaving the top of a `height`-row view, and following again at the bottom.
    fn settle(&mut self, at: (usize, usize), width: usize, height: usize) {
        let top = self.walk_up(at, height.saturating_sub(1), width);
        let at = if top == (0, 0) {
            // Too close to the top: show the first page.
            match self.walk_down((0, 0), height.saturating_sub(1), width) {
                Some(a) => a.max(at),
                None => {
                    self.scroll = Scroll::Bottom;
                    return;
                }
            }
        } else {
            at
        };
        let bottom = self.anchor_bottom(width);
        self.scroll = if Some(at) >= bottom {
            Scroll::Bottom
        } else {
            Scroll::Anchor {
                entry: at.0,
                line: at.1,
            }
        };
        if self.scroll == Scroll::Bottom {
            self.new_below = 0;
        }
    }

    fn anchor_bottom(&self, width: usize) -> Option<(usize, usize)> {
        let last = self.entries.len().checked_sub(1)?;
        Some((last, self.lines_in(last, width) - 1))
    }

    /// Scrolls up (older) `n` lines in a `width` x `height` view.
    pub fn scroll_up(&mut self, n: usize, width: usize, height: usize) {
        if let Some(at) = self.anchor(width) {
            let to = self.walk_up(at, n, width);
            self.settle(to, width, height);
        }
    }

    /// Scrolls down (newer) `n` lines; back to following at the bottom.
    pub fn scroll_down(&mut self, n: usize, width: usize, height: usize) {
        let Some(at) = self.anchor(width) else { return };
        match self.walk_down(at, n, width) {
            Some(to) => self.settle(to, width, height),
            None => self.to_bottom(),
        }
    }

    pub fn to_bottom(&mut self) {
        self.scroll = Scroll::Bottom;
        self.new_below = 0;
    }

    pub fn to_top(&mut self, width: usize, height: usize) {
        if !self.entries.is_empty() {
            self.settle((0, 0), width, height);
        }
    }

    /// Scrolls so that entry `i` is in the middle of the view (or as near as the ends allow).
    pub fn show_entry(&mut self, i: usize, width: usize, height: usize) {
        if i >= self.entries.len() {
            return;
        }
        let end = (i, self.lines_in(i, width) - 1);
        match self.walk_down(end, height / 2, width) {
            Some(to) => self.settle(to, width, height),
            None => self.to_bottom(),
        }
    }

    /// The entry at the top row of a `width` x `height` view.
    pub fn top_entry(&self, width: usize, height: usize) -> Option<usize> {
        let at = self.anchor(width)?;
        Some(self.walk_up(at, height.saturating_sub(1), width).0)
    }

    /// Entries below the view (0 when following).
    pub fn entries_below(&self) -> usize {
        match self.scroll {
            Scroll::Bottom => 0,
            Scroll::Anchor { entry, .. } => self.entries.len().saturating_sub(entry + 1),
        }
    }

    /// The lines to draw in a `width` x `height` view: only the entries on
    /// screen are wrapped, whatever the length of the conversation.
    pub fn visible_lines(
        &self,
        me: Option<&Uid>,
        theme: &Theme,
        width: usize,
        height: usize,
        hl: Highlight,
    ) -> Vec<Line<'static>> {
        let Some((e, l)) = self.anchor(width) else {
            return Vec::new();
        };
        let mut rev: Vec<Line<'static>> = Vec::with_capacity(height);
        let mut block = self.block(e, me, theme, width, hl);
        block.truncate(l + 1);
        rev.extend(block.into_iter().rev());
        let mut i = e;
        while rev.len() < height && i > 0 {
            i -= 1;
            rev.extend(self.block(i, me, theme, width, hl).into_iter().rev());
        }
        rev.truncate(height);
        rev.reverse();
        rev
    }

    /// The pictures whose whole preview is in a `width` x `height` view,
    /// for drawing them again with the terminal's graphics: the entry, and
    /// the view row (from the top, with short conversations at the bottom,
    /// as drawn) of the preview's first row. Counts lines like
    /// [`visible_lines`](Self::visible_lines), only the entries on screen.
    pub fn visible_previews(&self, width: usize, height: usize) -> Vec<(usize, usize)> {
        let Some((e, l)) = self.anchor(width) else {
            return Vec::new();
        };
        // Going up from the bottom row: each entry's visible lines, and
        // where its preview's lines are within them.
        /// An entry, its lines on screen, and its preview's first line
        /// and rows within its block.
        type Block = (usize, usize, Option<(usize, usize)>);
        let mut blocks: Vec<Block> = Vec::new();
        let mut total = 0;
        let mut i = e;
        loop {
            let full = self.lines_in(i, width);
            let shown = if i == e { (l + 1).min(full) } else { full };
            let preview = match &self.entries[i].kind {
                EntryKind::Message { media: Some(m), .. } => m.preview.as_ref().map(|p| {
                    let rows = usize::from(p.rows);
                    (full.saturating_sub(rows), rows)
                }),
                _ => None,
            };
            blocks.push((i, shown, preview));
            total += shown;
            if total >= height || i == 0 {
                break;
            }
            i -= 1;
        }
        let shown_total = total.min(height);
        let pad = height - shown_total;
        // Rows above the view, cut off the top block.
        let mut cut = total - shown_total;
        let mut row = pad;
        let mut out = Vec::new();
        for (entry, shown, preview) in blocks.into_iter().rev() {
            let first_visible = cut.min(shown);
            cut -= first_visible;
            if let Some((start, rows)) = preview
                && start >= first_visible
                && start + rows <= shown
            {
                out.push((entry, row + start - first_visible));
            }
            row += shown - first_visible;
        }
        out
    }

    /// Entries whose text contains `query` (any case), oldest first.
    pub fn search(&self, query: &str) -> Vec<usize> {
        if query.is_empty() {
            return Vec::new();
        }
        let q = query.to_lowercase();
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind.text().to_lowercase().contains(&q))
            .map(|(i, _)| i)
            .collect()
    }

    /// Remembers a sent line for Up/Down (not twice in a row).
    pub fn remember(&mut self, line: &str) {
        if self.history.last().map(String::as_str) != Some(line) {
            self.history.push(line.to_string());
        }
        if self.history.len() > HISTORY_LEN {
            self.history.remove(0);
        }
    }
}

/// `HH:MM` of a ms timestamp, in UTC (no time-zone database is linked in).
pub fn hhmm(ts_ms: u64) -> String {
    local_time(ts_ms).format("%H:%M").to_string()
}

/// Times are shown in UTC rather than the local zone: set by tests (and
/// by the unit tests from the start), so that screens do not depend on the
/// machine's time zone.
static TIMES_IN_UTC: AtomicBool = AtomicBool::new(cfg!(test));

/// Shows every time in UTC from now on in this process (tests and snapshots).
#[doc(hidden)]
pub fn show_times_in_utc() {
    TIMES_IN_UTC.store(true, Ordering::Relaxed);
}

/// The wall-clock time of `ts_ms` (ms since the epoch) where the user is:
/// the zone of `TZ`, else the system's (`/etc/localtime`).
fn local_time(ts_ms: u64) -> chrono::NaiveDateTime {
    let utc = chrono::DateTime::from_timestamp_millis(i64::try_from(ts_ms).unwrap_or(i64::MAX))
        .unwrap_or_default();
    if TIMES_IN_UTC.load(Ordering::Relaxed) {
        utc.naive_utc()
    } else {
        utc.with_timezone(&chrono::Local).naive_local()
    }
}

/// The local day of a timestamp, to draw a line where the day changes.
fn local_day(ts_ms: u64) -> chrono::NaiveDate {
    local_time(ts_ms).date()
}

/// `──── Monday 30 November 2026 ────`: above the first entry of each day.
fn day_line(theme: &Theme, width: usize, ts_ms: u64) -> Line<'static> {
    let label = format!(" {} ", local_time(ts_ms).format("%A %-d %B %Y"));
    let side = width.saturating_sub(label.chars().count()) / 2;
    let text = format!("{}{label}{}", "─".repeat(side), "─".repeat(side));
    let text: String = text.chars().take(width.max(1)).collect();
    Line::styled(text, theme.dim)
}

/// `──── new ────`: where unread messages begin.
fn marker_line(theme: &Theme, width: usize) -> Line<'static> {
    let label = " new ";
    let side = width.saturating_sub(label.len()) / 2;
    let text = format!("{}{label}{}", "─".repeat(side), "─".repeat(side));
    let text: String = text.chars().take(width.max(1)).collect();
    Line::styled(text, theme.marker)
}

/// Splits `text` into segments, marking occurrences of `query` (any case).
fn highlighted(text: &str, base: Style, query: Option<&str>, mark: Style) -> Vec<(String, Style)> {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return vec![(text.to_string(), base)];
    };
    // Case-insensitive match on chars, so offsets stay valid for any text.
    let hay: Vec<char> = text.chars().collect();
    let needle: Vec<char> = q.chars().flat_map(char::to_lowercase).collect();
    let lower: Vec<char> = hay
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let mut out = Vec::new();
    let (mut i, mut plain) = (0, String::new());
    while i < hay.len() {
        if lower.len() >= i + needle.len() && lower[i..i + needle.len()] == needle[..] {
            if !plain.is_empty() {
                out.push((std::mem::take(&mut plain), base));
            }
            out.push((hay[i..i + needle.len()].iter().collect(), mark));
            i += needle.len();
        } else {
            plain.push(hay[i]);
            i += 1;
        }
    }
    if !plain.is_empty() || out.is_empty() {
        out.push((plain, base));
    }
    out
}

/// One entry as wrapped, styled lines. `query` marks search hits; `current`
/// marks them as the hit stepped to.
pub fn entry_lines(
    entry: &Entry,
    me: Option<&Uid>,
    theme: &Theme,
    width: usize,
    query: Option<&str>,
    current: bool,
) -> Vec<Line<'static>> {
    let time = format!("{} ", hhmm(entry.ts));
    let mut segs: Vec<(String, Style)> = vec![(time, theme.dim)];
    let mark = if current {
        theme.search_current
    } else {
        theme.search_match
    };
    match &entry.kind {
        EntryKind::Message {
            from,
            text,
            offline,
            delivery,
            mention,
            media,
        } => {
            let name_style = if Some(from) == me {
                theme.own_name
            } else {
                theme.peer_name
            };
            let text_style = if *mention {
                theme.mention
            } else {
                Style::new()
            };
            if *mention {
                segs.push((MENTION_MARK.into(), theme.mention));
            }
            segs.push((from.to_string(), name_style));
            segs.push((": ".into(), Style::new()));
            if let Some(m) = media {
                // The mark says file or picture without colour.
                let mark_char = if m.is_image() { IMAGE_MARK } else { FILE_MARK };
                segs.push((format!("{mark_char} "), theme.media));
                segs.extend(highlighted(&m.summary(), theme.media, query, mark));
            } else {
                segs.extend(highlighted(text, text_style, query, mark));
            }
            if *offline {
                segs.push((" (offline)".into(), theme.dim));
            }
            match delivery {
                Delivery::Failed | Delivery::Unsent(_) => {
                    segs.push((" (not sent)".into(), theme.error))
                }
                Delivery::Queued(_) => segs.push((" (queued)".into(), theme.dim)),
                _ => {}
            }
        }
        EntryKind::Quiet(t) => segs.extend(highlighted(t, theme.dim, query, mark)),
        EntryKind::System(t) => segs.extend(highlighted(t, theme.system, query, mark)),
        EntryKind::Error(t) => segs.extend(highlighted(t, theme.error, query, mark)),
        EntryKind::Call(t) => {
            // The mark reads without colour, like the other marks.
            segs.push((format!("{CALL_MARK} "), theme.call));
            segs.extend(highlighted(t, theme.call, query, mark));
        }
        EntryKind::Transfer(t) => segs.extend(transfer_segments(t, theme, query, mark)),
    }
    let mut lines = wrap(&segs, width, TIME_WIDTH);
    if let EntryKind::Message { media: Some(m), .. } = &entry.kind
        && let Some(p) = &m.preview
    {
        lines.extend(preview_lines(p, width));
    }
    lines
}

/// `↑ report.pdf ██████░░░░░░ 45% · 1.2 MB of 2.6 MB · 3.4 MB/s · Esc cancels`.
fn transfer_segments(
    t: &TransferLine,
    theme: &Theme,
    query: Option<&str>,
    mark: Style,
) -> Vec<(String, Style)> {
    let arrow = if t.upload {
        "↑ sending "
    } else {
        "↓ saving "
    };
    let mut segs = vec![(arrow.to_string(), theme.transfer)];
    segs.extend(highlighted(&t.file_name, theme.transfer, query, mark));
    let mut rest = format!(
        " {} {:>3}%",
        bar(t.current, t.total, 16),
        percent(t.current, t.total)
    );
    if t.total > 0 {
        rest.push_str(&format!(
            " · {} of {}",
            human_size(t.current),
            human_size(t.total)
        ));
    }
    if let Some(speed) = t.speed {
        rest.push_str(&format!(" · {}/s", human_size(speed)));
    }
    segs.push((rest, theme.transfer));
    let tail = if t.canceling {
        " · canceling…"
    } else {
        " · Esc cancels"
    };
    segs.push((tail.to_string(), theme.dim));
    segs
}

/// A picture's preview in coloured half-blocks, indented like the text
/// under the time, cut to the width.
fn preview_lines(p: &super::media::Preview, width: usize) -> Vec<Line<'static>> {
    use ratatui::style::Color;
    let indent = if TIME_WIDTH * 2 > width {
        0
    } else {
        TIME_WIDTH
    };
    let cols = usize::from(p.cols).min(width.saturating_sub(indent));
    if cols == 0 {
        return Vec::new();
    }
    let rgb = |c: [u8; 3]| Color::Rgb(c[0], c[1], c[2]);
    (0..usize::from(p.rows))
        .map(|r| {
            let mut spans = vec![Span::raw(" ".repeat(indent))];
            let row = &p.cells[r * usize::from(p.cols)..][..cols];
            spans.extend(row.iter().map(|&(top, bottom)| {
                Span::styled("▀", Style::new().fg(rgb(top)).bg(rgb(bottom)))
            }));
            Line::from(spans)
        })
        .collect()
}

/// Characters that would move the terminal's cursor or change its state are
/// shown as a replacement mark instead; tabs become a space.
fn sanitize(c: char) -> char {
    match c {
        '\t' => ' ',
        '\n' => '\n',
        c if c.is_control() => '\u{FFFD}',
        c => c,
    }
}

/// Word-wraps styled text to `width` columns; continuation lines are indented
/// by `indent` (dropped when the width is too small for it). Words longer than
/// a line are broken; `\n` starts a new line.
pub fn wrap(segments: &[(String, Style)], width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let indent = if indent * 2 > width { 0 } else { indent };
    let pad = || vec![(' ', Style::new()); indent];
    let cells_width = |cells: &[(char, Style)]| -> usize {
        cells.iter().map(|(c, _)| c.width().unwrap_or(0)).sum()
    };
    let mut lines: Vec<Vec<(char, Style)>> = Vec::new();
    let mut cur: Vec<(char, Style)> = Vec::new();
    let mut cur_w = 0;
    // Index in `cur` where the text starts (after the indent).
    let mut start = 0;
    for (seg, style) in segments {
        for c in seg.chars().map(sanitize) {
            if c == '\n' {
                lines.push(std::mem::replace(&mut cur, pad()));
                cur_w = indent;
                start = indent;
                continue;
            }
            let w = c.width().unwrap_or(0);
            if cur_w + w > width && cur.len() > start {
                // Break at the last space of the line if the rest fits on the next.
                let space = cur[start..]
                    .iter()
                    .rposition(|(ch, _)| *ch == ' ')
                    .map(|p| p + start)
                    .filter(|&p| p > start && indent + cells_width(&cur[p + 1..]) + w <= width);
                let carry = match space {
                    Some(p) => {
                        let carry = cur.split_off(p + 1);
                        cur.pop();
                        carry
                    }
                    None => Vec::new(),
                };
                lines.push(std::mem::replace(&mut cur, pad()));
                let carried = !carry.is_empty();
                cur.extend(carry);
                cur_w = cells_width(&cur);
                start = indent;
                if c == ' ' && !carried {
                    continue;
                }
            }
            cur.push((c, *style));
            cur_w += w;
        }
    }
    lines.push(cur);
    lines.into_iter().map(to_line).collect()
}

fn to_line(cells: Vec<(char, Style)>) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut text = String::new();
    let mut style = None;
    for (c, s) in cells {
        if style != Some(s) {
            if let Some(prev) = style
                && !text.is_empty()
            {
                spans.push(Span::styled(std::mem::take(&mut text), prev));
            }
            style = Some(s);
        }
        text.push(c);
    }
    if let Some(s) = style
        && !text.is_empty()
    {
        spans.push(Span::styled(text, s));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    fn segs(s: &str) -> Vec<(String, Style)> {
        vec![(s.to_string(), Style::new())]
    }

    #[test]
    fn wraps_at_spaces_with_indent_and_breaks_long_words() {
        let l = wrap(&segs("12:00 alice: hello there world"), 20, 6);
        assert_eq!(plain(&l), vec!["12:00 alice: hello", "      there world"]);
        let l = wrap(&segs("abcdefghij"), 4, 0);
        assert_eq!(plain(&l), vec!["abcd", "efgh", "ij"]);
        let l = wrap(&segs("a\nb\u{1b}[2J"), 10, 2);
        assert_eq!(plain(&l), vec!["a", "  b\u{FFFD}[2J"]);
        // Width 1 with wide characters must not loop or panic.
        let l = wrap(&segs("日本"), 1, 6);
        assert_eq!(l.len(), 2);
    }

    /// Times are the reader's local time, and a line names the day where
    /// it changes (here in UTC, as every test runs).
    #[test]
    fn a_line_names_the_day_where_it_changes() {
        let theme = Theme::blank();
        let mut c = Conversation::default();
        let day = 24 * 60;
        for minute in [day - 1, day + 1, day + 2] {
            c.push(message(minute, format!("at {minute}")));
        }
        let lines = plain(&c.visible_lines(None, &theme, 40, 10, Highlight::default()));
        assert_eq!(
            lines,
            [
                "─────── Thursday 1 January 1970 ───────",
                "23:59 bob: at 1439",
                "──────── Friday 2 January 1970 ────────",
                "00:01 bob: at 1441",
                "00:02 bob: at 1442",
            ]
        );
    }

    fn message(i: u64, text: String) -> Entry {
        Entry {
            ts: i * 60_000,
            kind: EntryKind::Message {
                from: Uid::new("bob").unwrap(),
                text,
                offline: false,
                delivery: Delivery::Received,
                mention: false,
                media: None,
            },
        }
    }

    #[test]
    fn visible_lines_take_only_the_bottom_and_the_anchor_holds() {
        let theme = Theme::default();
        let mut c = Conversation::default();
        for i in 0..10_000u64 {
            c.push(message(i, format!("message {i}")));
        }
        let hl = Highlight::default();
        let lines = c.visible_lines(None, &theme, 40, 3, hl);
        assert_eq!(
            plain(&lines),
            vec![
                "22:37 bob: message 9997",
                "22:38 bob: message 9998",
                "22:39 bob: message 9999"
            ]
        );
        c.scroll_up(5, 40, 2);
        assert_eq!(
            plain(&c.visible_lines(None, &theme, 40, 2, hl))[1],
            "22:34 bob: message 9994"
        );
        assert_eq!(c.entries_below(), 5);
        // New messages do not move a view that is scrolled up.
        c.push(message(10_000, "newest".into()));
        assert_eq!(
            plain(&c.visible_lines(None, &theme, 40, 2, hl))[1],
            "22:34 bob: message 9994"
        );
        c.to_top(40, 3);
        let top = plain(&c.visible_lines(None, &theme, 40, 3, hl));
        assert_eq!(
            top[..2],
            [
                "─────── Thursday 1 January 1970 ───────",
                "00:00 bob: message 0"
            ]
        );
        c.scroll_up(10, 40, 3);
        assert_eq!(
            plain(&c.visible_lines(None, &theme, 40, 3, hl))[1],
            "00:00 bob: message 0"
        );
        c.scroll_down(1_000_000, 40, 3);
        assert_eq!(c.scroll, Scroll::Bottom);
        c.show_entry(5_000, 40, 5);
        let shown = plain(&c.visible_lines(None, &theme, 40, 5, hl));
        assert!(
            shown.iter().any(|l| l.ends_with("message 5000")),
            "{shown:?}"
        );
        // A short conversation never scrolls.
        let mut short = Conversation::default();
        short.push(message(1, "only".into()));
        short.scroll_up(3, 40, 10);
        assert_eq!(short.scroll, Scroll::Bottom);
    }

    /// The rows `visible_previews` names are where the half-block preview
    /// is drawn, at every scroll position; a preview cut by the top or the
    /// bottom of the view is left out.
    #[test]
    fn visible_previews_are_where_the_half_blocks_are_drawn() {
        let theme = Theme::blank();
        let mut c = Conversation::default();
        let pic = crate::tui::fixtures::image_message("p.png", 200, 100, 1);
        for i in 0..12u64 {
            if i % 5 == 2 {
                let m = Media::from_message(&pic).unwrap();
                c.push(Entry {
                    ts: i * 60_000,
                    kind: EntryKind::Message {
                        from: Uid::new("bob").unwrap(),
                        text: m.summary(),
                        offline: false,
                        delivery: Delivery::Received,
                        mention: false,
                        media: Some(Arc::new(m)),
                    },
                });
            } else {
                c.push(message(i, format!("line {i}")));
            }
        }
        let (w, h) = (40, 12);
        let hl = Highlight::default();
        let mut seen = 0;
        for _ in 0..40 {
            let lines = plain(&c.visible_lines(None, &theme, w, h, hl));
            let pad = h - lines.len();
            let rows: Vec<String> = std::iter::repeat_n(String::new(), pad)
                .chain(lines)
                .collect();
            let found = c.visible_previews(w, h);
            // Whole previews on screen: 8 rows of blocks from the named row.
            let mut expected = Vec::new();
            let mut r = 0;
            while r < rows.len() {
                if rows[r].contains('▀') {
                    let n = rows[r..].iter().take_while(|l| l.contains('▀')).count();
                    if n == 8 {
                        expected.push(r);
                    }
                    r += n;
                } else {
                    r += 1;
                }
            }
            let got: Vec<usize> = found.iter().map(|&(_, row)| row).collect();
            assert_eq!(got, expected, "{rows:#?}");
            seen += got.len();
            c.scroll_up(1, w, h);
        }
        assert!(seen > 5, "{seen}");
    }

    #[test]
    fn search_marks_and_mentions() {
        let mut c = Conversation::default();
        c.push(message(1, "Hello World".into()));
        c.push(message(2, "nothing".into()));
        c.push(message(3, "hello again".into()));
        assert_eq!(c.search("HELLO"), vec![0, 2]);
        let segs = highlighted(
            "say hello, Hello",
            Style::new(),
            Some("hello"),
            Style::new().bold(),
        );
        assert_eq!(segs.len(), 4);
        assert_eq!(segs[3].0, "Hello");
        let alice = Uid::new("alice").unwrap();
        assert!(mentions("hey @Alice, look", &alice));
        assert!(mentions("alice", &alice));
        assert!(!mentions("malice aforethought", &alice));
        assert!(!mentions("alice_b", &alice));
    }
}
