//! Call invitations over real sockets (spec §8, PROTOCOL.md §15): every
//! state of both sides, every failure reason, the misuse errors with the
//! reference's numbers, and the server's limits. Timers (the 30 s
//! acknowledgement, the 60 s expiry, the 30 s grace) run on paused time.

mod common;

use std::time::Duration;

use common::*;
use rtm::client::{
    CallFamily, ClientEvent, ClientEvents, ErrorKind, LocalInvitation, LocalInvitationEvent,
    LocalInvitationFailureReason as LocalReason, LocalInvitationState as LS, RemoteInvitation,
    RemoteInvitationEvent, RemoteInvitationFailureReason as RemoteReason,
    RemoteInvitationState as RS, RtmClient, RtmError,
};
use rtm::protocol::{Event, Reply, ServerFrame};

/// The next event about one of this client's sent invitations.
async fn next_local(
    events: &mut ClientEvents,
    within: Duration,
) -> (LocalInvitation, LocalInvitationEvent) {
    wait_for_within(events, within, |e| match e {
        ClientEvent::LocalInvitation { invitation, event } => {
            Some((invitation.clone(), event.clone()))
        }
        _ => None,
    })
    .await
}

/// The event that ends one of this client's sent invitations (skipping
/// `ReceivedByPeer`, which may or may not come first).
async fn next_local_end(
    events: &mut ClientEvents,
    within: Duration,
) -> (LocalInvitation, LocalInvitationEvent) {
    loop {
        let (invitation, event) = next_local(events, within).await;
        if event != LocalInvitationEvent::ReceivedByPeer {
            return (invitation, event);
        }
    }
}

/// alice (caller) and bob (callee), logged in, with alice's call ringing
/// at bob's.
struct Ringing {
    alice: RtmClient,
    ae: ClientEvents,
    bob: RtmClient,
    be: ClientEvents,
    call: LocalInvitation,
    ringing: RemoteInvitation,
}

async fn alice_rings_bob(url: &str) -> Ringing {
    let (alice, ae) = login(url, "alice").await;
    let (bob, mut be) = login(url, "bob").await;
    let call = alice.create_local_invitation("bob").unwrap();
    call.send().await.unwrap();
    let ringing = next_received(&mut be).await;
    Ringing {
        alice,
        ae,
        bob,
        be,
        call,
        ringing,
    }
}

/// The next incoming invitation.
async fn next_received(events: &mut ClientEvents) -> RemoteInvitation {
    wait_for(events, |e| match e {
        ClientEvent::RemoteInvitationReceived(inv) => Some(inv.clone()),
        _ => None,
    })
    .await
}

/// The next event about one of this client's received invitations.
async fn next_remote(
    events: &mut ClientEvents,
    within: Duration,
) -> (RemoteInvitation, RemoteInvitationEvent) {
    wait_for_within(events, within, |e| match e {
        ClientEvent::RemoteInvitation { invitation, event } => {
            Some((invitation.clone(), event.clone()))
        }
        _ => None,
    })
    .await
}

fn kind(result: Result<(), RtmError>) -> ErrorKind {
    result.expect_err("the call should have failed").kind()
}

#[tokio::test]
async fn an_accepted_call_moves_both_sides_through_every_state() {
    let server = start_server().await;
    let (alice, mut ae) = login(&server.url(), "alice").await;
    let (_bob, mut be) = login(&server.url(), "bob").await;

    let call = alice.create_local_invitation("bob").unwrap();
    assert_eq!(call.state(), LS::Idle);
    call.set_content("lunch?").unwrap();
    call.set_channel_id("call-42").unwrap();
    call.send().await.unwrap();
    // SENT_TO_REMOTE once the server took it, unless the callee's client
    // already confirmed it (its confirmation may overtake the reply).
    assert!(matches!(
        call.state(),
        LS::SentToRemote | LS::ReceivedByRemote
    ));

    let ringing = next_received(&mut be).await;
    assert_eq!(ringing.caller_id().as_str(), "alice");
    assert_eq!(ringing.id(), call.id());
    assert_eq!(ringing.content(), "lunch?");
    assert_eq!(ringing.channel_id(), Some("call-42"));
    assert_eq!(ringing.state(), RS::InvitationReceived);
    let left = ringing.expires_in();
    assert!(
        left > Duration::from_secs(50) && left <= Duration::from_secs(60),
        "{left:?}"
    );

    let (inv, event) = next_local(&mut ae, WAIT).await;
    assert_eq!(event, LocalInvitationEvent::ReceivedByPeer);
    assert_eq!(inv, call);
    assert_eq!(call.state(), LS::ReceivedByRemote);

    ringing.accept("sure").await.unwrap();
    assert_eq!(ringing.state(), RS::Accepted);
    assert_eq!(ringing.response().as_deref(), Some("sure"));
    let (_, event) = next_remote(&mut be, WAIT).await;
    assert_eq!(event, RemoteInvitationEvent::Accepted);

    let (_, event) = next_local(&mut ae, WAIT).await;
    assert_eq!(
        event,
        LocalInvitationEvent::Accepted {
            response: "sure".into()
        }
    );
    assert_eq!(call.state(), LS::AcceptedByRemote);
    assert_eq!(call.response().as_deref(), Some("sure"));
    assert_eq!(
        server.hub.open_invitations(),
        0,
        "the server forgets an answered call"
    );

    // An ended invitation refuses every further step, with the reference's numbers.
    let e = call.cancel().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyEnd);
    assert_eq!(e.agora_code(CallFamily::InvitationApiCall), Some(3));
    let e = ringing.accept("again").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyAccept);
    assert_eq!(e.agora_code(CallFamily::InvitationApiCall), Some(4));
    assert_eq!(kind(ringing.refuse("no").await), ErrorKind::AlreadyAccept);
    let e = call.send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadySent);
    assert_eq!(e.agora_code(CallFamily::InvitationApiCall), Some(5));
    server.shutdown().await;
}

#[tokio::test]
async fn a_refused_call_carries_the_response_to_the_caller() {
    let server = start_server().await;
    let Ringing {
        alice: _alice,
        mut ae,
        bob: _bob,
        mut be,
        call,
        ringing,
    } = alice_rings_bob(&server.url()).await;
    assert_eq!(ringing.content(), "", "content is optional");
    ringing.refuse("busy, later").await.unwrap();
    assert_eq!(ringing.state(), RS::Refused);
    let (_, event) = next_remote(&mut be, WAIT).await;
    assert_eq!(event, RemoteInvitationEvent::Refused);
    let (_, event) = next_local_end(&mut ae, WAIT).await;
    assert_eq!(
        event,
        LocalInvitationEvent::Refused {
            response: "busy, later".into()
        }
    );
    assert_eq!(call.state(), LS::RefusedByRemote);
    assert_eq!(call.response().as_deref(), Some("busy, later"));
    assert_eq!(kind(ringing.accept("").await), ErrorKind::AlreadyAccept);
    server.shutdown().await;
}

#[tokio::test]
async fn a_canceled_call_stops_ringing_and_cannot_be_answered() {
    let server = start_server().await;
    let (alice, mut ae) = login(&server.url(), "alice").await;
    let (_bob, mut be) = login(&server.url(), "bob").await;
    let call = alice.create_local_invitation("bob").unwrap();
    // Cancel before send is a misuse, with the reference's number.
    let e = call.cancel().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotStarted);
    assert_eq!(e.agora_code(CallFamily::InvitationApiCall), Some(2));
    call.set_content("quick question").unwrap();
    call.send().await.unwrap();
    // Content is fixed once sent.
    assert_eq!(kind(call.set_content("changed")), ErrorKind::AlreadySent);
    let ringing = next_received(&mut be).await;

    call.cancel().await.unwrap();
    assert_eq!(call.state(), LS::Canceled);
    let (_, event) = next_local_end(&mut ae, WAIT).await;
    assert_eq!(event, LocalInvitationEvent::Canceled);

    let (_, event) = next_remote(&mut be, WAIT).await;
    assert_eq!(
        event,
        RemoteInvitationEvent::Canceled {
            content: "quick question".into()
        }
    );
    assert_eq!(ringing.state(), RS::Canceled);
    assert_eq!(kind(ringing.accept("ok").await), ErrorKind::AlreadyEnd);
    assert_eq!(kind(call.cancel().await), ErrorKind::AlreadyEnd);
    assert_eq!(server.hub.open_invitations(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_to_an_offline_user_fails_with_peer_offline_at_once() {
    let server = start_server().await;
    let (alice, mut ae) = login(&server.url(), "alice").await;
    let call = alice.create_local_invitation("nobody").unwrap();
    call.send().await.unwrap();
    // Reported before anything else: nothing waits for a timer.
    let (inv, event) = next_local(&mut ae, Duration::from_millis(500)).await;
    assert_eq!(inv, call);
    assert_eq!(
        event,
        LocalInvitationEvent::Failure(LocalReason::PeerOffline)
    );
    assert_eq!(call.state(), LS::Failure);
    assert_eq!(call.failure_reason(), Some(LocalReason::PeerOffline));
    assert_eq!(LocalReason::PeerOffline.code(), 1);
    assert_eq!(
        server.hub.open_invitations(),
        0,
        "nothing kept for an offline callee"
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_call_expires_for_both_sides_after_60_s() {
    let server = start_server_with(paused_server_config()).await;
    let (alice, mut ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    let (_bob, mut be) = login_with(&server.url(), "bob", paused_client_config()).await;
    let call = alice.create_local_invitation("bob").unwrap();
    let sent_at = tokio::time::Instant::now();
    call.send().await.unwrap();
    let ringing = next_received(&mut be).await;
    let (_, event) = next_local(&mut ae, WAIT).await;
    assert_eq!(event, LocalInvitationEvent::ReceivedByPeer);

    let (_, event) = next_local(&mut ae, Duration::from_secs(120)).await;
    assert_eq!(
        event,
        LocalInvitationEvent::Failure(LocalReason::InvitationExpire)
    );
    let waited = sent_at.elapsed();
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
        "expired after {waited:?}"
    );
    assert_eq!(call.state(), LS::Failure);
    let (_, event) = next_remote(&mut be, WAIT).await;
    assert_eq!(
        event,
        RemoteInvitationEvent::Failure(RemoteReason::InvitationExpire)
    );
    assert_eq!(ringing.state(), RS::Failure);
    assert_eq!(
        ringing.failure_reason(),
        Some(RemoteReason::InvitationExpire)
    );
    assert_eq!(ringing.expires_in(), Duration::ZERO);
    assert_eq!(
        kind(ringing.accept("too late").await),
        ErrorKind::AlreadyEnd
    );
    assert_eq!(server.hub.open_invitations(), 0);
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_callee_whose_client_never_confirms_is_peer_no_response_after_30_s() {
    let server = start_server_with(paused_server_config()).await;
    let (alice, mut ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    // bob's client is online but never acknowledges (no SDK).
    let (mut bob, _) = raw_login(&server.url(), "bob").await;
    let call = alice.create_local_invitation("bob").unwrap();
    let sent_at = tokio::time::Instant::now();
    call.send().await.unwrap();
    match raw_recv(&mut bob).await {
        Some(ServerFrame::Event {
            event: Event::RemoteInvitationReceived { caller_id, .. },
        }) => assert_eq!(caller_id.as_str(), "alice"),
        other => panic!("expected the invitation, got {other:?}"),
    }
    let (_, event) = next_local(&mut ae, Duration::from_secs(120)).await;
    assert_eq!(
        event,
        LocalInvitationEvent::Failure(LocalReason::PeerNoResponse)
    );
    let waited = sent_at.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "failed after {waited:?}"
    );
    // The callee's client hears that it must stop ringing.
    match raw_recv(&mut bob).await {
        Some(ServerFrame::Event {
            event: Event::RemoteInvitationFailure { reason, .. },
        }) => assert_eq!(reason, RemoteReason::InvitationExpire),
        other => panic!("expected the failure, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_callee_that_logs_out_fails_the_call_with_peer_offline() {
    let server = start_server().await;
    let Ringing {
        alice: _alice,
        mut ae,
        bob,
        mut be,
        call: _call,
        ringing,
    } = alice_rings_bob(&server.url()).await;
    bob.logout().await.unwrap();
    // bob's own client ends what rang there: he went offline.
    let (_, event) = next_remote(&mut be, WAIT).await;
    assert_eq!(
        event,
        RemoteInvitationEvent::Failure(RemoteReason::PeerOffline)
    );
    assert_eq!(ringing.state(), RS::Failure);
    let (_, event) = next_local_end(&mut ae, WAIT).await;
    assert_eq!(
        event,
        LocalInvitationEvent::Failure(LocalReason::PeerOffline)
    );
    assert_eq!(server.hub.open_invitations(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_caller_that_logs_out_fails_the_call_with_peer_offline_and_not_loggedin() {
    let server = start_server().await;
    let Ringing {
        alice,
        mut ae,
        bob: _bob,
        mut be,
        call,
        ringing,
    } = alice_rings_bob(&server.url()).await;
    alice.logout().await.unwrap();
    let (_, event) = next_local_end(&mut ae, WAIT).await;
    assert_eq!(
        event,
        LocalInvitationEvent::Failure(LocalReason::NotLoggedin)
    );
    assert_eq!(call.failure_reason(), Some(LocalReason::NotLoggedin));
    let (_, event) = next_remote(&mut be, WAIT).await;
    assert_eq!(
        event,
        RemoteInvitationEvent::Failure(RemoteReason::PeerOffline)
    );
    assert_eq!(ringing.state(), RS::Failure);

    // Sending while logged out fails at once, as NOT_LOGGEDIN.
    let later = alice.create_local_invitation("bob").unwrap();
    assert_eq!(kind(later.send().await), ErrorKind::NotLoggedIn);
    assert_eq!(later.failure_reason(), Some(LocalReason::NotLoggedin));
    server.shutdown().await;
}

#[tokio::test]
async fn a_remote_login_of_the_callee_ends_its_calls() {
    let server = start_server().await;
    let Ringing {
        alice: _alice,
        mut ae,
        bob: _bob,
        mut be,
        call: _call,
        ringing,
    } = alice_rings_bob(&server.url()).await;
    // bob logs in from somewhere else: the old session is kicked.
    let (_bob2, _be2) = login(&server.url(), "bob").await;
    let (_, event) = next_remote(&mut be, WAIT).await;
    assert_eq!(
        event,
        RemoteInvitationEvent::Failure(RemoteReason::PeerOffline)
    );
    assert_eq!(ringing.state(), RS::Failure);
    let (_, event) = next_local_end(&mut ae, WAIT).await;
    assert_eq!(
        event,
        LocalInvitationEvent::Failure(LocalReason::PeerOffline)
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_caller_whose_link_stays_down_past_the_grace_ends_its_calls() {
    let server = start_server_with(paused_server_config()).await;
    let (_bob, mut be) = login_with(&server.url(), "bob", paused_client_config()).await;
    let (mut alice, _) = raw_login(&server.url(), "alice").await;
    raw_send(
        &mut alice,
        r#"{"id":2,"type":"send_local_invitation","invitation_id":7,"callee_id":"bob","content":"hi"}"#,
    )
    .await;
    let ringing = next_received(&mut be).await;
    drop(alice); // the link dies without a logout
    let down_at = tokio::time::Instant::now();
    let (_, event) = next_remote(&mut be, Duration::from_secs(120)).await;
    assert_eq!(
        event,
        RemoteInvitationEvent::Failure(RemoteReason::PeerOffline)
    );
    let waited = down_at.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "ended after {waited:?}: only when the grace is over"
    );
    assert_eq!(ringing.state(), RS::Failure);
    server.shutdown().await;
}

#[tokio::test]
async fn a_caller_that_reconnects_within_the_grace_keeps_its_call() {
    let server = start_server().await;
    let proxy = Proxy::start(server.addr).await;
    let (alice, mut ae) = login(&proxy.url(), "alice").await;
    let (bob, mut be) = login(&server.url(), "bob").await;
    bob.subscribe_peers_online_status(&["alice"]).await.unwrap();
    let call = alice.create_local_invitation("bob").unwrap();
    call.send().await.unwrap();
    let ringing = next_received(&mut be).await;
    let (_, event) = next_local(&mut ae, WAIT).await;
    assert_eq!(event, LocalInvitationEvent::ReceivedByPeer);

    // alice's link dies and stays down until the server has noticed.
    proxy.block(true);
    proxy.cut();
    wait_for(&mut be, |e| match e {
        ClientEvent::PeersOnlineStatusChanged(s)
            if s.get("alice") == Some(&rtm::client::PeerOnlineState::Unreachable) =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    // The call still rings, and bob's answer waits for alice.
    assert_eq!(ringing.state(), RS::InvitationReceived);
    ringing.accept("back").await.unwrap();
    assert_eq!(call.state(), LS::ReceivedByRemote);
    proxy.block(false);
    let (_, event) = next_local(&mut ae, WAIT).await;
    assert_eq!(
        event,
        LocalInvitationEvent::Accepted {
            response: "back".into()
        }
    );
    assert_eq!(call.state(), LS::AcceptedByRemote);
    server.shutdown().await;
}

#[tokio::test]
async fn an_acceptance_that_cannot_reach_the_caller_is_accept_failure() {
    let server = start_server().await;
    let proxy = Proxy::start(server.addr).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let config = rtm::client::ClientConfig {
        request_timeout: Duration::from_millis(300),
        ..fast_client_config()
    };
    let (_bob, mut be) = login_with(&proxy.url(), "bob", config).await;
    let call = alice.create_local_invitation("bob").unwrap();
    call.send().await.unwrap();
    let ringing = next_received(&mut be).await;
    // bob's network goes away just as he accepts.
    proxy.block(true);
    proxy.cut();
    wait_state(&mut be, rtm::client::ConnectionState::Reconnecting).await;
    let e = ringing.accept("yes").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    let (_, event) = next_remote(&mut be, WAIT).await;
    assert_eq!(
        event,
        RemoteInvitationEvent::Failure(RemoteReason::AcceptFailure)
    );
    assert_eq!(ringing.state(), RS::Failure);
    assert_eq!(RemoteReason::AcceptFailure.code(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn oversize_content_and_response_are_refused_before_sending() {
    let server = start_server().await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let (_bob, mut be) = login(&server.url(), "bob").await;
    let call = alice.create_local_invitation("bob").unwrap();
    let e = call
        .set_content("x".repeat(rtm::client::MAX_INVITATION_CONTENT_BYTES + 1))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.agora_code(CallFamily::InvitationApiCall), Some(1));
    assert!(e.to_string().contains("8192"), "{e}");
    call.set_content("x".repeat(rtm::client::MAX_INVITATION_CONTENT_BYTES))
        .unwrap();
    call.send().await.unwrap();
    let ringing = next_received(&mut be).await;
    assert_eq!(ringing.content().len(), 8192);
    let big = "y".repeat(rtm::client::MAX_INVITATION_RESPONSE_BYTES + 1);
    assert_eq!(kind(ringing.accept(big).await), ErrorKind::InvalidArgument);
    // A refused argument leaves the call ringing and answerable.
    assert_eq!(ringing.state(), RS::InvitationReceived);
    ringing.accept("ok").await.unwrap();
    assert!(alice.create_local_invitation("bad/uid").is_err());
    server.shutdown().await;
}

/// Sends `request` on a raw connection and returns the reply to it,
/// skipping events.
async fn raw_call(
    ws: &mut RawWs,
    id: u64,
    request: &str,
) -> Result<Reply, rtm::protocol::ErrorBody> {
    raw_send(ws, &request.replace("{ID}", &id.to_string())).await;
    loop {
        match raw_recv(ws).await.expect("reply") {
            ServerFrame::Ok { id: i, result } if i == id => return Ok(result),
            ServerFrame::Error { id: Some(i), error } if i == id => return Err(error),
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_server_enforces_its_limits_and_refuses_misuse_by_hand_written_clients() {
    let server = start_server().await;
    let (mut alice, _) = raw_login(&server.url(), "alice").await;
    let (mut bob, _) = raw_login(&server.url(), "bob").await;
    let send = |id: u64, inv: u64| {
        format!(
            r#"{{"id":{id},"type":"send_local_invitation","invitation_id":{inv},"callee_id":"bob"}}"#
        )
    };
    // Content over 8 KB, checked by the server too.
    let big = "z".repeat(8193);
    let e = raw_call(
        &mut alice,
        2,
        &format!(
            r#"{{"id":{{ID}},"type":"send_local_invitation","invitation_id":1,"callee_id":"bob","content":"{big}"}}"#
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    // Ringing oneself.
    let e = raw_call(
        &mut alice,
        3,
        r#"{"id":{ID},"type":"send_local_invitation","invitation_id":1,"callee_id":"alice"}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    // The same id twice while it rings.
    assert!(matches!(
        raw_call(&mut alice, 4, &send(4, 1)).await,
        Ok(Reply::InvitationSent {
            peer_online: true,
            ..
        })
    ));
    let e = raw_call(&mut alice, 5, &send(5, 1)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadySent);
    // Only the callee may confirm or answer; others get ALREADY_END.
    let (mut carol, _) = raw_login(&server.url(), "carol").await;
    let e = raw_call(
        &mut carol,
        2,
        r#"{"id":{ID},"type":"accept_remote_invitation","caller_id":"alice","invitation_id":1}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyEnd);
    // Canceling one that was never sent.
    let e = raw_call(
        &mut alice,
        6,
        r#"{"id":{ID},"type":"cancel_local_invitation","invitation_id":999}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyEnd);
    // Frequency: 10 invitations per 5 s; the 11th is TOO_OFTEN and changes nothing.
    for n in 2..=9u64 {
        assert!(raw_call(&mut alice, 10 + n, &send(10 + n, n)).await.is_ok());
    }
    let e = raw_call(&mut alice, 30, &send(30, 30)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooOften);
    assert_eq!(server.hub.open_invitations(), 9);
    // bob answers one: it ends and alice hears it.
    assert!(
        raw_call(
            &mut bob,
            2,
            r#"{"id":{ID},"type":"refuse_remote_invitation","caller_id":"alice","invitation_id":2,"response":"no"}"#,
        )
        .await
        .is_ok()
    );
    let e = raw_call(
        &mut bob,
        3,
        r#"{"id":{ID},"type":"accept_remote_invitation","caller_id":"alice","invitation_id":2}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyEnd);
    assert_eq!(server.hub.open_invitations(), 8);
    server.shutdown().await;
}

#[tokio::test]
async fn a_caller_may_have_32_calls_open_and_no_more() {
    let mut config = test_config();
    config.limit_scale = 100; // the frequency limit is not under test here
    let server = start_server_with(config).await;
    let (mut alice, _) = raw_login(&server.url(), "alice").await;
    // The callees stay logged in for the whole test.
    let mut callees = Vec::new();
    for n in 0..40u64 {
        callees.push(raw_login(&server.url(), &format!("callee{n}")).await.0);
    }
    for n in 0..32u64 {
        let request = format!(
            r#"{{"id":{{ID}},"type":"send_local_invitation","invitation_id":{n},"callee_id":"callee{n}"}}"#
        );
        assert!(
            raw_call(&mut alice, 100 + n, &request).await.is_ok(),
            "call {n}"
        );
    }
    let e = raw_call(
        &mut alice,
        200,
        r#"{"id":{ID},"type":"send_local_invitation","invitation_id":99,"callee_id":"callee33"}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ExceedLimit);
    assert!(e.message.contains("32"), "{}", e.message);
    // One ends (canceled): there is room again.
    assert!(
        raw_call(
            &mut alice,
            201,
            r#"{"id":{ID},"type":"cancel_local_invitation","invitation_id":0}"#,
        )
        .await
        .is_ok()
    );
    assert!(
        raw_call(
            &mut alice,
            202,
            r#"{"id":{ID},"type":"send_local_invitation","invitation_id":99,"callee_id":"callee33"}"#,
        )
        .await
        .is_ok()
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_caller_back_after_the_grace_finds_its_calls_ended() {
    let server = start_server_with(paused_server_config()).await;
    let proxy = Proxy::start(server.addr).await;
    let (alice, mut ae) = login_with(&proxy.url(), "alice", paused_client_config()).await;
    let (_bob, mut be) = login_with(&server.url(), "bob", paused_client_config()).await;
    let call = alice.create_local_invitation("bob").unwrap();
    call.send().await.unwrap();
    let ringing = next_received(&mut be).await;
    proxy.block(true);
    proxy.cut();
    // The grace ends: bob's call stops ringing, as the caller went offline.
    let (_, event) = next_remote(&mut be, Duration::from_secs(120)).await;
    assert_eq!(
        event,
        RemoteInvitationEvent::Failure(RemoteReason::PeerOffline)
    );
    assert_eq!(ringing.state(), RS::Failure);
    // alice comes back to a fresh session: her client ends the call too.
    proxy.block(false);
    let (_, event) = next_local_end(&mut ae, Duration::from_secs(120)).await;
    assert_eq!(
        event,
        LocalInvitationEvent::Failure(LocalReason::NotLoggedin)
    );
    assert_eq!(call.state(), LS::Failure);
    server.shutdown().await;
}

#[tokio::test]
async fn a_send_held_through_a_dead_link_stays_idle_and_can_be_sent_later() {
    let server = start_server().await;
    let proxy = Proxy::start(server.addr).await;
    let config = rtm::client::ClientConfig {
        request_timeout: Duration::from_millis(300),
        ..fast_client_config()
    };
    let (alice, mut ae) = login_with(&proxy.url(), "alice", config).await;
    let (_bob, mut be) = login(&server.url(), "bob").await;
    proxy.block(true);
    proxy.cut();
    wait_state(&mut ae, rtm::client::ConnectionState::Reconnecting).await;
    let call = alice.create_local_invitation("bob").unwrap();
    // Never sent: the link did not come back in time.
    assert_eq!(kind(call.send().await), ErrorKind::Timeout);
    assert_eq!(call.state(), LS::Idle);
    proxy.block(false);
    wait_state(&mut ae, rtm::client::ConnectionState::Connected).await;
    call.send().await.unwrap();
    assert_eq!(next_received(&mut be).await.id(), call.id());
    server.shutdown().await;
}

/// A server that logs anyone in and then never answers again.
async fn start_mute_server() -> String {
    use futures_util::{SinkExt, StreamExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let reply = r#"{"type":"ok","id":0,"result":{"kind":"logged_in","uid":"alice","server_ts":1,"heartbeat_interval_ms":5000,"resumed":false,"dev_mode":true}}"#;
                if ws.next().await.is_some() {
                    let _ = ws.send(reply.to_string().into()).await;
                }
                // Read (and answer pings), reply to nothing.
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    url
}

#[tokio::test]
async fn a_send_whose_reply_never_comes_fails_as_unknown() {
    let url = start_mute_server().await;
    let config = rtm::client::ClientConfig {
        request_timeout: Duration::from_millis(300),
        ..fast_client_config()
    };
    let (alice, mut ae) = login_with(&url, "alice", config).await;
    let call = alice.create_local_invitation("bob").unwrap();
    assert_eq!(kind(call.send().await), ErrorKind::Timeout);
    let (_, event) = next_local(&mut ae, WAIT).await;
    assert_eq!(event, LocalInvitationEvent::Failure(LocalReason::Unknown));
    assert_eq!(call.state(), LS::Failure);
    assert_eq!(LocalReason::Unknown.code(), 99);
}
