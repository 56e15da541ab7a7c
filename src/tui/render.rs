//! Drawing: [`render`] is a pure function of `&App`. Each pane has its own
//! function; styles come from the app's [`Theme`]. Nothing here changes state,
//! so scroll offsets are derived (cursor kept in view) rather than stored.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::app::{App, Focus, Screen, StatusKind};
use super::commands::COMMANDS;
use super::conversation::{ConvId, hhmm, wrap};
use super::keymap::{self, Context, KEYMAP};
use super::layout::{MainLayout, centered, has_border, inner};
use super::theme::{Theme, presence_mark};
use crate::client::ConnectionState;

/// Draws the whole screen for the current state.
pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    match app.screen {
        Screen::Login => login_screen(app, frame, area),
        Screen::Main => main_screen(app, frame, area),
    }
    if let Some(help) = app.help {
        help_overlay(app, frame, area, help.scroll);
    }
}

/// A pane's frame: a border (highlighted when focused) with a title.
fn pane_block<'a>(theme: &Theme, title: Line<'a>, focused: bool) -> Block<'a> {
    let (border, title_style) = if focused {
        (theme.border_focused, theme.title_focused)
    } else {
        (theme.border, theme.title)
    };
    Block::bordered()
        .border_style(border)
        .title(title.style(title_style))
}

/// Draws `block` (if there is room for one) and returns the area inside it.
fn draw_frame(frame: &mut Frame, area: Rect, block: Block) -> Rect {
    if has_border(area) {
        frame.render_widget(block, area);
        inner(area)
    } else {
        area
    }
}

/// Truncates `s` to `width` columns, ending in `…` when cut.
fn truncate(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// One line per row of a list; only the rows that fit are drawn, scrolled so
/// that the cursor row stays visible.
fn list_rows(
    frame: &mut Frame,
    area: Rect,
    rows: Vec<Line<'static>>,
    cursor: Option<usize>,
    focused: bool,
    theme: &Theme,
) {
    let h = usize::from(area.height);
    if h == 0 {
        return;
    }
    let offset = cursor.map_or(0, |c| c.saturating_sub(h - 1));
    let visible: Vec<Line> = rows
        .into_iter()
        .enumerate()
        .skip(offset)
        .take(h)
        .map(|(i, line)| {
            if focused && Some(i) == cursor {
                line.patch_style(theme.selected)
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(visible), area);
}

fn hint(theme: &Theme, text: &str) -> Vec<Line<'static>> {
    vec![Line::styled(text.to_string(), theme.dim)]
}

// --------------------------------------------------------------- login

fn login_screen(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let boxed = centered(area, 64, 13);
    frame.render_widget(Clear, boxed);
    let block = pane_block(theme, Line::from(" rtm — log in "), true);
    let inside = draw_frame(frame, boxed, block);
    if inside.width == 0 || inside.height == 0 {
        return;
    }
    let label = |s: &'static str| Span::styled(s, theme.dim);
    let field_x = 11u16;
    let field_w = usize::from(inside.width.saturating_sub(field_x + 1));
    let (shown, cursor_col) = app.login.input.view(field_w.max(1));
    let mut lines = vec![
        Line::default(),
        Line::from(vec![
            label("  Server   "),
            Span::raw(app.server_url.clone()),
        ]),
    ];
    if let Some(e) = &app.embedded_server {
        lines.push(Line::from(vec![
            label("           "),
            Span::styled(e.clone(), theme.dim),
        ]));
    }
    lines.push(Line::from(vec![
        label("  User id  "),
        Span::styled(shown, theme.own_name),
    ]));
    lines.push(Line::default());
    if app.login.busy {
        lines.push(Line::styled("  logging in…", theme.system));
    } else if let Some(e) = &app.login.error {
        let text = vec![(format!("  {e}"), theme.error)];
        lines.extend(wrap(&text, usize::from(inside.width.saturating_sub(1)), 2));
    } else {
        lines.push(Line::styled(
            "  Letters, digits, space and !#$%&()+-:;<=.>?@[]^_{}|~, (1–64)",
            theme.dim,
        ));
    }
    let cursor_row = if app.embedded_server.is_some() { 3 } else { 2 };
    let footer = Line::from(vec![
        Span::styled("  Enter", theme.key),
        Span::raw(" log in   "),
        Span::styled("Esc", theme.key),
        Span::raw(" quit"),
    ]);
    let body_h = inside.height.saturating_sub(1);
    frame.render_widget(
        Paragraph::new(lines),
        Rect::new(inside.x, inside.y, inside.width, body_h),
    );
    if inside.height >= 2 {
        frame.render_widget(
            Paragraph::new(footer),
            Rect::new(inside.x, inside.y + inside.height - 1, inside.width, 1),
        );
    }
    let (cx, cy) = (
        inside.x + field_x + cursor_col as u16,
        inside.y + cursor_row,
    );
    if !app.login.busy && cx < inside.x + inside.width && cy < inside.y + body_h {
        frame.set_cursor_position((cx, cy));
    }
}

// ---------------------------------------------------------------- main

fn main_screen(app: &App, frame: &mut Frame, area: Rect) {
    let l = MainLayout::new(area);
    if let Some(r) = l.peers {
        peers_pane(app, frame, r);
    }
    if let Some(r) = l.channels {
        channels_pane(app, frame, r);
    }
    conversation_pane(app, frame, &l);
    input_pane(app, frame, &l);
    if let Some(r) = l.members {
        members_pane(app, frame, r);
    }
    if let Some(r) = l.attributes {
        attributes_pane(app, frame, r);
    }
    if let Some(r) = l.status {
        status_bar(app, frame, r);
    }
}

fn unread_span(theme: &Theme, n: usize) -> Option<Span<'static>> {
    (n > 0).then(|| Span::styled(format!(" [{n}]"), theme.unread))
}

fn peers_pane(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let focused = app.focus == Focus::Peers;
    let rows = app.peer_rows();
    let title = Line::from(format!(" Peers ({}) ", rows.len()));
    let inside = draw_frame(frame, area, pane_block(theme, title, focused));
    if rows.is_empty() {
        list_rows(
            frame,
            inside,
            hint(theme, "/msg or /watch a peer"),
            None,
            false,
            theme,
        );
        return;
    }
    let cursor = app
        .peers_cursor
        .as_ref()
        .and_then(|c| rows.iter().position(|r| r == c));
    let lines = rows
        .iter()
        .map(|p| {
            let state = app.presence_of(p);
            let id = ConvId::Peer(p.clone());
            let open = app.selected.as_ref() == Some(&id);
            let unread = app.conversations.get(&id).map_or(0, |c| c.unread);
            let mut spans = vec![
                Span::styled(format!("{} ", presence_mark(state)), theme.presence(state)),
                Span::styled(p.to_string(), if open { theme.open } else { Style::new() }),
            ];
            spans.extend(unread_span(theme, unread));
            Line::from(spans)
        })
        .collect();
    list_rows(frame, inside, lines, cursor, focused, theme);
}

fn channels_pane(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let focused = app.focus == Focus::Channels;
    let rows = app.channel_rows();
    let title = Line::from(format!(" Channels ({}) ", rows.len()));
    let inside = draw_frame(frame, area, pane_block(theme, title, focused));
    let cursor = app
        .channels_cursor
        .as_ref()
        .and_then(|c| rows.iter().position(|r| r == c));
    let mut lines: Vec<Line<'static>> = rows
        .iter()
        .map(|c| {
            let info = &app.channels[c];
            let id = ConvId::Channel(c.clone());
            let open = app.selected.as_ref() == Some(&id);
            let unread = app.conversations.get(&id).map_or(0, |c| c.unread);
            let mut spans = vec![Span::styled(
                format!("#{c}"),
                if open { theme.open } else { Style::new() },
            )];
            if let Some(n) = info.member_count {
                spans.push(Span::styled(format!(" ({n})"), theme.dim));
            }
            spans.extend(unread_span(theme, unread));
            Line::from(spans)
        })
        .collect();
    lines.extend(
        app.joining
            .iter()
            .map(|c| Line::styled(format!("#{c} joining…"), theme.dim)),
    );
    if lines.is_empty() {
        lines = hint(theme, "/join <channel>");
    }
    list_rows(frame, inside, lines, cursor, focused, theme);
}

fn conversation_title(app: &App) -> Line<'static> {
    let theme = &app.theme;
    match &app.selected {
        None => Line::from(" rtm "),
        Some(ConvId::Peer(p)) => {
            let state = app.presence_of(p);
            Line::from(vec![
                Span::raw(format!(" {p} ")),
                Span::styled(format!("{} ", presence_mark(state)), theme.presence(state)),
            ])
        }
        Some(ConvId::Channel(c)) => {
            let count = app
                .channels
                .get(c)
                .and_then(|i| i.member_count)
                .map(|n| format!("· {n} member{} ", if n == 1 { "" } else { "s" }))
                .unwrap_or_default();
            Line::from(format!(" #{c} {count}"))
        }
    }
}

fn welcome(theme: &Theme) -> Vec<Line<'static>> {
    let k = |s: &'static str| Span::styled(s, theme.key);
    vec![
        Line::default(),
        Line::styled("  No conversation is open.", theme.heading),
        Line::default(),
        Line::from(vec![
            k("  /join <channel>"),
            Span::raw("      join a channel"),
        ]),
        Line::from(vec![
            k("  /msg <peer> <text>"),
            Span::raw("   write to someone"),
        ]),
        Line::from(vec![
            k("  /watch <uid>"),
            Span::raw("         follow who is online"),
        ]),
        Line::from(vec![
            k("  Tab"),
            Span::raw("                  move between panes"),
        ]),
        Line::from(vec![
            k("  ? or F1"),
            Span::raw("              all keys and commands"),
        ]),
    ]
}

fn conversation_pane(app: &App, frame: &mut Frame, l: &MainLayout) {
    let theme = &app.theme;
    let area = l.conversation;
    if area.width == 0 || area.height == 0 {
        return;
    }
    let conv = app.selected.as_ref().and_then(|s| app.conversations.get(s));
    let mut block = pane_block(theme, conversation_title(app), app.focus == Focus::Input);
    if let Some(c) = conv
        && c.scroll > 0
    {
        block = block.title_bottom(Line::styled(
            format!(" ↓ {} more lines below (PgDn) ", c.scroll),
            theme.system,
        ));
    }
    let text_area = draw_frame(frame, area, block);
    let Some(conv) = conv else {
        frame.render_widget(Paragraph::new(welcome(theme)), text_area);
        return;
    };
    let (lines, _) = conv.visible_lines(
        app.me.as_ref(),
        theme,
        usize::from(text_area.width),
        usize::from(text_area.height),
        conv.scroll,
    );
    // Short conversations sit at the bottom, next to the input, like a chat.
    let pad = usize::from(text_area.height).saturating_sub(lines.len());
    let lines: Vec<Line> = std::iter::repeat_n(Line::default(), pad)
        .chain(lines)
        .collect();
    frame.render_widget(Paragraph::new(lines), text_area);
}

fn input_pane(app: &App, frame: &mut Frame, l: &MainLayout) {
    let theme = &app.theme;
    let area = l.input;
    if area.width == 0 || area.height == 0 {
        return;
    }
    let focused = app.focus == Focus::Input && app.help.is_none();
    let target = match &app.selected {
        Some(id) => format!(" to {id} "),
        None => " /command ".to_string(),
    };
    let text_area = if l.input_bordered {
        let block = pane_block(theme, Line::from(target), focused);
        draw_frame(frame, area, block)
    } else {
        area
    };
    if text_area.width == 0 {
        return;
    }
    let prompt = if l.input_bordered { "" } else { "> " };
    let prompt_w = prompt.width().min(usize::from(text_area.width));
    let room = usize::from(text_area.width) - prompt_w;
    let (shown, col) = app.input.view(room);
    let line = if app.input.is_empty() && !focused {
        Line::from(vec![
            Span::raw(prompt),
            Span::styled("Tab here to type · ? help", theme.dim),
        ])
    } else if app.input.is_empty() {
        Line::from(vec![
            Span::raw(prompt),
            Span::styled(
                if app.selected.is_some() {
                    "type a message · /help for commands"
                } else {
                    "/join <channel> · /msg <peer> <text> · /help"
                },
                theme.dim,
            ),
        ])
    } else {
        Line::from(vec![Span::raw(prompt), Span::raw(shown)])
    };
    frame.render_widget(Paragraph::new(line), text_area);
    if focused {
        let x = text_area.x + (prompt_w + col) as u16;
        if x < text_area.x + text_area.width {
            frame.set_cursor_position((x, text_area.y));
        }
    }
}

fn members_pane(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let focused = app.focus == Focus::Members;
    let rows = app.member_rows();
    let title = match app.selected_channel() {
        Some(c) => Line::from(format!(" Members of #{c} ")),
        None => Line::from(" Members "),
    };
    let inside = draw_frame(frame, area, pane_block(theme, title, focused));
    if app.selected_channel().is_none() {
        list_rows(
            frame,
            inside,
            hint(theme, "no channel open"),
            None,
            false,
            theme,
        );
        return;
    }
    let cursor = app
        .members_cursor
        .as_ref()
        .and_then(|c| rows.iter().position(|r| r == c));
    let lines = rows
        .iter()
        .map(|m| {
            let state = Some(app.member_presence(m));
            let mut spans = vec![
                Span::styled(format!("{} ", presence_mark(state)), theme.presence(state)),
                Span::raw(m.to_string()),
            ];
            if app.me.as_ref() == Some(m) {
                spans.push(Span::styled(" (you)", theme.dim));
            }
            Line::from(spans)
        })
        .collect();
    list_rows(frame, inside, lines, cursor, focused, theme);
}

/// Two lines per attribute: `key = value`, then who changed it and when.
fn attribute_lines(
    theme: &Theme,
    width: usize,
    key: &str,
    value: &str,
    by: Option<(&str, u64)>,
    changed: bool,
) -> Vec<Line<'static>> {
    let style = if changed { theme.changed } else { Style::new() };
    let mark = if changed { "* " } else { "  " };
    let head = format!("{mark}{key} = ");
    let room = width.saturating_sub(head.width());
    let mut out = vec![Line::from(vec![
        Span::styled(head, style),
        Span::styled(truncate(&value.replace('\n', " "), room), style),
    ])];
    if let Some((who, ts)) = by {
        out.push(Line::styled(
            truncate(&format!("    by {who} at {}", hhmm(ts)), width),
            theme.dim,
        ));
    }
    out
}

fn attributes_pane(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let focused = app.focus == Focus::Attributes;
    let inside = draw_frame(
        frame,
        area,
        pane_block(theme, Line::from(" Attributes "), focused),
    );
    let width = usize::from(inside.width);
    let mut lines: Vec<Line<'static>> = Vec::new();
    match &app.selected {
        Some(ConvId::Channel(c)) => {
            lines.push(Line::styled(format!("#{c}"), theme.heading));
            match app.channels.get(c) {
                Some(info) if !info.attributes.is_empty() => {
                    for a in &info.attributes {
                        lines.extend(attribute_lines(
                            theme,
                            width,
                            &a.key,
                            &a.value,
                            Some((a.last_update_user_id.as_str(), a.last_update_ts)),
                            info.changed.contains_key(&a.key),
                        ));
                    }
                }
                Some(_) => lines.push(Line::styled("  none · /cattr put", theme.dim)),
                None => lines.push(Line::styled("  not joined", theme.dim)),
            }
        }
        Some(ConvId::Peer(p)) => {
            lines.push(Line::styled(p.to_string(), theme.heading));
            match app.user_attrs.get(p) {
                Some(Ok(map)) if map.is_empty() => {
                    lines.push(Line::styled("  none", theme.dim));
                }
                Some(Ok(map)) => {
                    for (k, v) in map {
                        lines.extend(attribute_lines(theme, width, k, v, None, false));
                    }
                }
                Some(Err(e)) => {
                    lines.push(Line::styled(truncate(&format!("  {e}"), width), theme.dim))
                }
                None => lines.push(Line::styled("  not fetched", theme.dim)),
            }
        }
        None => {}
    }
    if let Some(me) = &app.me {
        if !lines.is_empty() {
            lines.push(Line::default());
        }
        lines.push(Line::styled(format!("you ({me})"), theme.heading));
        if app.my_attrs.is_empty() {
            lines.push(Line::styled("  none · /attr put k=v", theme.dim));
        }
        for (k, v) in &app.my_attrs {
            lines.extend(attribute_lines(theme, width, k, v, None, false));
        }
    }
    let h = usize::from(inside.height);
    let scroll = app.attrs_scroll.min(lines.len().saturating_sub(h));
    let lines: Vec<Line> = lines.into_iter().skip(scroll).collect();
    frame.render_widget(Paragraph::new(lines), inside);
}

fn connection_word(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Disconnected => "DISCONNECTED",
        ConnectionState::Connecting => "CONNECTING…",
        ConnectionState::Connected => "CONNECTED",
        ConnectionState::Reconnecting => "RECONNECTING…",
        ConnectionState::Aborted => "ABORTED",
    }
}

/// State and uid on the left, the latest message next, the server on the right
/// when there is room: the message matters more than the URL on a narrow screen.
fn status_bar(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let state = format!(" {} ", connection_word(app.connection));
    let who = app
        .me
        .as_ref()
        .map(|m| format!(" {m} "))
        .unwrap_or_default();
    let mut left = vec![
        Span::styled(state, theme.connection(app.connection)),
        Span::styled(who, theme.own_name),
    ];
    let msg = app.status.as_ref().map(|s| {
        let style = match s.kind {
            StatusKind::Error => theme.error,
            StatusKind::Note => theme.system,
            StatusKind::Info => Style::new(),
        };
        Span::styled(format!(" {}", s.text), style)
    });
    let mut server = app.server_url.clone();
    if let Some(e) = &app.embedded_server {
        server.push_str(" · ");
        server.push_str(e);
    }
    let server = format!(" {server} ");
    let used: usize =
        left.iter().map(|s| s.width()).sum::<usize>() + msg.as_ref().map_or(0, |m| m.width());
    let width = usize::from(area.width);
    if let Some(m) = msg {
        left.push(m);
    }
    if used + server.width() < width {
        let pad = width - used - server.width();
        left.push(Span::raw(" ".repeat(pad)));
        left.push(Span::styled(server, theme.dim));
    }
    frame.render_widget(
        Paragraph::new(Line::from(left)).style(theme.status_bar),
        area,
    );
}

// ---------------------------------------------------------------- help

/// The help text, generated from the keymap and the command table.
pub fn help_lines(app: &App) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let mut lines = vec![Line::styled("Keys", theme.heading)];
    for ctx in [
        Context::Global,
        Context::List,
        Context::Input,
        Context::Overlay,
    ] {
        lines.push(Line::styled(format!(" {}", ctx.title()), theme.dim));
        for b in KEYMAP.iter().filter(|b| b.context == ctx) {
            lines.push(Line::from(vec![
                Span::styled(format!("   {:<20}", keymap::keys_label(b)), theme.key),
                Span::raw(b.description),
            ]));
        }
    }
    lines.push(Line::default());
    lines.push(Line::styled("Commands", theme.heading));
    for c in COMMANDS {
        lines.push(Line::from(vec![
            Span::styled(format!("   /{} ", c.name), theme.key),
            Span::raw(c.args),
        ]));
        lines.push(Line::styled(format!("       {}", c.description), theme.dim));
    }
    lines.push(Line::default());
    lines.push(Line::styled("Marks", theme.heading));
    lines.push(Line::from(vec![
        Span::styled("   ● ", theme.online),
        Span::raw("online  "),
        Span::styled("◐ ", theme.unreachable),
        Span::raw("unreachable  "),
        Span::styled("○ ", theme.offline),
        Span::raw("offline  "),
        Span::raw("? unknown  "),
        Span::styled("[n]", theme.unread),
        Span::raw(" unread  (n) members"),
    ]));
    lines.push(Line::default());
    lines.push(Line::styled("Files", theme.heading));
    lines.push(Line::raw(format!("   logs     {}", app.log_dir.display())));
    lines.push(Line::raw(format!(
        "   watched  {}",
        app.data_dir.join(super::WATCHED_FILE).display()
    )));
    lines
}

fn help_overlay(app: &App, frame: &mut Frame, area: Rect, scroll: u16) {
    let theme = &app.theme;
    let lines = help_lines(app);
    let fits = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let boxed = centered(
        area,
        area.width.saturating_sub(4).min(96),
        area.height.saturating_sub(2).min(fits),
    );
    frame.render_widget(Clear, boxed);
    let block = pane_block(theme, Line::from(" Help "), true)
        .title_bottom(Line::styled(" ↑/↓ scroll · Esc close ", theme.dim));
    let inside = draw_frame(frame, boxed, block);
    let max = lines.len().saturating_sub(usize::from(inside.height));
    let scroll = usize::from(scroll).min(max);
    let lines: Vec<Line> = lines.into_iter().skip(scroll).collect();
    frame.render_widget(Paragraph::new(lines), inside);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(truncate("hello world", 6), "hello…");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn layout_module_is_used_for_the_conversation() {
        // The page size used by PageUp must be the area the pane draws into.
        let l = MainLayout::new(Rect::new(0, 0, 80, 24));
        assert_eq!(l.conversation_text(), inner(l.conversation));
    }
}
