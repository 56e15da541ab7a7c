//! The login screen.

use super::*;

#[test]
fn login_screen_validates_the_uid_and_logs_in_on_enter() {
    let mut app = App::with_login_hint(&options(None), Some("alice".into()));
    assert_eq!(app.init(), vec![Command::LoadWatched, Command::LoadMuted]);
    assert_eq!(app.screen(), Screen::Login);
    // The suggestion is pre-filled; make it invalid.
    app.update(key(KeyCode::Char('*')));
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    let err = app.login.error.clone().unwrap();
    assert!(err.contains("'*'") && err.contains("position 6"), "{err}");
    app.update(key(KeyCode::Backspace));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Command::Login {
            uid: uid("alice"),
            token: None
        }]
    );
    // A second Enter while the first login is in flight does nothing.
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    app.update(Event::CommandResult(CommandResult::LoggedIn {
        uid: uid("alice"),
        result: Err(RtmError::Connect {
            url: "ws://127.0.0.1:7420".into(),
            reason: "connection refused".into(),
        }),
    }));
    assert_eq!(app.screen(), Screen::Login);
    assert!(
        app.login
            .error
            .clone()
            .unwrap()
            .contains("connection refused")
    );
    // Retry works; Esc quits.
    assert_eq!(app.update(key(KeyCode::Enter)).len(), 1);
    let mut app = App::with_login_hint(&options(None), None);
    assert_eq!(app.update(key(KeyCode::Esc)), vec![Command::Quit]);
    assert!(app.quitting());
}

#[test]
fn configured_uid_logs_in_at_once_and_watched_peers_are_resubscribed() {
    let mut opts = options(Some("alice"));
    opts.settings.token = Some("tok".into());
    let mut app = App::with_login_hint(&opts, None);
    assert_eq!(
        app.init(),
        vec![
            Command::LoadWatched,
            Command::LoadMuted,
            Command::Login {
                uid: uid("alice"),
                token: Some("tok".into())
            }
        ]
    );
    // The file answers before the login: nothing to subscribe yet.
    let out = app.update(Event::CommandResult(CommandResult::WatchedLoaded(Ok(
        vec![uid("bob")],
    ))));
    assert!(out.is_empty());
    let out = app.update(Event::CommandResult(CommandResult::LoggedIn {
        uid: uid("alice"),
        result: Ok(LoginInfo {
            uid: uid("alice"),
            server_ts: NOW,
            dev_mode: false,
            token_expires_in_s: None,
            resumed: false,
        }),
    }));
    assert_eq!(out, vec![Command::Subscribe(vec![uid("bob")])]);
    assert_eq!(app.screen(), Screen::Main);
    assert_eq!(app.peer_rows(), vec![uid("bob")]);
}
