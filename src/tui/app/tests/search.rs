//! Searching, moving between conversations, rebound keys.

use super::*;

#[test]
fn search_finds_steps_and_restores_the_view() {
    let mut app = logged_in(options(None));
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    for i in 0..300 {
        let text = if i % 100 == 7 {
            format!("needle {i}")
        } else {
            format!("hay {i}")
        };
        app.update(peer_message("bob", &text, NOW - MINUTE, false));
    }
    app.update(ctrl('f'));
    for c in "NEEDLE".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    let search = app.search_state().unwrap();
    assert_eq!(search.hits.len(), 3);
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.ends_with("needle 207"))
    );
    assert!(screen_text(&app).contains("match 3/3"));
    // Enter keeps it; n steps older, N newer, in the conversation pane.
    app.update(key(KeyCode::Enter));
    assert_eq!(app.focus(), Focus::Conversation);
    app.update(key(KeyCode::Char('n')));
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.ends_with("needle 107"))
    );
    app.update(key(KeyCode::Char('n')));
    app.update(key(KeyCode::Char('n')));
    assert!(app.status().unwrap().text.contains("oldest match"));
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('N'),
        KeyModifiers::SHIFT,
    )));
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.ends_with("needle 107"))
    );
    // Esc ends it; the view stays where the hit was.
    app.update(key(KeyCode::Esc));
    assert!(app.search_state().is_none());
    // Typing a search and Esc goes back to where you were.
    app.update(key(KeyCode::End));
    app.update(ctrl('f'));
    app.update(key(KeyCode::Char('h')));
    app.update(key(KeyCode::Esc));
    assert_eq!(bob_conv(&app).scroll, Scroll::Bottom);
    // /search with no match says so (Esc first: back to the input).
    app.update(key(KeyCode::Esc));
    assert_eq!(app.focus(), Focus::Input);
    type_line(&mut app, "/search zebra");
    assert!(app.search_state().is_none());
    assert!(app.status().unwrap().text.contains("no match"));
    type_line(&mut app, "/search hay 29");
    assert_eq!(app.search_state().unwrap().hits.len(), 11);
}

#[test]
fn next_and_previous_conversation_and_clear() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice"]);
    app.update(peer_message("bob", "hi", NOW - MINUTE, false));
    app.update(alt(KeyCode::Down));
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("bob"))));
    app.update(alt(KeyCode::Up));
    assert_eq!(app.selected(), Some(&ConvId::Channel(ch("general"))));
    type_line(&mut app, "/clear");
    assert!(
        app.conversation(&ConvId::Channel(ch("general")))
            .unwrap()
            .entries
            .is_empty()
    );
}

#[test]
fn rebound_keys_drive_the_app_and_the_help() {
    let mut app = logged_in(options(None));
    let mut file = crate::config::KeyBindingsFile::new();
    file.entry("global".into())
        .or_default()
        .insert("help".into(), crate::config::KeyList::One("f2".into()));
    let ui = crate::tui::UiConfig {
        keymap: crate::tui::keymap::Keymap::with_overrides(&file).unwrap(),
        ..Default::default()
    };
    app.configure(ui);
    app.update(key(KeyCode::F(1)));
    assert!(!app.help_open());
    app.update(key(KeyCode::F(2)));
    assert!(app.help_open());
    assert!(screen_text(&app).contains("F2"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Random keys, pastes, clicks, messages and sizes never panic, and every
    /// state renders at the size it was given.
    #[test]
    fn random_input_and_sizes_never_panic(
        steps in proptest::collection::vec((0u8..40, 0u16..170, 0u16..56), 1..60)
    ) {
        let mut app = logged_in(options(None));
        join(&mut app, "general", &["alice", "bob"]);
        app.update(peer_message("bob", "hello alice", NOW - MINUTE, false));
        let codes = [
            KeyCode::Tab, KeyCode::BackTab, KeyCode::Enter, KeyCode::Esc, KeyCode::Up,
            KeyCode::Down, KeyCode::Left, KeyCode::Right, KeyCode::Home, KeyCode::End,
            KeyCode::PageUp, KeyCode::PageDown, KeyCode::Backspace, KeyCode::Delete,
            KeyCode::F(1), KeyCode::Char('?'), KeyCode::Char('/'), KeyCode::Char('n'),
            KeyCode::Char('N'), KeyCode::Char('a'), KeyCode::Char('#'), KeyCode::Char('日'),
        ];
        let mods = [KeyModifiers::NONE, KeyModifiers::ALT, KeyModifiers::SHIFT];
        for (op, a, b) in steps {
            let op = usize::from(op);
            let ev = match op {
                0 => Event::Resize(a, b),
                1 => Event::Paste(format!("p{a}\nq{b}")),
                2 => Event::Mouse(MouseEvent {
                    kind: if a % 2 == 0 { MouseEventKind::ScrollUp } else { MouseEventKind::Down(crossterm::event::MouseButton::Left) },
                    column: a,
                    row: b,
                    modifiers: KeyModifiers::NONE,
                }),
                3 => channel_message("general", "bob", &"alice word ".repeat(usize::from(b % 30)), NOW),
                4 => peer_message("bob", &format!("msg {a}"), NOW - MINUTE, false),
                5 => Event::Key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL)),
                _ => Event::Key(KeyEvent::new(codes[(op + usize::from(a)) % codes.len()], mods[usize::from(b) % 3])),
            };
            let out = app.update(ev);
            proptest::prop_assert!(!out.contains(&Command::Quit) || app.quitting());
            let (w, h) = app.size;
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            terminal.draw(|f| render(&app, f)).unwrap();
        }
    }
}
