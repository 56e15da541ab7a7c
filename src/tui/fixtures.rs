//! Messenger states for tests and benchmarks: the unit tests, the snapshot
//! tests (`tests/tui_snapshots.rs`) and the render benchmark
//! (`benches/render.rs`) build their sessions from here, so that a change to
//! login or joining is made once. In the library (hidden from the docs)
//! because integration tests and benches only see the public crate.
//!
//! The builders panic on bad input: they only ever get the literals of a test.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{App, CallEvent, ChatOptions, Command, CommandResult, Event, render};
use crate::client::{
    ChannelEvent, ChannelId, ClientEvent, LocalInvitationEvent, LoginInfo, MessageProps,
    RemoteInvitationEvent, RtmMessage, Uid,
};
use crate::config::{ClientSettings, Paths};

/// The fixed clock of the fixtures: 2023-11-14 22:13:20 UTC.
pub const NOW: u64 = 1_700_000_000_000;
pub const MINUTE: u64 = 60_000;

/// Settings with the local history off (no state here touches the disk),
/// and `uid` as the configured one; times are shown in UTC from then on.
pub fn options(uid: Option<&str>) -> ChatOptions {
    // The same screens on every machine, whatever its time zone.
    crate::tui::conversation::show_times_in_utc();
    let dir = PathBuf::from("/nonexistent/rtm-test");
    ChatOptions {
        settings: ClientSettings {
            uid: uid.map(str::to_string),
            history: false,
            ..ClientSettings::built_in(Paths {
                config_dir: dir.clone(),
                data_dir: dir.clone(),
                log_dir: dir.join("logs"),
            })
        },
        embedded_server: None,
        takeover: None,
        log_dir: dir.join("logs"),
    }
}

pub fn uid(s: &str) -> Uid {
    Uid::new(s).unwrap_or_else(|e| panic!("fixture uid {s:?}: {e}"))
}

pub fn ch(s: &str) -> ChannelId {
    ChannelId::new(s).unwrap_or_else(|e| panic!("fixture channel {s:?}: {e}"))
}

pub fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn alt(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::ALT))
}

/// Types `text` key by key, then Enter; returns every command produced.
pub fn type_line(app: &mut App, text: &str) -> Vec<Command> {
    let mut out = Vec::new();
    for c in text.chars() {
        out.extend(app.update(key(KeyCode::Char(c))));
    }
    out.extend(app.update(key(KeyCode::Enter)));
    out
}

/// `alice` logged in (development server) on a 160x48 terminal, the clock
/// fixed at [`NOW`].
pub fn logged_in(opts: ChatOptions) -> App {
    let mut app = App::with_login_hint(&opts, Some("alice".into()));
    app.set_clock(|| NOW);
    app.update(Event::Resize(160, 48));
    app.update(login_answer("alice"));
    app
}

/// The executor's answer to a successful login as `name` (development server).
pub fn login_answer(name: &str) -> Event {
    Event::CommandResult(CommandResult::LoggedIn {
        uid: uid(name),
        result: Ok(LoginInfo {
            uid: uid(name),
            server_ts: NOW,
            dev_mode: true,
            token_expires_in_s: None,
            resumed: false,
        }),
    })
}

/// Joins `name` with `members`, answered as the executor would.
pub fn join(app: &mut App, name: &str, members: &[&str]) -> Vec<Command> {
    let mut out = type_line(app, &format!("/join {name}"));
    out.extend(app.update(Event::CommandResult(CommandResult::Joined {
        channel: ch(name),
        result: Ok(u32::try_from(members.len()).unwrap_or(u32::MAX)),
    })));
    out.extend(app.update(Event::CommandResult(CommandResult::Members {
        channel: ch(name),
        result: Ok(members.iter().map(|m| uid(m)).collect()),
    })));
    out
}

pub fn peer_message(from: &str, text: &str, ts: u64, offline: bool) -> Event {
    Event::Rtm(ClientEvent::MessageFromPeer {
        message: RtmMessage::text(text),
        peer_id: uid(from),
        props: MessageProps {
            server_received_ts: ts,
            is_offline_message: offline,
            message_id: None,
        },
    })
}

pub fn channel_event(name: &str, event: ChannelEvent) -> Event {
    Event::Rtm(ClientEvent::Channel {
        channel_id: ch(name),
        event,
    })
}

pub fn channel_message(name: &str, from: &str, text: &str, ts: u64) -> Event {
    channel_event(
        name,
        ChannelEvent::ChannelMessage {
            message: RtmMessage::text(text),
            member_id: uid(from),
            props: MessageProps {
                server_received_ts: ts,
                is_offline_message: false,
                message_id: None,
            },
        },
    )
}

/// `caller` rings us with `content`, as the event loop hands it to the app:
/// 60 s before the server expires it.
pub fn incoming_call(caller: &str, id: u64, content: &str) -> Event {
    Event::Call(CallEvent::Ringing {
        caller: uid(caller),
        id,
        content: content.to_string(),
        channel: None,
        expires_in_ms: 60_000,
    })
}

/// What became of the call `id` from `caller` (our answer's text, if any).
pub fn incoming_call_event(
    caller: &str,
    id: u64,
    response: Option<&str>,
    event: RemoteInvitationEvent,
) -> Event {
    Event::Call(CallEvent::Incoming {
        caller: uid(caller),
        id,
        response: response.map(str::to_string),
        event,
    })
}

/// What became of our call `call` (the app's id) to `callee`.
pub fn outgoing_call_event(call: u64, callee: &str, event: LocalInvitationEvent) -> Event {
    Event::Call(CallEvent::Outgoing {
        call,
        callee: uid(callee),
        event,
    })
}

/// Draws `app` on a `w`x`h` test terminal; the rows of the screen as text.
pub fn screen_rows(app: &App, w: u16, h: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(w, h))
        .unwrap_or_else(|e| panic!("a test terminal cannot fail: {e}"));
    terminal
        .draw(|f| render(app, f))
        .unwrap_or_else(|e| panic!("a test terminal cannot fail: {e}"));
    let buf = terminal.backend().buffer();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect())
        .collect()
}

/// A media id as the server makes them (32 hex digits), from a small number.
pub fn media_id(n: u32) -> String {
    format!("{n:032x}")
}

/// A FILE message.
pub fn file_message(name: &str, size: u64, n: u32) -> RtmMessage {
    RtmMessage::File {
        media_id: media_id(n),
        size,
        file_name: name.to_string(),
        description: String::new(),
        thumbnail: Vec::new(),
    }
}

/// A picture of `w` x `h` pixels as PNG bytes: a fixed pattern (a colour
/// gradient with a dark disc), the same on every run.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (cx, cy) = (i64::from(w) / 2, i64::from(h) / 2);
        let (dx, dy) = (i64::from(x) - cx, i64::from(y) - cy);
        let r = i64::from(w.min(h)) / 4;
        if dx * dx + dy * dy < r * r {
            image::Rgb([20, 20, 40])
        } else {
            image::Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 160])
        }
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("encoding a test picture cannot fail: {e}"));
    out
}

/// An IMAGE message of a `w` x `h` picture with a 64-pixel-wide thumbnail.
pub fn image_message(name: &str, w: u32, h: u32, n: u32) -> RtmMessage {
    let (tw, th) = (64, (64 * h / w.max(1)).max(1));
    RtmMessage::Image {
        media_id: media_id(n),
        size: u64::from(w) * u64::from(h),
        file_name: name.to_string(),
        description: String::new(),
        thumbnail: png(tw, th),
        width: w,
        height: h,
        thumbnail_width: tw,
        thumbnail_height: th,
    }
}

/// A message of any kind from `from`, at `ts`.
pub fn peer_rtm_message(from: &str, message: RtmMessage, ts: u64) -> Event {
    Event::Rtm(ClientEvent::MessageFromPeer {
        message,
        peer_id: uid(from),
        props: MessageProps {
            server_received_ts: ts,
            is_offline_message: false,
            message_id: None,
        },
    })
}
