//! The operator's commands end to end: `rtm admin` (the real binary)
//! against a server's admin interface — sessions, kick, a ban that ends the
//! session with BANNED_BY_SERVER and refuses logins until it expires.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::free_port;
use common::*;
use rtm::client::{ConnectionChangeReason, ConnectionState, PeerOnlineState, RtmClient};
use rtm::protocol::ErrorKind;
use rtm::server::ServerConfig;

const SECRET: &str = "an-admin-secret-for-tests";

/// Runs `rtm admin --url … --secret SECRET ARGS…`: (success, stdout+stderr).
fn rtm_admin(addr: &str, secret: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rtm"))
        .args([
            "admin",
            "--url",
            &format!("http://{addr}"),
            "--secret",
            secret,
        ])
        .args(args)
        .env_remove("RTM_ADMIN_SECRET")
        .output()
        .expect("run rtm admin");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_kick_and_a_ban_that_expires() {
    let addr = format!("127.0.0.1:{}", free_port());
    let server = start_server_with(ServerConfig {
        metrics_listen: Some(addr.clone()),
        admin_secret: Some(SECRET.into()),
        ..ServerConfig::default()
    })
    .await;
    let (alice, mut ae) = login(&server.url(), "alice").await;
    let (_bob, mut be) = login(&server.url(), "bob").await;
    alice.subscribe_peers_online_status(&["bob"]).await.unwrap();
    status_change(&mut ae).await;

    let (ok, text) = rtm_admin(&addr, SECRET, &["sessions"]);
    assert!(ok, "{text}");
    assert!(text.contains("alice") && text.contains("bob"), "{text}");
    assert!(text.contains("2 session(s)"), "{text}");

    let (ok, text) = rtm_admin(&addr, "wrong-secret", &["sessions"]);
    assert!(!ok, "a wrong secret must fail: {text}");
    assert!(text.contains("admin secret"), "{text}");

    // The ban: bob's session ends with BANNED_BY_SERVER, alice sees OFFLINE.
    let (ok, text) = rtm_admin(
        &addr,
        SECRET,
        &["ban", "bob", "--for", "2s", "--reason", "spam"],
    );
    assert!(ok, "{text}");
    assert!(text.contains("its session was ended"), "{text}");
    let reason = wait_state(&mut be, ConnectionState::Aborted).await;
    assert_eq!(reason, ConnectionChangeReason::BannedByServer);
    assert_eq!(
        status_change(&mut ae).await.get(&uid("bob")),
        Some(&PeerOnlineState::Offline)
    );
    // Refused while the ban lasts, with the reason.
    let (again, _) = RtmClient::new(server.url(), fast_client_config());
    let err = again.login("bob", None).await.expect_err("bob is banned");
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert!(err.to_string().contains("banned"), "{err}");
    // Welcome back once it has expired.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_bob2, _) = login(&server.url(), "bob").await;

    // A kick ends the session; the SDK logs in again by itself.
    let (ok, text) = rtm_admin(&addr, SECRET, &["kick", "alice"]);
    assert!(ok, "{text}");
    assert!(text.contains("session ended"), "{text}");
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    wait_state(&mut ae, ConnectionState::Connected).await;
    server.shutdown().await;
}

// Multi-threaded: the test blocks a thread on the `rtm admin` process while
// the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_the_admin_interface_is_off() {
    let addr = format!("127.0.0.1:{}", free_port());
    let server = start_server_with(ServerConfig {
        metrics_listen: Some(addr.clone()),
        ..ServerConfig::default()
    })
    .await;
    let (ok, text) = rtm_admin(&addr, "anything", &["sessions"]);
    assert!(!ok);
    assert!(text.contains("admin interface is off"), "{text}");
    server.shutdown().await;
}
