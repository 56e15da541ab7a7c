//! Issue 16 on a small terminal: /members and /attrs, the side-panes key,
//! the refresh key, attributes read when a channel is opened, and the
//! presence of members.

use super::*;

fn attr(k: &str, v: &str, by: &str, ts: u64) -> ChannelAttribute {
    ChannelAttribute {
        key: k.into(),
        value: v.into(),
        last_update_user_id: uid(by),
        last_update_ts: ts,
    }
}

fn attributes_answer(name: &str, attrs: Vec<ChannelAttribute>) -> Event {
    Event::CommandResult(CommandResult::ChannelAttributes {
        channel: ch(name),
        keys: None,
        explicit: false,
        result: Ok(attrs),
    })
}

fn small_app() -> App {
    let mut app = logged_in(options(None));
    app.update(Event::Resize(80, 24));
    app
}

fn fetches(out: &[Command]) -> usize {
    out.iter()
        .filter(|c| {
            matches!(
                c,
                Command::GetChannelAttributes {
                    explicit: false,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn members_and_attrs_open_over_a_small_screen_scroll_and_close_with_esc() {
    let mut app = small_app();
    let members: Vec<String> = (0..40).map(|i| format!("user{i:02}")).collect();
    let names: Vec<&str> = members.iter().map(String::as_str).collect();
    join(&mut app, "general", &names);
    let long = "a very long value that would be cut in one status line ".repeat(3);
    app.update(attributes_answer(
        "general",
        vec![
            attr("rules", &long, "bob", NOW - 5 * MINUTE),
            attr("topic", "launch", "carol", NOW),
        ],
    ));
    assert!(
        app.layout().members.is_none(),
        "80 columns: no right column"
    );
    // Tab never reaches a hidden pane.
    for _ in 0..8 {
        app.update(key(KeyCode::Tab));
        assert!(!matches!(app.focus(), Focus::Members | Focus::Attributes));
    }
    app.update(key(KeyCode::Esc));
    type_line(&mut app, "/members");
    assert_eq!(app.panel(), Some(Panel::Members));
    assert_eq!(app.focus(), Focus::Members);
    let screen = screen_text(&app);
    assert!(screen.contains("Members of #general (40)"), "{screen}");
    assert!(screen.contains("user00"), "{screen}");
    // PageDown moves the selection a page; the list scrolls to it.
    app.update(key(KeyCode::PageDown));
    app.update(key(KeyCode::PageDown));
    let screen = screen_text(&app);
    assert!(!screen.contains("user00"), "{screen}");
    // Tab switches to the attributes: whole values, who and when.
    app.update(key(KeyCode::Tab));
    assert_eq!(app.panel(), Some(Panel::Attributes));
    let screen = screen_text(&app);
    assert!(screen.contains("by bob at 22:08 (5 min ago)"), "{screen}");
    assert!(screen.contains("read from the server just now"), "{screen}");
    let words = screen.matches("would be cut").count();
    assert_eq!(words, 3, "the whole value shows, wrapped: {screen}");
    // Esc closes it; the conversation is back.
    app.update(key(KeyCode::Esc));
    assert_eq!(app.panel(), None);
    assert_eq!(app.focus(), Focus::Input);
    assert!(!screen_text(&app).contains("read from the server"));
    // Enter on a member opens a direct conversation and closes the panel.
    type_line(&mut app, "/members");
    app.update(key(KeyCode::Down));
    let chosen = app.members_list.selected().cloned().unwrap();
    app.update(key(KeyCode::Enter));
    assert_eq!(app.panel(), None);
    assert_eq!(app.selected(), Some(&ConvId::Peer(chosen)));
    // Without a channel open, /members says what to do.
    type_line(&mut app, "/members");
    assert!(status_error(&app).contains("no channel is open"));
}

#[test]
fn the_side_panes_key_shows_them_on_a_small_screen_and_tab_reaches_them() {
    let mut app = small_app();
    join(&mut app, "general", &["alice", "bob"]);
    app.update(key(KeyCode::F(3)));
    let l = app.layout();
    assert!(l.members.is_some() && l.attributes.is_some());
    assert!(app.status().unwrap().text.contains("F3 hides them"));
    // The Tab order: Peers, Channels, conversation, input, Members, Attributes.
    let mut order = vec![app.focus()];
    for _ in 0..6 {
        app.update(key(KeyCode::Tab));
        order.push(app.focus());
    }
    assert_eq!(
        order,
        [
            Focus::Input,
            Focus::Members,
            Focus::Attributes,
            Focus::Peers,
            Focus::Channels,
            Focus::Conversation,
            Focus::Input
        ]
    );
    assert!(screen_text(&app).contains("Members of #general"));
    // Again: hidden, the conversation takes the width; a focused side pane lets go.
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::F(3)));
    assert_eq!(app.focus(), Focus::Input);
    assert_eq!(app.layout().conversation.width, 80);
    // It is in the keymap: rebindable, and in the generated help.
    let help = crate::tui::render::help_lines(&app, 100)
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        help.contains("F3") && help.contains("show or hide the side panes"),
        "{help}"
    );
    assert!(help.contains("F5") && help.contains("Tab order"), "{help}");
}

/// Issue 16: a `/cattr put` without notification left other members'
/// panes saying "none", even after reopening the channel.
#[test]
fn attributes_are_read_when_a_channel_is_opened_and_on_the_refresh_key() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice", "bob"]);
    app.update(attributes_answer("general", vec![]));
    join(&mut app, "rust", &["alice"]);
    app.update(attributes_answer("rust", vec![]));
    // Reopening within a few seconds does not ask again ...
    let out = app.update(alt(KeyCode::Down));
    assert_eq!(app.selected(), Some(&ConvId::Channel(ch("general"))));
    assert_eq!(fetches(&out), 0);
    // ... later it does, and what comes replaces the stale "none".
    app.set_clock(|| NOW + 2 * MINUTE);
    app.update(alt(KeyCode::Down));
    let out = app.update(alt(KeyCode::Down));
    assert_eq!(fetches(&out), 1, "{out:?}");
    assert!(
        screen_text(&app).contains("read 2 min ago"),
        "{}",
        screen_text(&app)
    );
    app.update(attributes_answer(
        "general",
        vec![attr("topic", "quiet change", "bob", NOW)],
    ));
    let screen = screen_text(&app);
    assert!(screen.contains("topic = quiet change"), "{screen}");
    assert!(screen.contains("read just now"), "{screen}");
    // The age moves on with the clock, redrawn by the tick.
    app.set_clock(|| NOW + 5 * MINUTE);
    app.take_dirty();
    app.update(Event::Tick);
    assert!(app.take_dirty());
    assert!(screen_text(&app).contains("read 3 min ago"));
    // F5 reads again, members too, from the input and from the pane.
    let out = app.update(key(KeyCode::F(5)));
    assert_eq!(fetches(&out), 1);
    assert!(out.contains(&Command::GetMembers(ch("general"))));
    focus_attributes(&mut app);
    assert_eq!(fetches(&app.update(key(KeyCode::F(5)))), 1);
    // A letter is only a letter, in the pane too: it goes to the input.
    assert!(app.update(char_key('r')).is_empty());
    assert_eq!(app.input_text(), "r");
    // A failed background read keeps what is shown and says so there.
    app.update(Event::CommandResult(CommandResult::ChannelAttributes {
        channel: ch("general"),
        keys: None,
        explicit: false,
        result: Err(server_error(ErrorKind::TooOften, "too many reads")),
    }));
    let screen = screen_text(&app);
    assert!(
        screen.contains("topic = quiet change") && screen.contains("not refreshed"),
        "{screen}"
    );
}

#[test]
fn attribute_edits_tell_the_members_unless_quiet() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice"]);
    let out = type_line(&mut app, "/cattr put general topic=x");
    assert!(
        matches!(&out[..], [Command::ChannelAttrWrite { notify: true, .. }]),
        "{out:?}"
    );
    let out = type_line(&mut app, "/cattr put general topic=y --quiet");
    assert!(
        matches!(&out[..], [Command::ChannelAttrWrite { notify: false, .. }]),
        "{out:?}"
    );
    let out = type_line(&mut app, "/cattr put general topic=z --notify");
    assert!(
        matches!(&out[..], [Command::ChannelAttrWrite { notify: true, .. }]),
        "{out:?}"
    );
}

/// Issue 16: a member whose link dropped shows ◐ in the Members pane as in
/// the Peers pane: members' presence is subscribed to.
#[test]
fn an_unreachable_member_shows_the_same_mark_in_both_panes() {
    let mut app = logged_in(options(None));
    type_line(&mut app, "/watch bob");
    let out = join(&mut app, "general", &["alice", "bob", "carol"]);
    assert!(
        out.contains(&Command::Subscribe(vec![uid("carol")])),
        "{out:?}"
    );
    let out = app.update(channel_event(
        "general",
        ChannelEvent::MemberJoined(uid("dave")),
    ));
    assert!(
        out.contains(&Command::Subscribe(vec![uid("dave")])),
        "{out:?}"
    );
    app.update(Event::Rtm(ClientEvent::PeersOnlineStatusChanged(
        BTreeMap::from([
            (uid("bob"), PeerOnlineState::Unreachable),
            (uid("carol"), PeerOnlineState::Unreachable),
        ]),
    )));
    let screen = screen_text(&app);
    assert!(screen.contains("│◐ bob"), "Peers: {screen}");
    let members: Vec<&str> = screen
        .lines()
        .filter_map(|l| l.rsplit('│').nth(1))
        .filter(|cell| cell.contains("bob") || cell.contains("carol"))
        .collect();
    assert!(
        members.iter().any(|c| c.starts_with("◐ bob")),
        "{members:?}"
    );
    assert!(
        members.iter().any(|c| c.starts_with("◐ carol")),
        "{members:?}"
    );
}

/// Following members is the app's own doing: a refused subscription (the
/// server's 10 per 5 s) is not an error for the user and is tried again
/// with the next member list; a refused /watch is.
#[test]
fn a_refused_member_subscription_is_retried_quietly() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice", "bob"]);
    app.update(Event::CommandResult(CommandResult::Subscribed {
        peers: vec![uid("bob")],
        result: Err(server_error(ErrorKind::TooOften, "too often")),
    }));
    assert!(app.status().is_none_or(|s| s.kind != StatusKind::Error));
    let out = app.update(key(KeyCode::F(5)));
    assert!(out.contains(&Command::GetMembers(ch("general"))));
    let out = app.update(Event::CommandResult(CommandResult::Members {
        channel: ch("general"),
        result: Ok(vec![uid("alice"), uid("bob")]),
    }));
    assert_eq!(out, [Command::Subscribe(vec![uid("bob")])]);
    type_line(&mut app, "/watch carol");
    app.update(Event::CommandResult(CommandResult::Subscribed {
        peers: vec![uid("carol")],
        result: Err(server_error(ErrorKind::TooOften, "too often")),
    }));
    assert!(status_error(&app).contains("cannot watch carol"));
}
