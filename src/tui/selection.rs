//! The selected row of a list pane (peers, channels, members, attributes).
//!
//! The cursor holds the row's value, not its index: the lists re-sort as
//! presence changes, and the selection must stay on the same peer when it
//! moves. Every operation takes the rows as they are now.

/// A list pane's selection and how far the pane is scrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<T> {
    cursor: Option<T>,
    /// The first row shown, for panes that scroll by themselves (the
    /// Attributes pane); the other lists scroll to their cursor when drawn.
    offset: usize,
}

impl<T> Default for Selection<T> {
    fn default() -> Self {
        Selection {
            cursor: None,
            offset: 0,
        }
    }
}

impl<T: Clone + PartialEq> Selection<T> {
    pub fn selected(&self) -> Option<&T> {
        self.cursor.as_ref()
    }

    pub fn is_selected(&self, row: &T) -> bool {
        self.cursor.as_ref() == Some(row)
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Where the selected row is in `rows`; `None` when it is not there.
    pub fn index_in(&self, rows: &[T]) -> Option<usize> {
        let c = self.cursor.as_ref()?;
        rows.iter().position(|r| r == c)
    }

    pub fn select(&mut self, row: T) {
        self.cursor = Some(row);
    }

    pub fn clear(&mut self) {
        self.cursor = None;
    }

    /// Forgets `row` if it is the selected one (it left the list).
    pub fn forget(&mut self, row: &T) {
        if self.is_selected(row) {
            self.cursor = None;
        }
    }

    /// The next row down, staying on the last; a lost selection starts at the top.
    pub fn select_next(&mut self, rows: &[T]) {
        let i = self
            .index_in(rows)
            .map_or(0, |i| (i + 1).min(rows.len().saturating_sub(1)));
        self.cursor = rows.get(i).cloned();
    }

    /// The next row up, staying on the first; a lost selection starts at the top.
    pub fn select_prev(&mut self, rows: &[T]) {
        let i = self.index_in(rows).map_or(0, |i| i.saturating_sub(1));
        self.cursor = rows.get(i).cloned();
    }

    /// Up (`select_prev`) or down (`select_next`), as a key asks.
    pub fn step(&mut self, rows: &[T], up: bool) {
        if up {
            self.select_prev(rows);
        } else {
            self.select_next(rows);
        }
    }

    pub fn select_first(&mut self, rows: &[T]) {
        self.cursor = rows.first().cloned();
    }

    pub fn select_last(&mut self, rows: &[T]) {
        self.cursor = rows.last().cloned();
    }

    /// Drops a selection that is no longer among `rows`, and an offset past
    /// their end.
    pub fn clamp(&mut self, rows: &[T]) {
        if self.index_in(rows).is_none() {
            self.cursor = None;
        }
        self.offset = self.offset.min(rows.len().saturating_sub(1));
    }

    /// Scrolls so that the selected row shows with `context` rows above it.
    pub fn scroll_to_selected(&mut self, rows: &[T], context: usize) {
        self.offset = self.index_in(rows).unwrap_or(0).saturating_sub(context);
    }

    pub fn scroll_to_top(&mut self) {
        self.offset = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Selection;

    const ROWS: [&str; 3] = ["a", "b", "c"];

    #[test]
    fn steps_stay_in_range_and_a_lost_cursor_starts_at_the_top() {
        let mut s = Selection::default();
        assert_eq!(s.selected(), None);
        s.select_prev(&ROWS);
        assert_eq!(s.selected(), Some(&"a"));
        s.select_prev(&ROWS);
        assert_eq!(s.selected(), Some(&"a"));
        s.select_next(&ROWS);
        s.step(&ROWS, false);
        s.select_next(&ROWS);
        assert_eq!(s.selected(), Some(&"c"));
        s.step(&ROWS, true);
        assert_eq!(s.selected(), Some(&"b"));
        s.select_next(&ROWS);
        assert_eq!(s.index_in(&ROWS), Some(2));
        s.select("gone");
        s.select_next(&ROWS);
        assert_eq!(s.selected(), Some(&"a"));
        s.select_last(&ROWS);
        assert_eq!(s.selected(), Some(&"c"));
        s.select_first(&ROWS);
        assert_eq!(s.selected(), Some(&"a"));
    }

    #[test]
    fn an_empty_list_selects_nothing() {
        let mut s = Selection::default();
        s.select("a");
        s.select_next(&[]);
        assert_eq!(s.selected(), None);
        s.select_first(&[]);
        s.select_prev(&[]);
        assert_eq!(s.selected(), None);
        assert_eq!(s.index_in(&[]), None);
    }

    #[test]
    fn the_cursor_follows_its_row_when_the_list_reorders() {
        let mut s = Selection::default();
        s.select("b");
        assert_eq!(s.index_in(&["b", "a", "c"]), Some(0));
        s.select_next(&["c", "a", "b"]);
        assert_eq!(s.selected(), Some(&"b"));
    }

    #[test]
    fn forget_and_clamp_drop_rows_that_left() {
        let mut s = Selection::default();
        s.select("b");
        s.forget(&"a");
        assert!(s.is_selected(&"b"));
        s.forget(&"b");
        assert_eq!(s.selected(), None);
        s.select("c");
        s.clamp(&ROWS);
        assert!(s.is_selected(&"c"));
        s.clamp(&ROWS[..2]);
        assert_eq!(s.selected(), None);
        s.select("b");
        s.clear();
        assert_eq!(s.selected(), None);
    }

    #[test]
    fn the_offset_keeps_context_above_the_selection() {
        let rows: Vec<usize> = (0..10).collect();
        let mut s = Selection::default();
        s.select(7);
        s.scroll_to_selected(&rows, 3);
        assert_eq!(s.offset(), 4);
        s.select(1);
        s.scroll_to_selected(&rows, 3);
        assert_eq!(s.offset(), 0);
        s.select(9);
        s.scroll_to_selected(&rows, 3);
        s.clamp(&rows[..2]);
        assert_eq!(s.offset(), 1);
        s.scroll_to_top();
        assert_eq!(s.offset(), 0);
    }
}
