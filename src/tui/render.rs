//! Drawing: [`render`] is a pure function of `&App`. Each pane has its own
//! function; styles come from the app's [`Theme`]. Nothing here changes state,
//! so scroll offsets are derived (cursor kept in view) rather than stored.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::app::{App, AttrRef, Dialing, Focus, Panel, Screen, StatusKind, age_words, one_line};
use super::commands::{COMMANDS, CommandSpec};
use super::conversation::{ConvId, Highlight, hhmm, wrap};
use super::keymap::{Action, Context};
use super::layout::{MainLayout, centered, has_border, inner};
use super::theme::{CALL_MARK, MENTION_MARK, MUTED_MARK, Theme, presence_mark};
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
    if let Some(panel) = app.panel
        && app.screen == Screen::Main
    {
        panel_overlay(app, frame, area, panel);
    }
    if let Some(help) = app.help {
        help_overlay(app, frame, area, help.scroll, help.topic);
    }
    if app.screen == Screen::Main {
        // Over everything, the help included: a call must not go unseen.
        call_banner(app, frame);
    }
}

/// The ringing banner over the top of the conversation: the newest call
/// that rings us (caller, text, seconds left, the keys), then our own
/// calls still ringing, one row each.
fn call_banner(app: &App, frame: &mut Frame) {
    let theme = &app.theme;
    // Inside the conversation pane's frame, so its title stays readable.
    let conv = inner(app.layout_in(frame.area()).conversation);
    let width = usize::from(conv.width);
    if width < 8 || conv.height < 1 {
        return;
    }
    let mut y = conv.y;
    let bottom = conv.y + conv.height;
    if let Some(call) = app.banner_call() {
        let more = app
            .incoming_calls()
            .iter()
            .filter(|c| c.answering.is_none())
            .count()
            - 1;
        let mut title = format!(
            " {CALL_MARK} {} is calling · {} s ",
            call.caller,
            app.seconds_left(call)
        );
        if more > 0 {
            title.push_str(&format!("· {more} more ringing "));
        }
        let accept = key_label(app, Context::Global, Action::AcceptCall, "/accept");
        let refuse = key_label(app, Context::Global, Action::HangUp, "/refuse");
        let mut lines = Vec::new();
        let content = one_line(&call.content);
        if !content.is_empty() {
            lines.push(content);
        }
        if let Some(ch) = &call.channel {
            lines.push(format!("channel: {ch}"));
        }
        lines.push(format!(
            "{accept} accept · {refuse} refuse · /accept [text] · /refuse [text]"
        ));
        let inner_w = width.saturating_sub(2).max(1);
        let rows: Vec<Line> = lines
            .iter()
            .flat_map(|l| wrap(&[(l.clone(), theme.ringing)], inner_w, 0))
            .collect();
        let h = u16::try_from(rows.len() + 2)
            .unwrap_or(u16::MAX)
            .min(bottom - y);
        let r = Rect::new(conv.x, y, conv.width, h);
        frame.render_widget(Clear, r);
        let block = Block::bordered()
            .border_style(theme.ringing)
            .style(theme.ringing)
            .title(Line::styled(title, theme.ringing));
        let inside = block.inner(r);
        frame.render_widget(block, r);
        frame.render_widget(Paragraph::new(rows).style(theme.ringing), inside);
        y += h;
    }
    // The hang-up key refuses a call that rings us first; only /cancel
    // then reaches ours.
    let hang_up = if app.banner_call().is_some() {
        "/cancel hangs up".to_string()
    } else {
        format!(
            "{} or /cancel hangs up",
            key_label(app, Context::Global, Action::HangUp, "/cancel")
        )
    };
    for call in app.outgoing_calls().iter().rev() {
        if y >= bottom {
            break;
        }
        let what = match (call.hanging_up, call.state) {
            (true, _) => format!("hanging up on {}…", call.callee),
            (false, Dialing::PhoneRings) => format!("{}'s phone rings…", call.callee),
            (false, _) => format!("ringing {}…", call.callee),
        };
        let text = format!(" {CALL_MARK} {what} · {hang_up}");
        let r = Rect::new(conv.x, y, conv.width, 1);
        frame.render_widget(Clear, r);
        frame.render_widget(
            Paragraph::new(Line::styled(truncate(&text, width), theme.ringing))
                .style(theme.ringing),
            r,
        );
        y += 1;
    }
}

/// The label of the first key of `action` in `context` (for hints), or `fallback`.
fn key_label(app: &App, context: Context, action: Action, fallback: &str) -> String {
    app.keymap()
        .first_key(context, action)
        .map_or_else(|| fallback.to_string(), |k| k.label())
}

/// `/members` and `/attrs`: the pane large, over the screen above the
/// status bar, scrolled to keep the selected row in view.
fn panel_overlay(app: &App, frame: &mut Frame, area: Rect, panel: Panel) {
    let theme = &app.theme;
    let body = Rect::new(area.x, area.y, area.width, area.height.saturating_sub(1));
    let boxed = centered(
        body,
        body.width.saturating_sub(4).min(100),
        body.height.saturating_sub(2),
    );
    if boxed.width < 3 || boxed.height < 3 {
        return;
    }
    frame.render_widget(Clear, boxed);
    let esc = key_label(app, Context::Global, Action::Back, "Esc");
    let tab = key_label(app, Context::Global, Action::FocusNext, "Tab");
    let refresh = key_label(app, Context::List, Action::Refresh, "F5");
    let (title, hint) = match panel {
        Panel::Members => {
            let title = match app.selected_channel() {
                Some(c) => format!(" Members of #{c} ({}) ", app.member_rows().len()),
                None => " Members ".to_string(),
            };
            let open = key_label(app, Context::List, Action::Open, "Enter");
            (
                title,
                format!(
                    " ↑/↓ · {open} message · {refresh} refresh · {tab} attributes · {esc} close "
                ),
            )
        }
        Panel::Attributes => {
            let (e, a, d) = (
                key_label(app, Context::List, Action::EditAttribute, "e"),
                key_label(app, Context::List, Action::AddAttribute, "a"),
                key_label(app, Context::List, Action::DeleteAttribute, "d"),
            );
            (
                " Attributes ".to_string(),
                format!(
                    " ↑/↓ · {e} edit · {a} add · {d} delete · {refresh} refresh · {tab} members · {esc} close "
                ),
            )
        }
    };
    let hint = truncate(&hint, usize::from(boxed.width.saturating_sub(2)));
    let block =
        pane_block(theme, Line::from(title), true).title_bottom(Line::styled(hint, theme.dim));
    let inside = draw_frame(frame, boxed, block);
    match panel {
        Panel::Members => {
            let rows = app.member_rows();
            let cursor = app.members_list.index_in(&rows);
            let line_of = |m: &crate::client::Uid| member_line(app, m);
            list_rows_with(frame, inside, &rows, line_of, cursor, true, theme);
        }
        Panel::Attributes => {
            let (lines, selected) = attribute_panel_lines(app, usize::from(inside.width));
            let h = usize::from(inside.height);
            // Derived, not stored: the selected row's last line at the bottom
            // at most, its first line never above the top.
            let scroll =
                selected.map_or(0, |(first, last)| (last + 1).saturating_sub(h).min(first));
            let lines: Vec<Line> = lines.into_iter().skip(scroll).take(h).collect();
            frame.render_widget(Paragraph::new(lines), inside);
        }
    }
}

/// The attributes of the open conversation and our own, whole and wrapped,
/// with who changed each and when; and the line range of the selected row.
fn attribute_panel_lines(app: &App, width: usize) -> (Vec<Line<'static>>, Option<(usize, usize)>) {
    let theme = &app.theme;
    let now = app.now();
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut selected = None;
    let mut row = |lines: &mut Vec<Line<'static>>,
                   key: &str,
                   value: &str,
                   by: Option<(&str, u64)>,
                   changed: bool,
                   is_selected: bool| {
        let first = lines.len();
        let mark = if is_selected {
            "› "
        } else if changed {
            "* "
        } else {
            "  "
        };
        let style = if changed { theme.changed } else { Style::new() };
        let head = Line::from(vec![
            Span::styled(mark.to_string(), style),
            Span::styled(key.to_string(), theme.heading.patch(style)),
        ]);
        lines.push(if is_selected {
            head.patch_style(theme.selected)
        } else {
            head
        });
        let value_width = width.saturating_sub(4).max(1);
        lines.extend(
            wrap(&[(value.to_string(), style)], value_width, 0)
                .into_iter()
                .map(|l| {
                    let mut spans = vec![Span::raw("    ")];
                    spans.extend(l.spans);
                    Line::from(spans)
                }),
        );
        if let Some((who, ts)) = by {
            lines.push(Line::styled(
                truncate(
                    &format!("    by {who} at {} ({})", hhmm(ts), age_words(now, ts)),
                    width,
                ),
                theme.dim,
            ));
        }
        if is_selected {
            selected = Some((first, lines.len() - 1));
        }
    };
    match &app.selected {
        Some(ConvId::Channel(c)) => {
            let info = app.channels.get(c);
            let mut head = vec![Span::styled(format!("#{c}"), theme.heading)];
            match info.and_then(|i| i.attrs_at) {
                Some(at) => head.push(Span::styled(
                    format!(" · read from the server {}", age_words(now, at)),
                    theme.dim,
                )),
                None if info.is_some() => head.push(Span::styled(" · reading…", theme.dim)),
                None => {}
            }
            lines.push(Line::from(head));
            if let Some(e) = info.and_then(|i| i.attrs_error.as_ref()) {
                lines.extend(wrap(
                    &[(format!("  not refreshed: {e}"), theme.error)],
                    width,
                    2,
                ));
            }
            match info {
                None => lines.push(Line::styled(
                    format!("  you are not in #{c}: /join {c} to see them"),
                    theme.dim,
                )),
                Some(i) if i.attributes.is_empty() && i.attrs_at.is_some() => {
                    lines.push(Line::styled("  none · /cattr put", theme.dim))
                }
                Some(i) => {
                    for a in &i.attributes {
                        let sel = app
                            .attrs_list
                            .is_selected(&AttrRef::Channel(c.clone(), a.key.clone()));
                        row(
                            &mut lines,
                            &a.key,
                            &a.value,
                            Some((a.last_update_user_id.as_str(), a.last_update_ts)),
                            i.changed.contains_key(&a.key),
                            sel,
                        );
                    }
                }
            }
        }
        Some(ConvId::Peer(p)) => {
            lines.push(Line::styled(p.to_string(), theme.heading));
            match app.user_attrs.get(p) {
                Some(Ok(map)) if map.is_empty() => lines.push(Line::styled("  none", theme.dim)),
                Some(Ok(map)) => {
                    for (k, v) in map {
                        row(&mut lines, k, v, None, false, false);
                    }
                }
                Some(Err(e)) => lines.extend(wrap(&[(format!("  {e}"), theme.dim)], width, 2)),
                None => lines.push(Line::styled("  reading…", theme.dim)),
            }
        }
        None => {}
    }
    my_attributes(app, theme, &mut lines, |lines, k, v, sel| {
        row(lines, k, v, None, false, sel)
    });
    (lines, selected)
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
    list_rows_with(frame, area, &rows, |l| l.clone(), cursor, focused, theme);
}

/// Like [`list_rows`], but builds the line of a row only when it is visible:
/// a channel of a thousand members costs a screenful of lines, not a thousand.
fn list_rows_with<T>(
    frame: &mut Frame,
    area: Rect,
    rows: &[T],
    line_of: impl Fn(&T) -> Line<'static>,
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
        .iter()
        .enumerate()
        .skip(offset)
        .take(h)
        .map(|(i, row)| {
            let line = line_of(row);
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
    let l = app.layout_in(area);
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

/// ` [5]`, ` [5 @2]` (two of them mention you): readable without colour.
fn unread_spans(app: &App, id: &ConvId) -> Vec<Span<'static>> {
    let theme = &app.theme;
    let Some(c) = app.conversations.get(id).filter(|c| c.unread > 0) else {
        return Vec::new();
    };
    let muted = app.is_muted(id);
    let style = if muted { theme.muted } else { theme.unread };
    let mut spans = vec![Span::styled(format!(" [{}", c.unread), style)];
    if c.mentions > 0 {
        spans.push(Span::styled(format!(" @{}", c.mentions), theme.mention));
    }
    spans.push(Span::styled("]", style));
    spans
}

/// The name of a conversation in a pane: bold when open, dim and marked when muted.
fn name_span(app: &App, id: &ConvId, text: String) -> Vec<Span<'static>> {
    let theme = &app.theme;
    let open = app.selected.as_ref() == Some(id);
    let mut style = if open { theme.open } else { Style::new() };
    let mut spans = Vec::new();
    if app.is_muted(id) {
        style = style.patch(theme.muted);
        spans.push(Span::styled(format!("{MUTED_MARK} "), theme.muted));
    }
    spans.push(Span::styled(text, style));
    spans
}

/// The rows of a list drawn in `area`'s frame: the first one shown (as
/// [`list_rows_with`] scrolls to the cursor) and how many fit.
fn list_window(area: Rect, cursor: Option<usize>) -> (usize, usize) {
    let h = usize::from(if has_border(area) {
        inner(area).height
    } else {
        area.height
    });
    let offset = cursor.map_or(0, |c| c.saturating_sub(h.saturating_sub(1)));
    (offset, h)
}

/// "↑ 3 unread above", "↓ 2 unread below" (or both): the unread messages of
/// conversations scrolled out of a list, for its bottom border.
fn unread_beyond(
    app: &App,
    ids: &[ConvId],
    area: Rect,
    cursor: Option<usize>,
) -> Option<Line<'static>> {
    let theme = &app.theme;
    let (offset, h) = list_window(area, cursor);
    let count = |ids: &[ConvId]| {
        ids.iter()
            .filter_map(|id| app.conversations.get(id))
            .fold((0, 0), |(u, m), c| (u + c.unread, m + c.mentions))
    };
    let (above, above_m) = count(&ids[..offset.min(ids.len())]);
    let (below, below_m) = count(ids.get(offset + h..).unwrap_or(&[]));
    let text = match (above, below) {
        (0, 0) => return None,
        (a, 0) => format!(" ↑ {a} unread above "),
        (0, b) => format!(" ↓ {b} unread below "),
        (a, b) => format!(" ↑ {a} · ↓ {b} unread "),
    };
    let style = if above_m + below_m > 0 {
        theme.mention
    } else {
        theme.unread
    };
    Some(Line::styled(text, style))
}

fn peers_pane(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let focused = app.focus == Focus::Peers;
    let rows = app.peer_rows();
    let title = Line::from(format!(" Peers ({}) ", rows.len()));
    let mut block = pane_block(theme, title, focused);
    let ids: Vec<ConvId> = rows.iter().cloned().map(ConvId::Peer).collect();
    if let Some(l) = unread_beyond(app, &ids, area, app.peers_list.index_in(&rows)) {
        block = block.title_bottom(l);
    }
    let inside = draw_frame(frame, area, block);
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
    let cursor = app.peers_list.index_in(&rows);
    let lines = rows
        .iter()
        .map(|p| {
            let state = app.presence_of(p);
            let id = ConvId::Peer(p.clone());
            let mut spans = vec![Span::styled(
                format!("{} ", presence_mark(state)),
                theme.presence(state),
            )];
            spans.extend(name_span(app, &id, p.to_string()));
            spans.extend(unread_spans(app, &id));
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
    let mut block = pane_block(theme, title, focused);
    let ids: Vec<ConvId> = rows.iter().cloned().map(ConvId::Channel).collect();
    if let Some(l) = unread_beyond(app, &ids, area, app.channels_list.index_in(&rows)) {
        block = block.title_bottom(l);
    }
    let inside = draw_frame(frame, area, block);
    let cursor = app.channels_list.index_in(&rows);
    let mut lines: Vec<Line<'static>> = rows
        .iter()
        .map(|c| {
            let id = ConvId::Channel(c.clone());
            let mut spans = name_span(app, &id, format!("#{c}"));
            match app.channels.get(c) {
                Some(info) => {
                    if let Some(n) = info.member_count {
                        spans.push(Span::styled(format!(" ({n})"), theme.dim));
                    }
                }
                // Known from the local history only: readable, not joined.
                None => spans.push(Span::styled(" (left)", theme.dim)),
            }
            spans.extend(unread_spans(app, &id));
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
            k("  F1"),
            Span::raw("                   all keys and commands"),
        ]),
    ]
}

/// The bottom title of the conversation: the search, or what is below the view.
fn conversation_footer(app: &App) -> Option<Line<'static>> {
    let theme = &app.theme;
    let conv = app
        .selected
        .as_ref()
        .and_then(|s| app.conversations.get(s))?;
    if let Some(search) = app.search_state() {
        let q = search.query.text();
        let text = match search.position() {
            _ if q.is_empty() => " search: type to find ".to_string(),
            _ if search.fetching_hit => {
                format!(
                    " {} matches for {q:?} · reading older messages… ",
                    search.total()
                )
            }
            None if search.store_pending => format!(" searching the history for {q:?}… "),
            None => format!(" no match for {q:?} "),
            Some(i) => {
                let keys = if search.editing {
                    "↑/↓ · Enter keep · Esc".to_string()
                } else {
                    let k = |a| {
                        app.keymap()
                            .first_key(Context::Conversation, a)
                            .map_or(String::new(), |k| k.label())
                    };
                    format!(
                        "{} older · {} newer · Esc",
                        k(Action::SearchOlder),
                        k(Action::SearchNewer)
                    )
                };
                let more = if search.store_pending { "+" } else { "" };
                format!(" match {i}/{}{more} for {q:?} · {keys} ", search.total())
            }
        };
        return Some(Line::styled(text, theme.system));
    }
    let below = conv.entries_below();
    if below == 0 {
        if conv.loading_older {
            return Some(Line::styled(" ↑ reading older messages… ", theme.system));
        }
        return None;
    }
    // The key that takes the view down where the keys go now: in the
    // conversation pane its own (End), elsewhere the global one (Ctrl-End;
    // End in the input moves the cursor).
    let context = if app.focus == Focus::Conversation {
        Context::Conversation
    } else {
        Context::Global
    };
    let key = app
        .keymap()
        .first_key(context, Action::ScrollBottom)
        .or_else(|| {
            app.keymap()
                .first_key(Context::Global, Action::ScrollBottom)
        })
        .map_or_else(|| "scroll down".to_string(), |k| k.label());
    let text = if conv.new_below > 0 {
        format!(
            " ↓ {} new message{} below · {key} ",
            conv.new_below,
            if conv.new_below == 1 { "" } else { "s" }
        )
    } else {
        format!(" ↓ {below} more below · {key} ")
    };
    let style = if conv.new_below > 0 {
        theme.unread
    } else {
        theme.system
    };
    Some(Line::styled(text, style))
}

fn conversation_pane(app: &App, frame: &mut Frame, l: &MainLayout) {
    let theme = &app.theme;
    let area = l.conversation;
    if area.width == 0 || area.height == 0 {
        return;
    }
    let conv = app.selected.as_ref().and_then(|s| app.conversations.get(s));
    let focused = app.focus == Focus::Conversation && app.help.is_none();
    let mut block = pane_block(theme, conversation_title(app), focused);
    if let Some(footer) = conversation_footer(app) {
        block = block.title_bottom(footer);
    }
    let text_area = draw_frame(frame, area, block);
    let Some(conv) = conv else {
        frame.render_widget(Paragraph::new(welcome(theme)), text_area);
        return;
    };
    let search = app.search_state();
    let hl = Highlight {
        query: search.map(|s| s.query.text()).filter(|q| !q.is_empty()),
        current: search.and_then(|s| s.current_entry()),
    };
    let lines = conv.visible_lines(
        app.me.as_ref(),
        theme,
        usize::from(text_area.width),
        usize::from(text_area.height),
        hl,
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
    let searching = app.search_state().filter(|s| s.editing);
    let focused = (app.focus == Focus::Input || searching.is_some()) && app.help.is_none();
    let target = match (&app.selected, searching) {
        (Some(id), Some(_)) => format!(" search {id} "),
        (Some(id), None) => format!(" to {id} "),
        (None, _) => " /command ".to_string(),
    };
    let text_area = if l.input_bordered {
        let block = pane_block(theme, Line::from(target), focused);
        draw_frame(frame, area, block)
    } else {
        area
    };
    if text_area.width == 0 || text_area.height == 0 {
        return;
    }
    let prompt = match (searching.is_some(), l.input_bordered) {
        (true, _) => "/ ",
        (false, true) => "",
        (false, false) => "> ",
    };
    let prompt_w = prompt.width().min(usize::from(text_area.width));
    let room = usize::from(text_area.width) - prompt_w;
    let editor = searching.map_or(&app.input, |s| &s.query);
    let (rows, (col, row)) = editor.rows(room.max(1), usize::from(text_area.height));
    let lines: Vec<Line> = if searching.is_none() && app.input.is_empty() {
        let hint = if !focused {
            "Tab here to type · ? help"
        } else if app.selected.is_some() {
            "type a message · Alt-Enter new line · /help"
        } else {
            "/join <channel> · /msg <peer> <text> · /help"
        };
        vec![Line::from(vec![
            Span::raw(prompt),
            Span::styled(hint, theme.dim),
        ])]
    } else {
        rows.into_iter()
            .enumerate()
            .map(|(i, r)| {
                let lead = if i == 0 { prompt } else { "" };
                Line::from(vec![Span::raw(format!("{lead:<prompt_w$}")), Span::raw(r)])
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), text_area);
    if focused {
        let x = text_area.x + (prompt_w + col) as u16;
        let y = text_area.y + row as u16;
        if x < text_area.x + text_area.width && y < text_area.y + text_area.height {
            frame.set_cursor_position((x, y));
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
    let cursor = app.members_list.index_in(&rows);
    let line_of = |m: &crate::client::Uid| member_line(app, m);
    list_rows_with(frame, inside, &rows, line_of, cursor, focused, theme);
}

/// A member: presence mark (as in the Peers pane), uid, "(you)".
fn member_line(app: &App, m: &crate::client::Uid) -> Line<'static> {
    let theme = &app.theme;
    let state = Some(app.member_presence(m));
    let mut spans = vec![
        Span::styled(format!("{} ", presence_mark(state)), theme.presence(state)),
        Span::raw(m.to_string()),
    ];
    if app.me.as_ref() == Some(m) {
        spans.push(Span::styled(" (you)", theme.dim));
    }
    Line::from(spans)
}

/// Two lines per attribute: `key = value`, then who changed it and when.
/// "you (uid)" and the user's own attributes, below the channel's or the
/// peer's; `row` draws one (key, value, selected) in the caller's style.
fn my_attributes(
    app: &App,
    theme: &Theme,
    lines: &mut Vec<Line<'static>>,
    mut row: impl FnMut(&mut Vec<Line<'static>>, &str, &str, bool),
) {
    let Some(me) = &app.me else { return };
    if !lines.is_empty() {
        lines.push(Line::default());
    }
    lines.push(Line::styled(format!("you ({me})"), theme.heading));
    if app.my_attrs.is_empty() {
        lines.push(Line::styled("  none · /attr put k=v", theme.dim));
    }
    for (k, v) in &app.my_attrs {
        let selected = app.attrs_list.is_selected(&AttrRef::Mine(k.clone()));
        row(lines, k, v, selected);
    }
}

fn attribute_lines(
    theme: &Theme,
    width: usize,
    key: &str,
    value: &str,
    by: Option<(&str, u64)>,
    changed: bool,
    selected: bool,
) -> Vec<Line<'static>> {
    let style = if changed { theme.changed } else { Style::new() };
    // The selection is marked with a symbol as well as a colour.
    let mark = match (selected, changed) {
        (true, _) => "› ",
        (false, true) => "* ",
        (false, false) => "  ",
    };
    let head = format!("{mark}{key} = ");
    let room = width.saturating_sub(head.width());
    let first = Line::from(vec![
        Span::styled(head, style),
        Span::styled(truncate(&value.replace('\n', " "), room), style),
    ]);
    let mut out = vec![if selected {
        first.patch_style(theme.selected)
    } else {
        first
    }];
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
            let mut head = vec![Span::styled(format!("#{c}"), theme.heading)];
            if let Some(at) = app.channels.get(c).and_then(|i| i.attrs_at) {
                head.push(Span::styled(
                    format!(" · read {}", age_words(app.now(), at)),
                    theme.dim,
                ));
            }
            lines.push(Line::from(head));
            if let Some(e) = app.channels.get(c).and_then(|i| i.attrs_error.as_ref()) {
                lines.push(Line::styled(
                    truncate(&format!("  not refreshed: {e}"), width),
                    theme.error,
                ));
            }
            match app.channels.get(c) {
                Some(info) if info.attributes.is_empty() && info.attrs_at.is_none() => {
                    lines.push(Line::styled("  reading…", theme.dim));
                }
                Some(info) if !info.attributes.is_empty() => {
                    for a in &info.attributes {
                        lines.extend(attribute_lines(
                            theme,
                            width,
                            &a.key,
                            &a.value,
                            Some((a.last_update_user_id.as_str(), a.last_update_ts)),
                            info.changed.contains_key(&a.key),
                            focused
                                && app
                                    .attrs_list
                                    .is_selected(&AttrRef::Channel(c.clone(), a.key.clone())),
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
                        lines.extend(attribute_lines(theme, width, k, v, None, false, false));
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
    my_attributes(app, theme, &mut lines, |lines, k, v, sel| {
        lines.extend(attribute_lines(
            theme,
            width,
            k,
            v,
            None,
            false,
            focused && sel,
        ))
    });
    let h = usize::from(inside.height);
    let scroll = app.attrs_list.offset().min(lines.len().saturating_sub(h));
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
    // The outbox, while anything waits in it: the count is what matters.
    if !app.outbox.is_empty() {
        left.push(Span::styled(
            format!(" {} queued ", app.outbox.len()),
            theme.connection(ConnectionState::Reconnecting),
        ));
    }
    let msg = app.status.as_ref().map(|s| {
        let style = match s.kind {
            StatusKind::Error => theme.error,
            StatusKind::Note => theme.system,
            StatusKind::Info => Style::new(),
        };
        Span::styled(format!(" {}", s.text), style)
    });
    // The server in use once connected (with several configured, which one).
    let mut server = app
        .server_in_use
        .clone()
        .unwrap_or_else(|| app.server_url.clone());
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

/// The help text for a box `width` columns wide, generated from the keymap
/// in force and the command table.
pub fn help_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let mut lines = vec![Line::styled("Keys", theme.heading)];
    let rows = app.keymap().rows();
    let label_w = rows
        .iter()
        .map(|b| b.keys_label().width())
        .max()
        .unwrap_or(0)
        .min(26);
    for ctx in Context::ALL {
        if ctx == Context::Login {
            continue;
        }
        lines.push(Line::styled(format!(" {}", ctx.title()), theme.dim));
        for b in rows.iter().filter(|b| b.context == ctx) {
            let segs = vec![
                (format!("   {:<label_w$}  ", b.keys_label()), theme.key),
                (b.description.to_string(), Style::new()),
            ];
            lines.extend(wrap(&segs, width, label_w + 5));
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
    lines.push(Line::styled(
        "   /help <command> shows more on one command",
        theme.dim,
    ));
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
        Span::styled("[n", theme.unread),
        Span::styled(" @m", theme.mention),
        Span::styled("]", theme.unread),
        Span::raw(" unread, m name you  "),
        Span::styled(format!("{MUTED_MARK} "), theme.muted),
        Span::raw("muted  "),
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!("   {}", MENTION_MARK.trim_end()), theme.mention),
        Span::raw(" a message that names you  "),
        Span::styled("── new ──", theme.marker),
        Span::raw(" unread since you last looked  "),
        Span::raw("(n) members"),
    ]));
    lines.push(Line::default());
    lines.push(Line::styled("Files", theme.heading));
    lines.push(Line::raw(format!("   logs     {}", app.log_dir.display())));
    lines.push(Line::raw(format!(
        "   watched  {}",
        app.data_dir.join(super::WATCHED_FILE).display()
    )));
    lines.push(Line::raw(format!(
        "   muted    {}",
        app.data_dir.join(super::MUTED_FILE).display()
    )));
    lines
}

/// `/help <command>`: usage, description and details of one command.
pub fn topic_lines(app: &App, spec: &CommandSpec) -> Vec<Line<'static>> {
    let theme = &app.theme;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("/{} ", spec.name), theme.key),
            Span::raw(spec.args),
        ]),
        Line::default(),
        Line::raw(spec.description.to_string()),
        Line::default(),
    ];
    lines.extend(spec.details.iter().map(|d| Line::raw(d.to_string())));
    lines
}

fn help_overlay(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    scroll: u16,
    topic: Option<&'static CommandSpec>,
) {
    let theme = &app.theme;
    let boxed_w = area.width.saturating_sub(4).min(100);
    let (title, lines) = match topic {
        Some(spec) => {
            let width = usize::from(boxed_w.saturating_sub(2)).max(1);
            let lines: Vec<Line<'static>> = topic_lines(app, spec)
                .into_iter()
                .flat_map(|l| {
                    let segs: Vec<(String, Style)> = l
                        .spans
                        .iter()
                        .map(|s| (s.content.to_string(), s.style))
                        .collect();
                    wrap(&segs, width, 0)
                })
                .collect();
            (format!(" Help: /{} ", spec.name), lines)
        }
        None => (
            " Help ".to_string(),
            help_lines(app, usize::from(boxed_w.saturating_sub(2)).max(1)),
        ),
    };
    let fits = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let boxed = centered(area, boxed_w, area.height.saturating_sub(2).min(fits));
    frame.render_widget(Clear, boxed);
    let block = pane_block(theme, Line::from(title), true)
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
