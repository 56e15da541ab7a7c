//! Conversations (one per peer, one per channel) and how their entries turn
//! into wrapped screen lines. Only the lines that are visible get wrapped, so
//! a conversation of tens of thousands of entries draws as fast as a short one.

use std::fmt;

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;

use super::theme::Theme;
use crate::protocol::{ChannelId, Uid};

/// Oldest entries are dropped beyond this many, so a long-running session
/// keeps bounded memory.
pub const MAX_ENTRIES: usize = 50_000;

/// Width of `HH:MM `: continuation lines of a wrapped entry are indented by it.
const TIME_WIDTH: usize = 6;

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
    Sent,
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
    },
    /// Joins and leaves: `-- bob joined`, drawn dim.
    Quiet(String),
    /// Notes about the conversation ("bob is offline: stored …").
    System(String),
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// ms since the epoch (server time for messages when known).
    pub ts: u64,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    pub entries: Vec<Entry>,
    /// Messages that arrived while another conversation was open.
    pub unread: usize,
    /// Lines scrolled up from the bottom; 0 follows new messages.
    pub scroll: usize,
}

impl Conversation {
    pub fn push(&mut self, entry: Entry) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.drain(..MAX_ENTRIES / 10);
        }
        self.entries.push(entry);
    }

    /// The entry of our own message `id` that is still on its way.
    pub fn sending_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.entries.iter_mut().rev().find(|e| {
            matches!(e.kind, EntryKind::Message { delivery: Delivery::Sending(i), .. } if i == id)
        })
    }

    /// The lines to draw in a `width` x `height` viewport scrolled `scroll`
    /// lines up from the bottom, plus the scroll actually used (clamped so the
    /// first line never leaves the top). Wraps only the entries it shows.
    pub fn visible_lines(
        &self,
        me: Option<&Uid>,
        theme: &Theme,
        width: usize,
        height: usize,
        scroll: usize,
    ) -> (Vec<Line<'static>>, usize) {
        let want = height + scroll;
        let mut rev: Vec<Line<'static>> = Vec::with_capacity(want);
        for entry in self.entries.iter().rev() {
            let lines = entry_lines(entry, me, theme, width);
            rev.extend(lines.into_iter().rev());
            if rev.len() >= want {
                break;
            }
        }
        let scroll = scroll.min(rev.len().saturating_sub(height));
        let lines: Vec<Line<'static>> = rev.into_iter().skip(scroll).take(height).collect();
        (lines.into_iter().rev().collect(), scroll)
    }

    /// How many lines the conversation has at `width`, counting no further
    /// than `limit` (enough to clamp a scroll position).
    pub fn line_count(&self, width: usize, limit: usize) -> usize {
        let theme = Theme::default();
        let mut n = 0;
        for entry in self.entries.iter().rev() {
            n += entry_lines(entry, None, &theme, width).len();
            if n >= limit {
                break;
            }
        }
        n
    }
}

/// `HH:MM` of a ms timestamp, in UTC (no time-zone database is linked in).
pub fn hhmm(ts_ms: u64) -> String {
    let secs = ts_ms / 1000;
    format!("{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60)
}

/// One entry as wrapped, styled lines.
pub fn entry_lines(
    entry: &Entry,
    me: Option<&Uid>,
    theme: &Theme,
    width: usize,
) -> Vec<Line<'static>> {
    let time = format!("{} ", hhmm(entry.ts));
    let mut segs: Vec<(String, Style)> = vec![(time, theme.dim)];
    match &entry.kind {
        EntryKind::Message {
            from,
            text,
            offline,
            delivery,
        } => {
            let name_style = if Some(from) == me {
                theme.own_name
            } else {
                theme.peer_name
            };
            segs.push((from.to_string(), name_style));
            segs.push((": ".into(), Style::new()));
            segs.push((text.clone(), Style::new()));
            if *offline {
                segs.push((" (offline)".into(), theme.dim));
            }
            if *delivery == Delivery::Failed {
                segs.push((" (not sent)".into(), theme.error));
            }
        }
        EntryKind::Quiet(t) => segs.push((t.clone(), theme.dim)),
        EntryKind::System(t) => segs.push((t.clone(), theme.system)),
        EntryKind::Error(t) => segs.push((t.clone(), theme.error)),
    }
    wrap(&segs, width, TIME_WIDTH)
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

    #[test]
    fn visible_lines_take_only_the_bottom_and_clamp_the_scroll() {
        let theme = Theme::default();
        let mut c = Conversation::default();
        let bob = Uid::new("bob").unwrap();
        for i in 0..10_000u64 {
            c.push(Entry {
                ts: i * 60_000,
                kind: EntryKind::Message {
                    from: bob.clone(),
                    text: format!("message {i}"),
                    offline: false,
                    delivery: Delivery::Received,
                },
            });
        }
        let (lines, scroll) = c.visible_lines(None, &theme, 40, 3, 0);
        assert_eq!(scroll, 0);
        assert_eq!(
            plain(&lines),
            vec![
                "22:37 bob: message 9997",
                "22:38 bob: message 9998",
                "22:39 bob: message 9999"
            ]
        );
        let (lines, _) = c.visible_lines(None, &theme, 40, 2, 5);
        assert_eq!(plain(&lines)[1], "22:34 bob: message 9994");
        let (_, scroll) = c.visible_lines(None, &theme, 40, 3, 1_000_000);
        assert_eq!(scroll, 9_997);
    }
}
