//! Slash commands, errors in words, the help overlay.

use super::*;

#[test]
fn slash_commands_parse_to_commands() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice"]);
    let cases: Vec<(&str, Vec<Command>)> = vec![
        ("/join lobby", vec![Command::Join(ch("lobby"))]),
        ("/leave", vec![Command::Leave(ch("general"))]),
        ("/leave #general", vec![Command::Leave(ch("general"))]),
        (
            "/watch bob carol",
            vec![
                Command::Subscribe(vec![uid("bob"), uid("carol")]),
                Command::SaveWatched(vec![uid("bob"), uid("carol")]),
            ],
        ),
        (
            "/unwatch bob",
            vec![
                Command::Unsubscribe(vec![uid("bob")]),
                Command::SaveWatched(vec![uid("carol")]),
            ],
        ),
        (
            "/status bob dave",
            vec![Command::QueryStatus(vec![uid("bob"), uid("dave")])],
        ),
        (
            "/attr put mood=happy",
            vec![Command::UserAttrWrite(AttrWrite::Put(BTreeMap::from([(
                "mood".to_string(),
                "happy".to_string(),
            )])))],
        ),
        (
            "/attr clear",
            vec![Command::UserAttrWrite(AttrWrite::Clear)],
        ),
        (
            "/attr del mood city",
            vec![Command::UserAttrWrite(AttrWrite::Delete(vec![
                "mood".into(),
                "city".into(),
            ]))],
        ),
        (
            "/attr get bob mood",
            vec![Command::GetUserAttributes {
                uid: uid("bob"),
                keys: Some(vec!["mood".into()]),
                explicit: true,
            }],
        ),
        (
            "/cattr set general topic=rust --notify",
            vec![Command::ChannelAttrWrite {
                channel: ch("general"),
                op: AttrWrite::Set(BTreeMap::from([("topic".to_string(), "rust".to_string())])),
                notify: true,
            }],
        ),
        (
            "/cattr clear general --quiet",
            vec![Command::ChannelAttrWrite {
                channel: ch("general"),
                op: AttrWrite::Clear,
                notify: false,
            }],
        ),
        (
            "/cattr get general",
            vec![Command::GetChannelAttributes {
                channel: ch("general"),
                keys: None,
                explicit: true,
            }],
        ),
        ("/quit", vec![Command::Quit]),
    ];
    for (line, want) in cases {
        assert_eq!(type_line(&mut app, line), want, "{line}");
        assert_eq!(app.input_text(), "", "{line}");
    }
    assert_eq!(
        app.watched().iter().collect::<Vec<_>>(),
        vec![&uid("carol")]
    );
}

#[test]
fn bad_input_sets_a_status_error_and_emits_nothing() {
    let mut app = logged_in(options(None));
    for (line, says) in [
        ("/join a*b", "'*'"),
        ("/msg bob", "text is missing"),
        ("/msg", "say who"),
        ("/frobnicate now", "unknown command /frobnicate"),
        ("/leave", "no channel is open"),
        ("/leave lobby", "not in #lobby"),
        ("/watch", "at least one"),
        ("/attr set x", "not key=value"),
        ("plain text", "no conversation is open"),
    ] {
        app.status = None;
        let out = type_line(&mut app, line);
        assert!(out.is_empty(), "{line}: {out:?}");
        let err = status_error(&app);
        assert!(err.contains(says), "{line}: {err}");
        // The line stays, to be fixed rather than retyped.
        assert_eq!(app.input_text(), line);
        app.update(ctrl('u'));
    }
}

#[test]
fn sdk_errors_show_in_words() {
    let mut app = logged_in(options(None));
    app.update(Event::CommandResult(CommandResult::UserAttrWritten {
        op: AttrWrite::Clear,
        result: Err(server_error(
            ErrorKind::SizeOverflow,
            "attributes would be 17000 bytes; the limit is 16384",
        )),
    }));
    assert!(status_error(&app).contains("the limit is 16384"));
}

#[test]
fn help_opens_from_keys_and_commands_and_esc_closes_it() {
    let mut app = logged_in(options(None));
    // A message may start with '?': it is text, even in an empty input.
    app.update(key(KeyCode::Char('?')));
    assert!(!app.help_open());
    assert_eq!(app.input_text(), "?");
    app.update(ctrl('u'));
    app.update(key(KeyCode::F(1)));
    assert!(app.help_open());
    app.update(key(KeyCode::Esc));
    type_line(&mut app, "/help");
    assert!(app.help_open());
    app.update(key(KeyCode::Esc));
    // With text in the line, '?' is just a character.
    app.update(key(KeyCode::Char('a')));
    app.update(key(KeyCode::Char('?')));
    assert!(!app.help_open());
    assert_eq!(app.input_text(), "a?");
    // F1 is help whatever the line holds.
    app.update(key(KeyCode::F(1)));
    assert!(app.help_open());
    app.update(key(KeyCode::Esc));
    app.update(ctrl('u'));
    type_line(&mut app, "/help join");
    assert_eq!(app.help.unwrap().topic.unwrap().name, "join");
    let screen = screen_text(&app);
    assert!(
        screen.contains("Help: /join") && screen.contains("/join #general"),
        "{screen}"
    );
}
