//! Picture previews with the terminal's own graphics (kitty, sixel,
//! iTerm2), through `ratatui-image`. The conversation always draws a
//! preview in coloured half-blocks (pure, the same in tests and
//! snapshots); when the terminal answered the start-up query with a
//! graphics protocol, the event loop draws the thumbnail over those cells
//! after each frame, for the previews that are wholly on screen. Without
//! one (or in tmux without passthrough), the half-blocks stay.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::{Rect, Size};
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::{Image, Resize};

use super::App;
use super::media::decode_thumbnail;

/// Decoded pictures kept at most; more and the cache starts again (a
/// session with that many pictures on screen at once does not exist).
const MAX_CACHED: usize = 64;

/// The terminal's graphics, when it has some, and the pictures made for
/// it, by media id and size.
pub struct Graphics {
    picker: Picker,
    cache: HashMap<(String, u16, u16), Option<Protocol>>,
}

/// Whether to ask the terminal for its graphics: `RTM_IMAGES=blocks` never,
/// `RTM_IMAGES=graphics` always; otherwise only where the environment
/// names a terminal with a graphics protocol (kitty, iTerm2, WezTerm,
/// Ghostty, Konsole, foot, mlterm, Windows Terminal) and not inside tmux or
/// screen. The query's answer is read on a thread that waits for the
/// terminal; one that never answers (a multiplexer with no terminal
/// attached, a test emulator) would leave that thread reading the
/// keyboard, so the question is not asked on a guess.
pub fn worth_asking(env: impl Fn(&str) -> Option<String>) -> bool {
    match env("RTM_IMAGES").as_deref() {
        Some("blocks") => return false,
        Some("graphics") => return true,
        _ => {}
    }
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    if set("TMUX") || env("TERM").is_some_and(|t| t.starts_with("screen") || t.starts_with("tmux"))
    {
        return false;
    }
    let term = env("TERM").unwrap_or_default();
    let program = env("TERM_PROGRAM").unwrap_or_default();
    set("KITTY_WINDOW_ID")
        || set("WEZTERM_EXECUTABLE")
        || set("KONSOLE_VERSION")
        || set("WT_SESSION")
        || term.contains("kitty")
        || term.contains("foot")
        || term.contains("mlterm")
        || term.contains("ghostty")
        || ["iTerm.app", "WezTerm", "ghostty", "mintty"].contains(&program.as_str())
}

impl Graphics {
    /// Asks the terminal what it can draw. Call before the terminal is
    /// switched to raw mode (the query switches it and back) and only on a
    /// terminal; `None` when it has no graphics protocol (half-blocks stay).
    pub fn detect() -> Option<Graphics> {
        let picker = match Picker::from_query_stdio() {
            Ok(p) => p,
            Err(e) => {
                tracing::info!("no terminal graphics; previews in half-blocks: {e}");
                return None;
            }
        };
        tracing::info!(protocol = ?picker.protocol_type(), "terminal graphics");
        (picker.protocol_type() != ProtocolType::Halfblocks).then(|| Graphics {
            picker,
            cache: HashMap::new(),
        })
    }

    /// Draws the open conversation's whole previews with the terminal's
    /// graphics, over the half-blocks `render` drew.
    pub fn draw(&mut self, app: &App, frame: &mut Frame) {
        if app.help.is_some() || app.panel.is_some() {
            return;
        }
        let Some(conv) = app.selected().and_then(|s| app.conversation(s)) else {
            return;
        };
        let area = app.layout_in(frame.area()).conversation_text();
        if area.width == 0 || area.height == 0 {
            return;
        }
        let indent = crate::tui::conversation::TIME_WIDTH as u16;
        for (entry, row) in conv.visible_previews(usize::from(area.width), usize::from(area.height))
        {
            let Some(media) = conv.entries.get(entry).and_then(|e| e.kind.media()) else {
                continue;
            };
            let Some(p) = &media.preview else { continue };
            if indent + p.cols > area.width {
                continue;
            }
            let rect = Rect {
                x: area.x + indent,
                y: area.y + row as u16,
                width: p.cols,
                height: p.rows,
            };
            if self.cache.len() >= MAX_CACHED {
                self.cache.clear();
            }
            let key = (media.media_id.clone(), p.cols, p.rows);
            let picker = &self.picker;
            let proto = self.cache.entry(key).or_insert_with(|| {
                let img = decode_thumbnail(&media.thumbnail)?;
                picker
                    .new_protocol(img, Size::new(p.cols, p.rows), Resize::Fit(None))
                    .ok()
            });
            if let Some(proto) = proto {
                frame.render_widget(Image::new(proto), rect);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_terminal_is_asked_only_where_it_has_graphics() {
        assert!(worth_asking(env(&[("TERM", "xterm-kitty")])));
        assert!(worth_asking(env(&[("TERM_PROGRAM", "iTerm.app")])));
        assert!(!worth_asking(env(&[("TERM", "xterm-256color")])));
        // tmux: the half-blocks, unless asked for.
        let tmux = [
            ("TERM", "tmux-256color"),
            ("TMUX", "/tmp/t,1,0"),
            ("KITTY_WINDOW_ID", "1"),
        ];
        assert!(!worth_asking(env(&tmux)));
        assert!(worth_asking(env(&[
            ("TMUX", "x"),
            ("RTM_IMAGES", "graphics")
        ])));
        assert!(!worth_asking(env(&[
            ("TERM", "xterm-kitty"),
            ("RTM_IMAGES", "blocks")
        ])));
    }
}
