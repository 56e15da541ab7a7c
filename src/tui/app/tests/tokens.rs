//! Renewing the login token.

use super::*;

#[test]
fn slash_token_renews_the_token() {
    let mut app = logged_in(options(None));
    let out = type_line(&mut app, "/token rtm1.new.token");
    assert!(
        out.contains(&Command::RenewToken("rtm1.new.token".into())),
        "{out:?}"
    );
    app.update(Event::CommandResult(CommandResult::TokenRenewed(Ok(()))));
    assert_eq!(app.status().unwrap().text, "login token renewed");
    app.update(Event::CommandResult(CommandResult::TokenRenewed(Err(
        "bad".into(),
    ))));
    assert!(status_error(&app).contains("/token <new token>"));
    assert!(
        type_line(&mut app, "/token")
            .iter()
            .all(|c| !matches!(c, Command::RenewToken(_)))
    );
}

#[test]
fn expiry_warning_asks_for_a_token_or_fetches_one() {
    let mut app = logged_in(options(None));
    let out = app.update(Event::Rtm(ClientEvent::TokenPrivilegeWillExpire {
        expires_in_s: 30,
    }));
    assert!(!out.contains(&Command::FetchToken));
    let text = status_error(&app);
    assert!(
        text.contains("30 s") && text.contains("/token") && text.contains("rtm token --uid alice"),
        "{text}"
    );

    let mut opts = options(Some("alice"));
    opts.settings.token_command = Some("echo rtm1.x.y".into());
    let mut app = logged_in(opts);
    let out = app.update(Event::Rtm(ClientEvent::TokenPrivilegeWillExpire {
        expires_in_s: 30,
    }));
    assert!(out.contains(&Command::FetchToken), "{out:?}");
}
