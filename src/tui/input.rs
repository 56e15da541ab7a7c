//! The one-line text editor used by the login field and the message input.
//!
//! Small on purpose (insert, delete, move by char/word, home/end); the cursor
//! is a char index so that multi-byte text never splits a UTF-8 sequence.

use unicode_width::UnicodeWidthChar;

/// What the input line shows for a newline inside pasted text: the input is one
/// row, so a pasted multi-line message stays one message and is sent as such.
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

    pub fn backspace(&mut self) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        let at = self.byte_at(self.cursor);
        self.text.remove(at);
    }

    pub fn delete(&mut self) {
        if self.cursor < self.len_chars() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.len_chars());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.len_chars();
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
}
