//! Snapshots of the messenger's screens, drawn with ratatui's `TestBackend`
//! from a deterministic state built through `App::update` (fixed clock and
//! timestamps). Review changes with `cargo insta review` or by reading the
//! `.snap` files: they are the screens a user sees.

use std::cell::Cell;
use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use rtm::client::{
    ChannelAttribute, ChannelEvent, ClientEvent, ErrorBody, ErrorKind, MessageProps,
    PeerMessageSendResult, PeerOnlineState, RtmError, RtmMessage,
};
use rtm::tui::fixtures::{MINUTE, NOW, ch, channel_message, join, key, type_line, uid};
use rtm::tui::theme::Theme;
use rtm::tui::{App, ChatOptions, Command, CommandResult, Event, UiConfig, fixtures, render};

thread_local! {
    /// The app's clock in these tests: per thread, because tests run in parallel.
    static CLOCK: Cell<u64> = const { Cell::new(NOW) };
}

fn clock() -> u64 {
    CLOCK.with(Cell::get)
}

/// Moves the clock to `minutes` after NOW and returns that time.
fn at(minutes: u64) -> u64 {
    let t = NOW + minutes * MINUTE;
    CLOCK.with(|c| c.set(t));
    t
}

fn options(embedded: bool) -> ChatOptions {
    let mut opts = fixtures::options(None);
    opts.embedded_server = embedded.then(|| "embedded server on 127.0.0.1:7420".to_string());
    opts
}

fn result(app: &mut App, r: CommandResult) {
    app.update(Event::CommandResult(r));
}

fn rtm(app: &mut App, ev: ClientEvent) {
    app.update(Event::Rtm(ev));
}

/// A lived-in session: alice in #general and #rust, talking with bob,
/// watching bob and carol, with channel and user attributes. The clock moves
/// forward event by event, so the timestamps read like a real morning.
fn busy_app(w: u16, h: u16, embedded: bool) -> App {
    at(0);
    let mut app = fixtures::logged_in(options(embedded));
    app.set_clock(clock);
    type_line(&mut app, "/watch bob carol");
    rtm(
        &mut app,
        ClientEvent::PeersOnlineStatusChanged(BTreeMap::from([
            (uid("bob"), PeerOnlineState::Online),
            (uid("carol"), PeerOnlineState::Offline),
        ])),
    );
    at(1);
    for name in ["rust", "general"] {
        join(&mut app, name, &["alice", "bob", "erin"]);
    }
    // An offline message from dave, stored while we were away (a channel is open,
    // so it counts as unread).
    rtm(
        &mut app,
        ClientEvent::MessageFromPeer {
            message: RtmMessage::text("ping me when you are back"),
            peer_id: uid("dave"),
            props: MessageProps {
                server_received_ts: NOW - 90 * MINUTE,
                is_offline_message: true,
                message_id: None,
            },
        },
    );
    result(
        &mut app,
        CommandResult::ChannelAttributes {
            channel: ch("general"),
            keys: None,
            explicit: false,
            result: Ok(vec![
                ChannelAttribute {
                    key: "topic".into(),
                    value: "Release 0.2 planning — see the tracker for the full list".into(),
                    last_update_user_id: uid("bob"),
                    last_update_ts: NOW - 30 * MINUTE,
                },
                ChannelAttribute {
                    key: "rules".into(),
                    value: "be kind".into(),
                    last_update_user_id: uid("erin"),
                    last_update_ts: NOW - 300 * MINUTE,
                },
            ]),
        },
    );
    result(
        &mut app,
        CommandResult::UserAttrWritten {
            op: rtm::tui::commands::AttrWrite::Put(BTreeMap::from([(
                "mood".to_string(),
                "focused".to_string(),
            )])),
            result: Ok(()),
        },
    );
    let t = at(3);
    app.update(channel_message("general", "bob", "morning all", t));
    let t = at(5);
    app.update(channel_message("general", "erin", "did anyone look at the reconnect bug? it only shows up when the laptop sleeps for more than thirty seconds", t));
    // Our reply, acknowledged by the server.
    let t = at(7);
    let out = type_line(
        &mut app,
        "yes: the heartbeat timer kept running; fix is up for review",
    );
    let Some(Command::SendChannel { id, .. }) = out.first() else {
        panic!("expected a channel send, got {out:?}");
    };
    result(
        &mut app,
        CommandResult::ChannelMessageSent {
            channel: ch("general"),
            id: *id,
            result: Ok(t),
        },
    );
    at(8);
    rtm(
        &mut app,
        ClientEvent::Channel {
            channel_id: ch("general"),
            event: ChannelEvent::MemberJoined(uid("frank")),
        },
    );
    let t = at(9);
    app.update(channel_message("general", "frank", "hi! 👋", t));
    // Unread elsewhere, one of them naming us; and dave muted.
    let t = at(10);
    app.update(channel_message("rust", "bob", "borrowck strikes again", t));
    app.update(channel_message(
        "rust",
        "bob",
        "@alice you wrote this one, any idea?",
        t,
    ));
    type_line(&mut app, "/mute dave");
    let t = at(11);
    rtm(
        &mut app,
        ClientEvent::MessageFromPeer {
            message: RtmMessage::text("lunch?"),
            peer_id: uid("bob"),
            props: MessageProps {
                server_received_ts: t,
                is_offline_message: false,
                message_id: None,
            },
        },
    );
    // A message to carol, who is offline: stored for later.
    let t = at(12);
    let out = type_line(&mut app, "/msg carol see you tomorrow");
    let id = out
        .iter()
        .find_map(|c| match c {
            Command::SendPeer { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap();
    result(
        &mut app,
        CommandResult::PeerMessageSent {
            peer: uid("carol"),
            id,
            result: Ok(PeerMessageSendResult {
                has_peer_received: false,
                cached: true,
                server_received_ts: t,
            }),
        },
    );
    // Back to #general through the Channels pane, and a half-typed message.
    app.update(key(KeyCode::BackTab));
    app.update(key(KeyCode::BackTab));
    app.update(key(KeyCode::Enter));
    for c in "sounds good, merging after l".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    // The state was built on a large screen; now the size under test.
    app.update(Event::Resize(w, h));
    app
}

/// The buffer as text, one line per row, trailing spaces trimmed.
fn screen(app: &App, w: u16, h: u16) -> String {
    fixtures::screen_rows(app, w, h)
        .iter()
        .map(|line| format!("{}\n", line.trim_end()))
        .collect()
}

#[test]
fn main_screen_80x24() {
    let app = busy_app(80, 24, false);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn main_screen_160x48() {
    let app = busy_app(160, 48, true);
    insta::assert_snapshot!(screen(&app, 160, 48));
}

#[test]
fn login_screen_with_an_error() {
    let mut app = App::with_login_hint(&options(false), Some("alice".into()));
    app.set_clock(|| NOW);
    app.update(Event::Resize(80, 24));
    app.update(key(KeyCode::Enter));
    result(
        &mut app,
        CommandResult::LoggedIn {
            uid: uid("alice"),
            result: Err(RtmError::Connect {
                url: "ws://127.0.0.1:7420".into(),
                reason: "Connection refused (os error 111)".into(),
            }),
        },
    );
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn login_screen_rejects_a_bad_uid_in_words() {
    let mut app = App::with_login_hint(&options(true), Some("al/ce".into()));
    app.update(Event::Resize(80, 24));
    app.update(key(KeyCode::Enter));
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn help_overlay() {
    let mut app = busy_app(100, 70, false);
    app.update(key(KeyCode::F(1)));
    insta::assert_snapshot!(screen(&app, 100, 70));
}

#[test]
fn tiny_terminal_20x5() {
    let app = busy_app(20, 5, false);
    insta::assert_snapshot!(screen(&app, 20, 5));
}

#[test]
fn error_from_the_sdk_in_the_status_bar() {
    let mut app = busy_app(100, 12, false);
    result(
        &mut app,
        CommandResult::ChannelAttrWritten {
            channel: ch("general"),
            op: rtm::tui::commands::AttrWrite::Clear,
            notify: true,
            result: Err(RtmError::Server(ErrorBody::new(
                ErrorKind::TooOften,
                "channel attribute writes are limited to 10 per 5 s; wait a moment",
            ))),
        },
    );
    insta::assert_snapshot!(screen(&app, 100, 12));
}

#[test]
fn marks_and_focus_use_the_theme_colours() {
    let mut app = busy_app(160, 48, false);
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    terminal.draw(|f| render(&app, f)).unwrap();
    let buf = terminal.backend().buffer().clone();
    let find = |sym: &str| {
        (0..48u16)
            .flat_map(|y| (0..160u16).map(move |x| (x, y)))
            .find(|&(x, y)| buf[(x, y)].symbol() == sym)
            .unwrap_or_else(|| panic!("{sym} not on screen"))
    };
    assert_eq!(buf[find("●")].fg, Color::Green);
    assert_eq!(buf[find("○")].fg, Color::DarkGray);
    // The input pane is focused: its corner is drawn in the focus colour.
    let l = app.layout();
    assert_eq!(buf[(l.input.x, l.input.y)].fg, Color::Cyan);
    assert_eq!(buf[(0, 0)].fg, Color::DarkGray);
    // Focus the Peers pane (Shift-Tab: with text in the input, Tab completes).
    app.update(key(KeyCode::BackTab));
    app.update(key(KeyCode::BackTab));
    app.update(key(KeyCode::BackTab));
    terminal.draw(|f| render(&app, f)).unwrap();
    assert_eq!(terminal.backend().buffer()[(0, 0)].fg, Color::Cyan);
}

/// The buffer as text, then its styles: per row, the runs whose style is not
/// the default, as `x..x fg bg modifiers`. Colours are what tells dark from
/// light, so they belong in the snapshot.
fn styled_screen(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| render(app, f)).unwrap();
    let buf = terminal.backend().buffer().clone();
    let mut out = screen(app, w, h);
    out.push_str("-- styles --\n");
    for y in 0..h {
        let mut runs: Vec<(u16, u16, String)> = Vec::new();
        for x in 0..w {
            let c = &buf[(x, y)];
            let style = format!("{:?} {:?} {:?}", c.fg, c.bg, c.modifier);
            if style == "Reset Reset NONE" {
                continue;
            }
            match runs.last_mut() {
                Some((_, end, s)) if *end + 1 == x && *s == style => *end = x,
                _ => runs.push((x, x, style)),
            }
        }
        if runs.is_empty() {
            continue;
        }
        let runs: Vec<String> = runs
            .into_iter()
            .map(|(a, b, s)| format!("{a}..{b} {s}"))
            .collect();
        out.push_str(&format!("{y:>2}: {}\n", runs.join(" | ")));
    }
    out
}

fn themed(app: &mut App, theme: &str) {
    app.configure(UiConfig {
        theme: Theme::builtin(theme).unwrap(),
        ..UiConfig::default()
    });
}

/// Every screen and overlay, in both built-in themes, at the three sizes the
/// messenger must handle: roomy, standard and tiny.
#[test]
fn every_screen_in_both_themes_at_three_sizes() {
    let sizes = [(160u16, 48u16), (80, 24), (20, 5)];
    for theme in ["dark", "light"] {
        for (w, h) in sizes {
            let mut main = busy_app(w, h, false);
            themed(&mut main, theme);
            insta::assert_snapshot!(format!("main_{theme}_{w}x{h}"), styled_screen(&main, w, h));

            let mut help = busy_app(w, h, false);
            themed(&mut help, theme);
            help.update(key(KeyCode::F(1)));
            insta::assert_snapshot!(format!("help_{theme}_{w}x{h}"), styled_screen(&help, w, h));

            let mut topic = busy_app(w, h, false);
            themed(&mut topic, theme);
            topic.update(Event::Key(KeyEvent::new(
                KeyCode::Char('u'),
                KeyModifiers::CONTROL,
            )));
            type_line(&mut topic, "/help cattr");
            insta::assert_snapshot!(
                format!("help_topic_{theme}_{w}x{h}"),
                styled_screen(&topic, w, h)
            );

            // A search as it is typed: hits marked, the current one stronger.
            let mut search = busy_app(w, h, false);
            themed(&mut search, theme);
            search.update(Event::Key(KeyEvent::new(
                KeyCode::Char('f'),
                KeyModifiers::CONTROL,
            )));
            for c in "the".chars() {
                search.update(key(KeyCode::Char(c)));
            }
            insta::assert_snapshot!(
                format!("search_{theme}_{w}x{h}"),
                styled_screen(&search, w, h)
            );

            // #rust opened with Alt-A: the "new" line and the mention.
            let mut unread = busy_app(w, h, false);
            themed(&mut unread, theme);
            unread.update(Event::Key(KeyEvent::new(
                KeyCode::Char('a'),
                KeyModifiers::ALT,
            )));
            insta::assert_snapshot!(
                format!("unread_{theme}_{w}x{h}"),
                styled_screen(&unread, w, h)
            );

            let mut login = App::with_login_hint(&options(true), Some("al/ce".into()));
            themed(&mut login, theme);
            login.update(Event::Resize(w, h));
            login.update(key(KeyCode::Enter));
            insta::assert_snapshot!(
                format!("login_{theme}_{w}x{h}"),
                styled_screen(&login, w, h)
            );
        }
    }
}

/// With NO_COLOR the state still reads: marks and words, no colour at all.
#[test]
fn no_color_keeps_the_marks() {
    let mut app = busy_app(100, 24, false);
    app.configure(UiConfig {
        theme: Theme::default().without_colour(),
        ..UiConfig::default()
    });
    let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
    terminal.draw(|f| render(&app, f)).unwrap();
    let buf = terminal.backend().buffer();
    for y in 0..24u16 {
        for x in 0..100u16 {
            assert_eq!(buf[(x, y)].fg, Color::Reset, "colour at {x},{y}");
            assert_eq!(buf[(x, y)].bg, Color::Reset, "colour at {x},{y}");
        }
    }
    let text = screen(&app, 100, 24);
    assert!(
        text.contains("[2 @1]") && text.contains("⊘ dave") && text.contains("CONNECTED"),
        "{text}"
    );
}

/// Scrolled up while messages arrive: the view stays, a hint says so.
#[test]
fn new_messages_below_hint() {
    let mut app = busy_app(80, 24, false);
    for i in 0..30 {
        let t = at(20 + i);
        app.update(channel_message(
            "general",
            "erin",
            &format!("status line {i}"),
            t,
        ));
    }
    app.update(key(KeyCode::PageUp));
    let t = at(60);
    app.update(channel_message("general", "bob", "did you see this?", t));
    insta::assert_snapshot!(screen(&app, 80, 24));
    // The hint names the key that works where the focus is: in the input
    // End moves the cursor, so Ctrl-End; in the conversation pane its End.
    let text = screen(&app, 80, 24);
    assert!(text.contains("below · Ctrl-End"), "{text}");
    // Shift-Tab: the input holds text, where Tab would complete.
    app.update(Event::Key(KeyEvent::new(
        KeyCode::BackTab,
        KeyModifiers::SHIFT,
    )));
    assert_eq!(app.focus(), rtm::tui::Focus::Conversation);
    let text = screen(&app, 80, 24);
    assert!(text.contains("below · End"), "{text}");
}

/// Issue 16: the right column at 80x24, by /members and /attrs (over the
/// screen) and by the side-panes key; and the same at a wide size.
fn with_attributes(w: u16, h: u16) -> App {
    let mut app = busy_app(w, h, false);
    let t = at(13);
    result(
        &mut app,
        CommandResult::ChannelAttributes {
            channel: ch("general"),
            keys: None,
            explicit: false,
            result: Ok(vec![
                ChannelAttribute {
                    key: "rules".into(),
                    value: "be kind; no spoilers before Friday; links to the release notes go in the topic, not in the channel, please".into(),
                    last_update_user_id: uid("erin"),
                    last_update_ts: NOW,
                },
                ChannelAttribute {
                    key: "topic".into(),
                    value: "release 0.2 on Friday".into(),
                    last_update_user_id: uid("bob"),
                    last_update_ts: t,
                },
            ]),
        },
    );
    at(16);
    app.update(Event::Tick);
    app
}

#[test]
fn members_and_attributes_overlays_at_80x24_and_160x48() {
    for (command, name) in [
        ("/members", "members_overlay"),
        ("/attrs", "attributes_overlay"),
    ] {
        for (w, h) in [(80, 24), (160, 48)] {
            let mut app = with_attributes(w, h);
            // Clear the half-typed message first (Ctrl-U), then the command.
            app.update(Event::Key(KeyEvent::new(
                KeyCode::Char('u'),
                KeyModifiers::CONTROL,
            )));
            type_line(&mut app, command);
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(&app, w, h));
        }
    }
}

#[test]
fn side_panes_shown_at_80x24_and_hidden_at_160x48() {
    let mut app = with_attributes(80, 24);
    app.update(key(KeyCode::F(3)));
    insta::assert_snapshot!("side_panes_shown_80x24", screen(&app, 80, 24));
    let mut app = with_attributes(160, 48);
    app.update(key(KeyCode::F(3)));
    insta::assert_snapshot!("side_panes_hidden_160x48", screen(&app, 160, 48));
}

/// Issue 16: unread conversations scrolled out of a list are summed up on
/// its border, above and below.
#[test]
fn unread_out_of_view_80x24() {
    let mut app = busy_app(80, 24, false);
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('u'),
        KeyModifiers::CONTROL,
    )));
    for i in 0..14 {
        join(&mut app, &format!("team{i:02}"), &["alice", "bob"]);
    }
    // #team08 is open: the list keeps it in view, #general scrolls out
    // above, #team09 … #team13 below.
    type_line(&mut app, "/join team08");
    for (i, name) in ["team12", "general", "team13"].iter().enumerate() {
        let t = at(30 + i as u64);
        app.update(channel_message(name, "bob", "news", t));
    }
    insta::assert_snapshot!(screen(&app, 80, 24));
}

/// The busy session while bob rings us (13 s after his call came) and our
/// own call to carol rings her phone.
fn ringing_app(w: u16, h: u16) -> App {
    let mut app = busy_app(160, 48, false);
    let t = at(13);
    app.update(fixtures::ctrl('u'));
    let out = type_line(&mut app, "/call carol");
    let call = out
        .iter()
        .find_map(|c| match c {
            Command::Call { call, .. } => Some(*call),
            _ => None,
        })
        .expect("a Call command");
    app.update(fixtures::outgoing_call_event(
        call,
        "carol",
        rtm::client::LocalInvitationEvent::ReceivedByPeer,
    ));
    app.update(fixtures::incoming_call(
        "bob",
        42,
        "lunch at noon? the usual place",
    ));
    CLOCK.with(|c| c.set(t + 13_000));
    app.update(Event::Tick);
    app.update(Event::Resize(w, h));
    app
}

#[test]
fn ringing_banner_at_80x24_and_160x48() {
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let app = ringing_app(w, h);
        insta::assert_snapshot!(format!("ringing_banner_{w}x{h}"), screen(&app, w, h));
    }
    // In colour, the banner stands out in the theme's ringing style.
    let mut app = ringing_app(80, 24);
    themed(&mut app, "dark");
    insta::assert_snapshot!("ringing_banner_dark_80x24", styled_screen(&app, 80, 24));
}

/// A direct conversation with files: bob's file, our upload at 40 % with
/// its bar, and bob's picture previewed from its thumbnail in half-blocks
/// (the test backend has no graphics protocol, so what any terminal
/// without one shows). The styles hold the preview's colours.
fn files_app() -> App {
    at(0);
    let mut app = fixtures::logged_in(options(false));
    app.set_clock(clock);
    type_line(&mut app, "/msg bob here is the report");
    at(1);
    app.update(fixtures::peer_rtm_message(
        "bob",
        fixtures::file_message("minutes 2023-11-14.pdf", 2_726_298, 1),
        at(1),
    ));
    at(2);
    let out = type_line(&mut app, "/file ~/slides.pdf");
    let id = out
        .iter()
        .find_map(|c| match c {
            Command::Upload { id, .. } => Some(*id),
            _ => None,
        })
        .expect("an upload");
    at(3);
    result(
        &mut app,
        CommandResult::TransferProgress {
            id,
            current: 4 * 1024 * 1024,
            total: 10 * 1024 * 1024,
        },
    );
    app.update(fixtures::peer_rtm_message(
        "bob",
        fixtures::image_message("sunset.png", 1200, 800, 2),
        at(3),
    ));
    app
}

#[test]
fn files_progress_and_an_image_preview_in_half_blocks() {
    let app = files_app();
    insta::assert_snapshot!(screen(&app, 100, 24));
    insta::assert_snapshot!(
        "files_progress_and_an_image_preview_styled",
        styled_screen(&app, 100, 24)
    );
}
