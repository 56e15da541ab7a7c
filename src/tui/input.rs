//! The text editor used by the login field and the message input.
//!
//! Small on purpose (insert, delete, move by grapheme/word/line, home/end);
//! the cursor is a char index so that multi-byte text never splits a UTF-8
//! sequence, and it moves and deletes by grapheme cluster (what a person
//! sees as one character: an emoji with its skin tone or ZWJ family, a flag,
//! a letter with combining accents), so no half of one is ever left behind. The message input may hold several lines (Alt-Enter, paste);
//! [`InputLine::rows`] soft-wraps them for a box of a given width.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// What a one-row view ([`InputLine::view`], the login field) shows for a newline.
pub const NEWLINE_MARK: char = '↵';

/// Text being edited plus the cursor position (in chars, `0..=len`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputLine {
    text: String,
    cursor: usize,
}

impl InputLine {
    pub fn with_text(text: impl Into<String>) -> Self {
        let text = text.into();
        let cursor = text.chars().count();
        Self { text, cursor }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Empties the line and returns what it held.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    fn byte_at(&self, char_idx: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_idx)
            .map_or(self.text.len(), |(b, _)| b)
    }

    fn len_chars(&self) -> usize {
        self.text.chars().count()
    }

    pub fn insert_char(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    /// Inserts pasted text: `\r\n` and `\r` become `\n`, tabs become spaces,
    /// other control characters are dropped (they would corrupt the screen).
    pub fn insert_str(&mut self, s: &str) {
        let cleaned: String = s
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .flat_map(|c| match c {
                '\t' => vec![' '; 4],
                '\n' => vec!['\n'],
                c if c.is_control() => vec![],
                c => vec![c],
            })
            .collect();
        let at = self.byte_at(self.cursor);
        self.text.insert_str(at, &cleaned);
        self.cursor += cleaned.chars().count();
    }

    /// The char index where the grapheme cluster before the cursor starts.
    fn prev_boundary(&self) -> usize {
        let at = self.byte_at(self.cursor);
        match self.text[..at].grapheme_indices(true).next_back() {
            Some((_, g)) => self.cursor - g.chars().count(),
            None => 0,
        }
    }

    /// The char index just after the grapheme cluster at the cursor.
    fn next_boundary(&self) -> usize {
        let at = self.byte_at(self.cursor);
        match self.text[at..].graphemes(true).next() {
            Some(g) => self.cursor + g.chars().count(),
            None => self.cursor,
        }
    }

    /// Deletes the grapheme cluster before the cursor.
    pub fn backspace(&mut self) {
        let start = self.prev_boundary();
        self.replace_range(start, self.cursor, "");
    }

    /// Deletes the grapheme cluster at the cursor.
    pub fn delete(&mut self) {
        let (cursor, end) = (self.cursor, self.next_boundary());
        self.replace_range(cursor, end, "");
        self.cursor = cursor;
    }

    pub fn left(&mut self) {
        self.cursor = self.prev_boundary();
    }

    pub fn right(&mut self) {
        self.cursor = self.next_boundary();
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.len_chars();
    }

    /// Cursor to the start of the previous word.
    pub fn word_left(&mut self) {
        let chars: Vec<char> = self.text.chars().collect();
        let mut i = self.cursor;
        while i > 0 && chars[i - 1].is_whitespace() {
            i -= 1;
        }
        while i > 0 && !chars[i - 1].is_whitespace() {
            i -= 1;
        }
        self.cursor = i;
    }

    /// Cursor past the end of the next word.
    pub fn word_right(&mut self) {
        let chars: Vec<char> = self.text.chars().collect();
        let mut i = self.cursor;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        self.cursor = i;
    }

    /// Replaces the text between char indexes `start..end` and puts the cursor after it.
    pub fn replace_range(&mut self, start: usize, end: usize, with: &str) {
        let (a, b) = (self.byte_at(start), self.byte_at(end));
        self.text.replace_range(a..b, with);
        self.cursor = start + with.chars().count();
    }

    /// (row, column) of every cursor position `0..=len` when the text is
    /// soft-wrapped to `width` columns; `\n` starts a new row.
    fn positions(&self, width: usize) -> Vec<(usize, usize)> {
        let width = width.max(1);
        let mut out = Vec::with_capacity(self.text.len() + 1);
        let (mut row, mut col) = (0, 0);
        // A grapheme cluster takes the width the terminal gives it (a ZWJ
        // family or a flag is 2 columns, not the sum of its parts); every
        // char of it sits at its start.
        for g in self.text.graphemes(true) {
            let newline = g == "\n" || g == "\r\n";
            let w = if newline { 0 } else { g.width() };
            if !newline && col + w > width && col > 0 {
                row += 1;
                col = 0;
            }
            out.extend(std::iter::repeat_n((row, col), g.chars().count()));
            if newline {
                row += 1;
                col = 0;
            } else {
                col += w;
            }
        }
        if col >= width {
            // The cursor at the very end of a full row goes to the next one.
            row += 1;
            col = 0;
        }
        out.push((row, col));
        out
    }

    /// How many rows the text takes at `width`.
    pub fn row_count(&self, width: usize) -> usize {
        self.positions(width).last().map_or(1, |p| p.0 + 1)
    }

    /// The rows to draw in a `width` x `height` box, scrolled so the cursor
    /// is visible, and the cursor's (column, row) inside the box.
    pub fn rows(&self, width: usize, height: usize) -> (Vec<String>, (usize, usize)) {
        let pos = self.positions(width);
        let total = pos.last().map_or(1, |p| p.0 + 1);
        let mut rows = vec![String::new(); total];
        for (c, (r, _)) in self.text.chars().zip(&pos) {
            if c != '\n' {
                rows[*r].push(c);
            }
        }
        let (crow, ccol) = pos[self.cursor.min(pos.len() - 1)];
        let height = height.max(1);
        let first = crow
            .saturating_sub(height - 1)
            .min(total.saturating_sub(height));
        let first = first.min(crow);
        let shown = rows.into_iter().skip(first).take(height).collect();
        (shown, (ccol, crow - first))
    }

    /// Moves the cursor one row up (`up`) or down at `width`, keeping the
    /// column; false when it is already on the first (last) row.
    pub fn move_row(&mut self, width: usize, up: bool) -> bool {
        let pos = self.positions(width);
        let (row, col) = pos[self.cursor.min(pos.len() - 1)];
        let last = pos.last().map_or(0, |p| p.0);
        let target = match (up, row) {
            (true, 0) => return false,
            (true, r) => r - 1,
            (false, r) if r >= last => return false,
            (false, r) => r + 1,
        };
        // The last position on the target row at or before the column.
        let best = pos
            .iter()
            .enumerate()
            // Only where a grapheme cluster starts: never inside one.
            .filter(|(i, p)| *i == 0 || pos[i - 1] != **p)
            .filter(|(_, (r, c))| *r == target && *c <= col)
            .map(|(i, _)| i)
            .next_back()
            .or_else(|| pos.iter().position(|(r, _)| *r == target));
        if let Some(i) = best {
            self.cursor = i;
        }
        true
    }

    /// Deletes the word before the cursor (and the spaces after it), like a shell's Ctrl-W.
    pub fn delete_word_back(&mut self) {
        let chars: Vec<char> = self.text.chars().collect();
        let mut start = self.cursor;
        while start > 0 && chars[start - 1].is_whitespace() {
            start -= 1;
        }
        while start > 0 && !chars[start - 1].is_whitespace() {
            start -= 1;
        }
        let (a, b) = (self.byte_at(start), self.byte_at(self.cursor));
        self.text.replace_range(a..b, "");
        self.cursor = start;
    }

    /// The part of the line to draw in `width` columns so that the cursor is
    /// visible, and the cursor's column inside it. Newlines show as
    /// [`NEWLINE_MARK`].
    pub fn view(&self, width: usize) -> (String, usize) {
        if width == 0 {
            return (String::new(), 0);
        }
        let shown: Vec<(char, usize)> = self
            .text
            .chars()
            .map(|c| {
                let c = if c == '\n' { NEWLINE_MARK } else { c };
                (c, c.width().unwrap_or(0))
            })
            .collect();
        // Keep one column free for the cursor at the end of the line.
        let room = width.saturating_sub(1).max(1);
        let mut start = 0;
        let width_between =
            |a: usize, b: usize| -> usize { shown[a..b].iter().map(|(_, w)| *w).sum() };
        while start < self.cursor && width_between(start, self.cursor) > room {
            start += 1;
        }
        let mut out = String::new();
        let mut used = 0;
        for (c, w) in &shown[start..] {
            if used + w > width {
                break;
            }
            out.push(*c);
            used += w;
        }
        (out, width_between(start, self.cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_at_the_cursor_in_chars_not_bytes() {
        let mut i = InputLine::default();
        for c in "héllo".chars() {
            i.insert_char(c);
        }
        i.left();
        i.left();
        i.backspace(); // the first 'l', just before the cursor
        assert_eq!(i.text(), "hélo");
        i.home();
        i.delete();
        assert_eq!(i.text(), "élo");
        i.end();
        i.insert_str("\r\nx\ty");
        assert_eq!(i.text(), "élo\nx    y");
        i.delete_word_back();
        assert_eq!(i.text(), "élo\nx    ");
        assert_eq!(i.take(), "élo\nx    ");
        assert!(i.is_empty() && i.cursor() == 0);
    }

    #[test]
    fn the_cursor_moves_and_deletes_by_grapheme_not_code_point() {
        // A ZWJ family (5 code points), a flag (2), an e with a combining
        // accent (2): three things a person sees, three steps.
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        let flag = "\u{1F1EB}\u{1F1F7}";
        let mut i = InputLine::with_text(format!("a{family}{flag}e\u{301}"));
        i.left();
        assert_eq!(i.cursor(), 1 + 5 + 2, "one step over e + accent");
        i.left();
        assert_eq!(i.cursor(), 1 + 5, "one step over the flag");
        i.backspace();
        assert_eq!(
            i.text(),
            format!("a{flag}e\u{301}"),
            "the whole family goes"
        );
        assert_eq!(i.cursor(), 1);
        i.delete();
        assert_eq!(i.text(), "ae\u{301}", "the whole flag goes");
        i.end();
        i.backspace();
        assert_eq!(i.text(), "a");
        // A family is drawn 2 columns wide, as the terminal draws it.
        let i = InputLine::with_text(format!("{family}x"));
        assert_eq!(i.rows(10, 1), (vec![format!("{family}x")], (3, 0)));
    }

    #[test]
    fn view_scrolls_to_keep_the_cursor_visible() {
        let i = InputLine::with_text("abcdefghij");
        let (text, col) = i.view(5);
        assert_eq!(text, "ghij");
        assert_eq!(col, 4);
        let mut i = i;
        i.home();
        let (text, col) = i.view(5);
        assert_eq!(text, "abcde");
        assert_eq!(col, 0);
        assert_eq!(InputLine::with_text("a\nb").view(10).0, "a↵b");
    }

    #[test]
    fn rows_wrap_and_the_cursor_moves_between_them() {
        let mut i = InputLine::with_text("hello world\nsecond");
        assert_eq!(i.row_count(8), 3);
        let (rows, cursor) = i.rows(8, 5);
        assert_eq!(rows, vec!["hello wo", "rld", "second"]);
        assert_eq!(cursor, (6, 2));
        assert!(i.move_row(8, true));
        assert_eq!(i.rows(8, 5).1, (3, 1));
        assert!(i.move_row(8, true));
        assert!(!i.move_row(8, true));
        assert_eq!(i.cursor(), 3);
        // A box of two rows scrolls to the cursor.
        i.end();
        assert_eq!(i.rows(8, 2).0, vec!["rld", "second"]);
        assert!(!i.move_row(8, false));
        // Words.
        let mut i = InputLine::with_text("one two  three");
        i.word_left();
        assert_eq!(i.cursor(), 9);
        i.word_left();
        i.word_right();
        assert_eq!(i.cursor(), 7);
        i.replace_range(4, 7, "TWO");
        assert_eq!(i.text(), "one TWO  three");
        // Empty and width 1 do not panic.
        assert_eq!(
            InputLine::default().rows(1, 1),
            (vec![String::new()], (0, 0))
        );
        assert_eq!(InputLine::with_text("日本").rows(1, 3).0.len(), 3);
    }
}
