//! How long one frame takes with a big session: a channel of 10,000 messages
//! and 1,000 members, on a 160x48 terminal (ratatui's `TestBackend`, so the
//! number is the messenger's own work: layout, wrapping, styling, diffing
//! the buffer, without the terminal's IO).
//!
//! Run: `cargo bench --bench render` (divan prints min / median / mean).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use divan::Bencher;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rtm::tui::fixtures::{NOW, channel_message, join, logged_in, options};
use rtm::tui::{App, Event, render};

const MESSAGES: usize = 10_000;
const MEMBERS: usize = 1_000;
const SIZE: (u16, u16) = (160, 48);

fn main() {
    divan::main();
}

fn key(code: KeyCode, mods: KeyModifiers) -> Event {
    Event::Key(KeyEvent::new(code, mods))
}

fn message(i: usize) -> Event {
    let text = if i.is_multiple_of(7) {
        format!(
            "message {i}: a longer line that wraps on a narrow screen, mentioning alice now and then, with some more words to wrap"
        )
    } else {
        format!("message {i}")
    };
    let from = format!("user{}", i % MEMBERS);
    channel_message("big", &from, &text, NOW + i as u64 * 1000)
}

/// alice in #big: 10,000 messages from 1,000 members.
fn big_app() -> App {
    let mut app = logged_in(options(None));
    app.update(Event::Resize(SIZE.0, SIZE.1));
    let members: Vec<String> = (0..MEMBERS).map(|i| format!("user{i}")).collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    join(&mut app, "big", &members);
    for i in 0..MESSAGES {
        app.update(message(i));
    }
    app
}

fn draw(bencher: Bencher, app: &App) {
    let mut terminal = Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).unwrap();
    bencher.bench_local(|| {
        terminal.draw(|f| render(divan::black_box(app), f)).unwrap();
    });
}

/// The usual frame: following the newest messages.
#[divan::bench]
fn frame_at_the_bottom(bencher: Bencher) {
    draw(bencher, &big_app());
}

/// Scrolled to the middle of the 10,000 messages.
#[divan::bench]
fn frame_scrolled_to_the_middle(bencher: Bencher) {
    let mut app = big_app();
    app.update(key(KeyCode::Char('f'), KeyModifiers::CONTROL));
    for c in "message 5000".chars() {
        app.update(key(KeyCode::Char(c), KeyModifiers::NONE));
    }
    app.update(key(KeyCode::Esc, KeyModifiers::NONE));
    app.update(key(KeyCode::Esc, KeyModifiers::NONE));
    draw(bencher, &app);
}

/// The oldest page (Ctrl-Home): as cheap as the newest.
#[divan::bench]
fn frame_at_the_top(bencher: Bencher) {
    let mut app = big_app();
    app.update(key(KeyCode::Home, KeyModifiers::CONTROL));
    draw(bencher, &app);
}

/// A search for a word in every seventh message, its hits highlighted.
#[divan::bench]
fn frame_with_search_hits(bencher: Bencher) {
    let mut app = big_app();
    app.update(key(KeyCode::Char('f'), KeyModifiers::CONTROL));
    for c in "alice".chars() {
        app.update(key(KeyCode::Char(c), KeyModifiers::NONE));
    }
    draw(bencher, &app);
}

/// One incoming message applied (no drawing): what a burst costs per message.
#[divan::bench]
fn update_one_incoming_message(bencher: Bencher) {
    let mut app = big_app();
    let mut i = MESSAGES;
    bencher.bench_local(|| {
        i += 1;
        app.update(message(i))
    });
}

/// Page Up through the 10,000 messages: the cost of a keypress while scrolling.
#[divan::bench]
fn page_up(bencher: Bencher) {
    let mut app = big_app();
    bencher.bench_local(|| app.update(key(KeyCode::PageUp, KeyModifiers::NONE)));
}
