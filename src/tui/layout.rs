//! Where each pane goes for a given terminal size. Pure arithmetic shared by
//! rendering and by `App::update` (which needs the page height for PageUp and
//! which panes are visible for Tab), so both always agree.

use ratatui::layout::Rect;

/// Below this width the right column (Members, Attributes) is hidden.
pub const RIGHT_COLUMN_MIN_WIDTH: u16 = 100;
/// Below this width the left column (Peers, Channels) is hidden.
pub const LEFT_COLUMN_MIN_WIDTH: u16 = 60;
/// Side columns need this many rows to show two bordered panes.
const SIDE_MIN_HEIGHT: u16 = 6;
/// The input line is a bordered box of 3 rows when the body has this many.
const BORDERED_INPUT_MIN_HEIGHT: u16 = 6;

/// The conversation keeps at least this many columns when the side panes
/// are shown by hand on a small screen (the left column goes first).
const CENTER_MIN_WIDTH: u16 = 30;

/// Which side panes show: as the width allows, or as the user asked with
/// the side-panes key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SidePanes {
    /// The left column from 60 columns, the right one from 100.
    #[default]
    Auto,
    /// Both columns whenever the conversation keeps [`CENTER_MIN_WIDTH`];
    /// on a narrow screen the right one (Members, Attributes) first.
    Shown,
    /// Neither: the conversation takes the whole width.
    Hidden,
}

/// The rectangles of the main screen; `None` for a hidden pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainLayout {
    pub peers: Option<Rect>,
    pub channels: Option<Rect>,
    pub conversation: Rect,
    pub input: Rect,
    /// False when the terminal is so short that the input is one bare row.
    pub input_bordered: bool,
    pub members: Option<Rect>,
    pub attributes: Option<Rect>,
    pub status: Option<Rect>,
}

impl MainLayout {
    /// The layout with a one-row input.
    pub fn new(area: Rect) -> MainLayout {
        MainLayout::with_input_rows(area, 1)
    }

    /// The layout with an input box of `rows` text rows (it grows with a
    /// multi-line message, never past half the body).
    pub fn with_input_rows(area: Rect, rows: u16) -> MainLayout {
        MainLayout::arrange(area, rows, SidePanes::Auto)
    }

    /// The layout with an input box of `rows` text rows and the side panes
    /// as `sides` asks.
    pub fn arrange(area: Rect, rows: u16, side_panes: SidePanes) -> MainLayout {
        let (x, y, w, h) = (area.x, area.y, area.width, area.height);
        let status = (h >= 2).then(|| Rect::new(x, y + h - 1, w, 1));
        let body_h = if status.is_some() { h - 1 } else { h };
        let sides = body_h >= SIDE_MIN_HEIGHT;
        let auto_left = match w {
            _ if !sides => 0,
            w if w < LEFT_COLUMN_MIN_WIDTH => 0,
            w if w < RIGHT_COLUMN_MIN_WIDTH => (w / 4).clamp(16, 22),
            w => (w / 6).clamp(20, 28),
        };
        let auto_right = if sides && w >= RIGHT_COLUMN_MIN_WIDTH {
            (w / 5).clamp(24, 40)
        } else {
            0
        };
        let (left_w, right_w) = match side_panes {
            SidePanes::Auto => (auto_left, auto_right),
            SidePanes::Hidden => (0, 0),
            SidePanes::Shown if !sides => (0, 0),
            SidePanes::Shown => {
                let right = (w / 5).clamp(24, 40);
                let right = if w >= right + CENTER_MIN_WIDTH {
                    right
                } else {
                    0
                };
                let left = if auto_left > 0 {
                    auto_left
                } else {
                    (w / 4).clamp(16, 22)
                };
                let left = if w >= right + left + CENTER_MIN_WIDTH {
                    left
                } else {
                    0
                };
                (left, right)
            }
        };
        let center_w = w - left_w - right_w;
        let input_bordered = body_h >= BORDERED_INPUT_MIN_HEIGHT;
        let input_h = if input_bordered {
            rows.clamp(1, (body_h / 2).saturating_sub(2).max(1)) + 2
        } else {
            body_h.min(1)
        };
        let cx = x + left_w;
        let split = |col_x: u16, col_w: u16| {
            if col_w == 0 {
                return (None, None);
            }
            let top = body_h / 2;
            (
                Some(Rect::new(col_x, y, col_w, top)),
                Some(Rect::new(col_x, y + top, col_w, body_h - top)),
            )
        };
        let (peers, channels) = split(x, left_w);
        let (members, attributes) = split(cx + center_w, right_w);
        MainLayout {
            peers,
            channels,
            conversation: Rect::new(cx, y, center_w, body_h - input_h),
            input: Rect::new(cx, y + body_h - input_h, center_w, input_h),
            input_bordered,
            members,
            attributes,
            status,
        }
    }

    /// The conversation's text area (inside its border when it has one).
    pub fn conversation_text(&self) -> Rect {
        if has_border(self.conversation) {
            inner(self.conversation)
        } else {
            self.conversation
        }
    }
}

/// A pane gets a border (and a title) only when there is room for a row of text inside.
pub fn has_border(r: Rect) -> bool {
    r.height >= 3 && r.width >= 3
}

/// The area inside a one-cell border.
pub fn inner(r: Rect) -> Rect {
    Rect::new(
        r.x.saturating_add(1),
        r.y.saturating_add(1),
        r.width.saturating_sub(2),
        r.height.saturating_sub(2),
    )
}

/// A centered rectangle of at most `w` x `h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_collapse_with_width() {
        let l = MainLayout::new(Rect::new(0, 0, 160, 48));
        assert!(l.peers.is_some() && l.members.is_some());
        let l = MainLayout::new(Rect::new(0, 0, 80, 24));
        assert!(l.peers.is_some() && l.members.is_none());
        assert_eq!(l.conversation.width + l.peers.unwrap().width, 80);
        let l = MainLayout::new(Rect::new(0, 0, 50, 24));
        assert!(l.peers.is_none() && l.conversation.width == 50);
    }

    #[test]
    fn side_panes_by_hand() {
        let small = Rect::new(0, 0, 80, 24);
        let l = MainLayout::arrange(small, 1, SidePanes::Shown);
        assert!(l.members.is_some() && l.attributes.is_some() && l.peers.is_some());
        assert!(l.conversation.width >= CENTER_MIN_WIDTH);
        let l = MainLayout::arrange(small, 1, SidePanes::Hidden);
        assert!(l.members.is_none() && l.peers.is_none());
        assert_eq!(l.conversation.width, 80);
        // Narrower: the right column stays, the left one goes.
        let l = MainLayout::arrange(Rect::new(0, 0, 60, 20), 1, SidePanes::Shown);
        assert!(l.members.is_some() && l.peers.is_none());
    }

    #[test]
    fn every_size_is_consistent() {
        for (w, h, sides) in (0..=130u16).flat_map(|w| {
            (0..=30u16).flat_map(move |h| {
                [SidePanes::Auto, SidePanes::Shown, SidePanes::Hidden].map(|s| (w, h, s))
            })
        }) {
            {
                let area = Rect::new(0, 0, w, h);
                let l = MainLayout::arrange(area, (w + h) % 8, sides);
                for r in [Some(l.conversation), Some(l.input), l.peers, l.channels]
                    .into_iter()
                    .chain([l.members, l.attributes, l.status])
                    .flatten()
                {
                    assert_eq!(area.intersection(r), r, "{w}x{h}: {r:?}");
                }
            }
        }
    }
}
