//! Tokens, TLS and server-side limits over real sockets.

mod common;

use std::time::Duration;

use common::*;
use rtm::client::{ClientConfig, ClientEvent, ConnectionChangeReason, ConnectionState, RtmClient};
use rtm::protocol::{ErrorKind, Uid, close_code};

const CERT: &str = "s3cret-s3cret-s3cret";

fn uid(s: &str) -> Uid {
    s.parse().unwrap()
}

fn secured() -> rtm::server::ServerConfig {
    let mut c = test_config();
    c.set_app_certificate(Some(CERT.into()))
        .expect("a long enough certificate");
    c
}

fn token_for(server: &rtm::server::ServerHandle, who: &str, ttl_s: u64) -> String {
    rtm::token::mint(
        CERT.as_bytes(),
        &uid(who),
        server.hub.now_ms() / 1000 + ttl_s,
    )
}

#[tokio::test]
async fn logins_need_a_valid_token_for_that_uid() {
    let mut config = secured();
    // Five attempts of one uid in a row: lift the 2-per-second login limit.
    config.limit_scale = 10;
    let server = start_server_with(config).await;
    let (c, _e) = RtmClient::new(server.url(), fast_client_config());
    let err = c.login("alice", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidToken);
    assert!(
        err.to_string().contains("rtm token"),
        "says how to get one: {err}"
    );
    let forged = rtm::token::mint(b"wrong", &uid("alice"), server.hub.now_ms() / 1000 + 60);
    assert_eq!(
        c.login("alice", Some(forged)).await.unwrap_err().kind(),
        ErrorKind::InvalidToken
    );
    let expired = rtm::token::mint(
        CERT.as_bytes(),
        &uid("alice"),
        server.hub.now_ms() / 1000 - 1,
    );
    assert_eq!(
        c.login("alice", Some(expired)).await.unwrap_err().kind(),
        ErrorKind::TokenExpired
    );
    let bobs = token_for(&server, "bob", 60);
    let err = c.login("alice", Some(bobs)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("bob"), "{err}");
    let info = c
        .login("alice", Some(token_for(&server, "alice", 600)))
        .await
        .unwrap();
    assert!(!info.dev_mode);
    let left = info.token_expires_in_s.unwrap();
    assert!((590..=600).contains(&left), "{left}");
    server.shutdown().await;
}

/// The machine sleeps for eight hours with a logged-in session: tokio time
/// stands still across the suspend, the wall clock does not.
#[tokio::test]
async fn a_token_that_ran_out_while_the_machine_slept_is_expired_at_wake_up() {
    let clock = std::sync::Arc::new(rtm::server::TestClock::new());
    let mut config = secured();
    config.timing.clock = clock.clone();
    // Expiry slept through is noticed at the connection's next heartbeat turn.
    config.timing.heartbeat_interval = Duration::from_millis(100);
    let server = start_server_with(config).await;
    let token = token_for(&server, "alice", 600);
    let (c, mut events) = RtmClient::new(server.url(), fast_client_config());
    c.login("alice", Some(token.clone())).await.unwrap();
    clock.jump(Duration::from_secs(8 * 3600));
    let reason = wait_for_within(&mut events, Duration::from_secs(5), |e| match e {
        ClientEvent::ConnectionStateChanged {
            state: ConnectionState::Aborted,
            reason,
        } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, ConnectionChangeReason::TokenExpired);
    let (again, _e) = RtmClient::new(server.url(), fast_client_config());
    assert_eq!(
        again.login("alice", Some(token)).await.unwrap_err().kind(),
        ErrorKind::TokenExpired
    );
    server.shutdown().await;
}

fn paused_config() -> (rtm::server::ServerConfig, ClientConfig) {
    (paused(secured()), paused_client_config())
}

#[tokio::test(start_paused = true)]
async fn expiry_is_announced_30s_ahead_then_the_session_is_aborted() {
    let (sc, cc) = paused_config();
    let server = start_server_with(sc).await;
    let (c, mut events) = RtmClient::new(server.url(), cc);
    c.login("alice", Some(token_for(&server, "alice", 100)))
        .await
        .unwrap();
    let t0 = tokio::time::Instant::now();
    let left = wait_for_within(&mut events, Duration::from_secs(200), |e| match e {
        ClientEvent::TokenPrivilegeWillExpire { expires_in_s } => Some(*expires_in_s),
        _ => None,
    })
    .await;
    assert!((29..=30).contains(&left), "{left}");
    let warned_after = t0.elapsed();
    assert!(
        warned_after >= Duration::from_secs(69) && warned_after <= Duration::from_secs(71),
        "{warned_after:?}"
    );
    let reason = wait_for_within(&mut events, Duration::from_secs(200), |e| match e {
        ClientEvent::ConnectionStateChanged {
            state: ConnectionState::Aborted,
            reason,
        } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, ConnectionChangeReason::TokenExpired);
    let expired_after = t0.elapsed();
    assert!(
        expired_after >= Duration::from_secs(99) && expired_after <= Duration::from_secs(101),
        "{expired_after:?}"
    );
    // TokenExpired is reported, and the client does not come back by itself.
    let mut saw_expired = false;
    while let Some(ev) = events.try_recv() {
        saw_expired |= matches!(ev, ClientEvent::TokenExpired);
    }
    assert!(saw_expired);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(c.connection_state(), ConnectionState::Aborted);
    assert_eq!(
        server.hub.user_count(),
        0,
        "an expired session is gone at once, no grace"
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn renew_token_extends_the_session_without_reconnecting() {
    let (sc, cc) = paused_config();
    let server = start_server_with(sc).await;
    let (c, mut events) = RtmClient::new(server.url(), cc);
    c.login("alice", Some(token_for(&server, "alice", 60)))
        .await
        .unwrap();
    wait_for_within(&mut events, Duration::from_secs(100), |e| {
        matches!(e, ClientEvent::TokenPrivilegeWillExpire { .. }).then_some(())
    })
    .await;
    // Wrong renewals change nothing.
    assert_eq!(
        c.renew_token(&token_for(&server, "bob", 600))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        c.renew_token("garbage").await.unwrap_err().kind(),
        ErrorKind::InvalidToken
    );
    // (2 renewals per second are allowed; this is paused time, so it costs nothing.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.renew_token(&token_for(&server, "alice", 600))
        .await
        .unwrap();
    // Well past the first expiry: still connected, no state change at all.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(c.connection_state(), ConnectionState::Connected);
    let mut changes = Vec::new();
    while let Some(ev) = events.try_recv() {
        if let ClientEvent::ConnectionStateChanged { state, .. } = ev {
            changes.push(state);
        }
    }
    assert!(changes.is_empty(), "{changes:?}");
    // The new token's own expiry still applies.
    let reason = wait_for_within(&mut events, Duration::from_secs(1000), |e| match e {
        ClientEvent::ConnectionStateChanged {
            state: ConnectionState::Aborted,
            reason,
        } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, ConnectionChangeReason::TokenExpired);
    server.shutdown().await;
}

#[tokio::test]
async fn a_raw_client_sees_token_expired_and_close_4004() {
    let server = start_server_with(secured()).await;
    let mut ws = raw_connect(&server.url()).await;
    let t = token_for(&server, "alice", 2);
    raw_send(
        &mut ws,
        &format!(r#"{{"id":1,"type":"login","protocol":1,"uid":"alice","token":"{t}"}}"#),
    )
    .await;
    // logged_in, the early warning (the token is already within 30 s), then the expiry.
    let mut kinds = Vec::new();
    let close = loop {
        match raw_recv_or_close(&mut ws).await {
            Ok(rtm::protocol::ServerFrame::Event { event }) => kinds.push(format!("{event:?}")),
            Ok(_) => kinds.push("reply".into()),
            Err(close) => break close,
        }
    };
    assert_eq!(close.map(|c| c.0), Some(close_code::TOKEN_EXPIRED));
    assert!(
        kinds
            .iter()
            .any(|k| k.starts_with("TokenPrivilegeWillExpire")),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "TokenExpired"), "{kinds:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn logins_of_one_uid_are_limited_to_two_per_second() {
    let server = start_server().await;
    let mut results = Vec::new();
    for _ in 0..3 {
        let mut ws = raw_connect(&server.url()).await;
        raw_send(
            &mut ws,
            r#"{"id":1,"type":"login","protocol":1,"uid":"alice"}"#,
        )
        .await;
        results.push(raw_recv(&mut ws).await.unwrap());
    }
    assert!(matches!(results[0], rtm::protocol::ServerFrame::Ok { .. }));
    match &results[2] {
        rtm::protocol::ServerFrame::Error { error, .. } => {
            assert_eq!(error.kind, ErrorKind::TooOften)
        }
        other => panic!("{other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn connection_attempts_per_address_are_limited_with_a_clear_reason() {
    let mut config = test_config();
    config.connect_rate_per_ip = 5;
    let server = start_server_with(config).await;
    let mut kept = Vec::new();
    for _ in 0..5 {
        kept.push(raw_connect(&server.url()).await);
    }
    let mut sixth = raw_connect(&server.url()).await;
    match raw_recv_or_close(&mut sixth).await {
        Err(Some((code, reason))) => {
            assert_eq!(code, close_code::TOO_MANY_CONNECTIONS);
            assert!(reason.contains("too many connection attempts"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn wss_with_a_private_ca_and_refusal_of_an_unknown_certificate() {
    let dir = std::env::temp_dir().join(format!("rtm-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let mut config = test_config();
    config.tls = Some(rtm::server::load_tls(&cert_path, &key_path).unwrap());
    let server = start_server_with(config).await;
    let url = format!("wss://localhost:{}", server.addr.port());

    // Trusting the certificate's CA: works end to end.
    let trusting = ClientConfig {
        ca_file: Some(cert_path.clone()),
        ..fast_client_config()
    };
    let (alice, _ae) = login_with(&url, "alice", trusting.clone()).await;
    let (_bob, mut be) = login_with(&url, "bob", trusting).await;
    alice
        .send_message_to_peer(
            rtm::client::RtmMessage::text("over tls"),
            "bob",
            Default::default(),
        )
        .await
        .unwrap();
    wait_for(&mut be, |e| {
        matches!(e, ClientEvent::MessageFromPeer { .. }).then_some(())
    })
    .await;

    // Verification is on by default: an unknown self-signed certificate is refused.
    let (c, _e) = RtmClient::new(&url, fast_client_config());
    let err = c.login("carol", None).await.unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
    // Plain ws:// to a TLS port does not get in either.
    let (c, _e) = RtmClient::new(
        format!("ws://127.0.0.1:{}", server.addr.port()),
        fast_client_config(),
    );
    assert!(c.login("dave", None).await.is_err());
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn failed_logins_cannot_lock_a_user_or_a_neighbour_out_but_guessing_is_slowed() {
    let server = start_server_with(secured()).await;
    // Three tokenless attempts as alice, faster than 2 per second...
    for _ in 0..3 {
        let (c, _e) = RtmClient::new(server.url(), fast_client_config());
        assert_eq!(
            c.login("alice", None).await.unwrap_err().kind(),
            ErrorKind::InvalidToken
        );
    }
    // ...do not stop alice with a valid token.
    let (alice, _ae) = RtmClient::new(server.url(), fast_client_config());
    alice
        .login("alice", Some(token_for(&server, "alice", 600)))
        .await
        .unwrap();
    // But an address that keeps guessing is slowed down.
    let mut last = None;
    for _ in 0..10 {
        let (c, _e) = RtmClient::new(server.url(), fast_client_config());
        last = Some(
            c.login("mallory", Some("rtm1.x.y".into()))
                .await
                .unwrap_err(),
        );
    }
    let err = last.unwrap();
    assert_eq!(err.kind(), ErrorKind::TooOften);
    assert!(err.to_string().contains("failed logins"), "{err}");
    // A neighbour behind the same address (a NAT) with a valid token still
    // gets in at once: only failures are slowed down.
    let (bob, _be) = RtmClient::new(server.url(), fast_client_config());
    bob.login("bob", Some(token_for(&server, "bob", 600)))
        .await
        .expect("a valid login is never refused because others failed");
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_token_renewed_while_reconnecting_is_used_for_the_next_login() {
    let (sc, cc) = paused_config();
    let server = start_server_with(sc.clone()).await;
    let addr = server.addr.to_string();
    let (c, mut events) = RtmClient::new(server.url(), cc.clone());
    c.login("alice", Some(token_for(&server, "alice", 100)))
        .await
        .unwrap();
    server.shutdown().await;
    wait_state(&mut events, ConnectionState::Reconnecting).await;
    // While the server is away the first token runs out; a fresh one is handed in.
    tokio::time::sleep(Duration::from_secs(200)).await;
    let fresh = rtm::token::mint(
        CERT.as_bytes(),
        &uid("alice"),
        sc.timing.clock.now_ms() / 1000 + 600,
    );
    c.renew_token(&fresh).await.unwrap();
    let server = start_server_on(
        &addr,
        sc,
        std::sync::Arc::new(rtm::server::MemoryStore::new()),
    )
    .await;
    let state = wait_for_within(&mut events, Duration::from_secs(60), |e| match e {
        ClientEvent::ConnectionStateChanged { state, .. }
            if *state != ConnectionState::Reconnecting =>
        {
            Some(*state)
        }
        _ => None,
    })
    .await;
    assert_eq!(
        state,
        ConnectionState::Connected,
        "logged in again with the renewed token"
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_found_while_reconnecting_aborts_with_token_expired() {
    let (sc, cc) = paused_config();
    let server = start_server_with(sc.clone()).await;
    let addr = server.addr.to_string();
    let (c, mut events) = RtmClient::new(server.url(), cc);
    c.login("alice", Some(token_for(&server, "alice", 100)))
        .await
        .unwrap();
    server.shutdown().await;
    wait_state(&mut events, ConnectionState::Reconnecting).await;
    tokio::time::sleep(Duration::from_secs(200)).await;
    let server = start_server_on(
        &addr,
        sc,
        std::sync::Arc::new(rtm::server::MemoryStore::new()),
    )
    .await;
    let reason = wait_for_within(&mut events, Duration::from_secs(60), |e| match e {
        ClientEvent::ConnectionStateChanged {
            state: ConnectionState::Aborted,
            reason,
        } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, ConnectionChangeReason::TokenExpired);
    server.shutdown().await;
}
