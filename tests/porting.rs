//! Porting from Agora RTM: errors carry the reference's numbers, the argument
//! checks the reference makes, `update_config` without set-up, and
//! `docs/PORTING.md` kept in step with the code. Real server on 127.0.0.1:0.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use rtm::client::{
    CallFamily, ClientEvent, ConnectionState, ErrorKind, RtmClient, RtmMessage, VERSION,
};
use rtm::protocol::ServerFrame;

const PORTING_MD: &str = include_str!("../docs/PORTING.md");

/// The error of a raw request frame, or a panic naming what came instead.
async fn raw_error(ws: &mut RawWs, frame: &str) -> rtm::protocol::ErrorBody {
    raw_send(ws, frame).await;
    loop {
        match raw_recv(ws).await.expect("a reply") {
            ServerFrame::Error { error, .. } => return error,
            ServerFrame::Event { .. } => continue,
            other => panic!("expected an error for {frame}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn each_failure_gives_the_number_of_its_call_family() {
    let server = start_server().await;
    let url = server.url();

    // logout with no login: LOGOUT_ERR_USER_NOT_LOGGED_IN (102).
    let (idle, _ie) = RtmClient::new(&url, fast_client_config());
    let err = idle.logout().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn);
    assert_eq!(err.agora_code(CallFamily::Logout), Some(102));

    let (alice, _ae) = login(&url, "alice").await;

    // A malformed peer id: PEER_MESSAGE_ERR_INVALID_USERID (6).
    let err = alice
        .send_message_to_peer(RtmMessage::text("hi"), "no/slash", Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUserId);
    assert_eq!(err.agora_code(CallFamily::PeerMessage), Some(6));

    // An empty message: PEER_MESSAGE_ERR_INVALID_MESSAGE (7).
    let err = alice
        .send_message_to_peer(RtmMessage::text(""), "bob", Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.agora_code(CallFamily::PeerMessage), Some(7));

    // 33 channels: GET_CHANNEL_MEMBER_COUNT_ERR_EXCEED_LIMIT (5), from the
    // SDK's own check and from the server's.
    let names: Vec<String> = (0..33).map(|i| format!("c{i}")).collect();
    let ids: Vec<&str> = names.iter().map(String::as_str).collect();
    let err = alice.get_channel_member_count(&ids).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExceedLimit);
    assert_eq!(err.agora_code(CallFamily::GetChannelMemberCount), Some(5));
    let (mut raw, _) = raw_login(&url, "raw").await;
    let list = serde_json::to_string(&names).unwrap();
    let body = raw_error(
        &mut raw,
        &format!(r#"{{"id":2,"type":"get_channel_member_count","channel_ids":{list}}}"#),
    )
    .await;
    assert_eq!(body.kind, ErrorKind::ExceedLimit);
    assert_eq!(body.code, 201);

    // Joining the same channel a third time within 5 s:
    // JOIN_CHANNEL_ERR_JOIN_SAME_CHANNEL_TOO_OFTEN (8), not TOO_OFTEN (7).
    let room = alice.create_channel("room").unwrap();
    room.join().await.unwrap();
    room.leave().await.unwrap();
    room.join().await.unwrap();
    room.leave().await.unwrap();
    let err = room.join().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::JoinSameChannelTooOften);
    assert_eq!(err.agora_code(CallFamily::JoinChannel), Some(8));
    assert!(err.to_string().contains("joins of this channel"), "{err}");

    // Another channel is still free to join: only the same one is limited.
    let other = alice.create_channel("other").unwrap();
    other.join().await.unwrap();

    // Leaving a channel one is not in: LEAVE_CHANNEL_ERR_NOT_IN_CHANNEL (3).
    let body = raw_error(&mut raw, r#"{"id":3,"type":"leave","channel_id":"room"}"#).await;
    assert_eq!(body.kind, ErrorKind::NotInChannel);
    assert_eq!(body.kind.agora_code(CallFamily::LeaveChannel), Some(3));

    server.shutdown().await;
}

#[tokio::test]
async fn key_lists_are_checked_as_the_reference_checks_them() {
    let server = start_server().await;
    let url = server.url();
    let (mut raw, _) = raw_login(&url, "raw").await;
    let many: Vec<String> = (0..33).map(|i| format!("k{i}")).collect();
    let many_json = serde_json::to_string(&many).unwrap();

    let refused = [
        r#"{"id":2,"type":"get_user_attributes","user_id":"raw","keys":[]}"#.to_string(),
        format!(r#"{{"id":3,"type":"get_user_attributes","user_id":"raw","keys":{many_json}}}"#),
        r#"{"id":4,"type":"delete_local_user_attributes_by_keys","keys":[]}"#.to_string(),
        r#"{"id":5,"type":"get_channel_attributes","channel_id":"c","keys":[]}"#.to_string(),
        format!(
            r#"{{"id":6,"type":"get_channel_attributes","channel_id":"c","keys":{many_json}}}"#
        ),
        r#"{"id":7,"type":"delete_channel_attributes_by_keys","channel_id":"c","keys":[]}"#
            .to_string(),
    ];
    for frame in &refused {
        let body = raw_error(&mut raw, frame).await;
        assert_eq!(body.kind, ErrorKind::InvalidArgument, "{frame}");
        assert_eq!(
            body.kind.agora_code(CallFamily::AttributeOperation),
            Some(3)
        );
    }
    // 32 keys, and no keys at all (null: every attribute), are fine.
    let thirty_two = serde_json::to_string(&many[..32]).unwrap();
    for frame in [
        format!(r#"{{"id":8,"type":"get_user_attributes","user_id":"raw","keys":{thirty_two}}}"#),
        r#"{"id":9,"type":"get_user_attributes","user_id":"raw","keys":null}"#.to_string(),
        r#"{"id":10,"type":"get_channel_attributes","channel_id":"c","keys":null}"#.to_string(),
    ] {
        raw_send(&mut raw, &frame).await;
        assert!(
            matches!(raw_recv(&mut raw).await, Some(ServerFrame::Ok { .. })),
            "{frame}"
        );
    }

    // The SDK refuses the same before sending anything.
    let (alice, _ae) = login(&url, "alice").await;
    let keys: Vec<&str> = many.iter().map(String::as_str).collect();
    for err in [
        alice
            .get_user_attributes_by_keys("raw", &[])
            .await
            .unwrap_err(),
        alice
            .get_user_attributes_by_keys("raw", &keys)
            .await
            .unwrap_err(),
        alice
            .delete_local_user_attributes_by_keys(&[])
            .await
            .unwrap_err(),
        alice
            .get_channel_attributes_by_keys("c", &[])
            .await
            .unwrap_err(),
        alice
            .get_channel_attributes_by_keys("c", &keys)
            .await
            .unwrap_err(),
        alice
            .delete_channel_attributes_by_keys("c", &[], Default::default())
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, rtm::client::RtmError::Local(_)), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    server.shutdown().await;
}

/// The reference documents no special case for a peer message to oneself;
/// rtm treats the sender as any online peer: the message comes back as
/// `MessageFromPeer` from one's own uid and counts as received.
#[tokio::test]
async fn a_message_to_yourself_is_delivered_like_to_any_online_peer() {
    let server = start_server().await;
    let (alice, mut events) = login(&server.url(), "alice").await;
    let sent = alice
        .send_message_to_peer(
            RtmMessage::text("note to self"),
            "alice",
            Default::default(),
        )
        .await
        .unwrap();
    assert!(sent.has_peer_received);
    assert!(!sent.cached);
    let (message, from) = wait_for(&mut events, |e| match e {
        ClientEvent::MessageFromPeer {
            message, peer_id, ..
        } => Some((message.clone(), peer_id.clone())),
        _ => None,
    })
    .await;
    assert_eq!(message, RtmMessage::text("note to self"));
    assert_eq!(from.as_str(), "alice");
    server.shutdown().await;
}

/// Records the target and level of every `tracing` event on this thread.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(String, tracing::Level)>>>);

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        if let Ok(mut seen) = self.0.lock() {
            seen.push((meta.target().to_string(), *meta.level()));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Recorder {
    /// Takes what the SDK emitted so far.
    fn take_sdk_events(&self) -> Vec<(String, tracing::Level)> {
        let mut seen = self.0.lock().unwrap();
        let sdk = seen
            .iter()
            .filter(|(target, _)| target.starts_with("rtm::client"))
            .cloned()
            .collect();
        seen.clear();
        sdk
    }
}

/// A server going down is announced with `server_shutdown`, which the SDK
/// logs at INFO and then reconnects: one INFO event, then RECONNECTING.
async fn shutdown_seen_by(
    config_filter: &str,
    recorder: &Recorder,
) -> Vec<(String, tracing::Level)> {
    let server = start_server().await;
    let (client, mut events) = login(&server.url(), "watcher").await;
    // No hook in the config: the SDK's own level does the work.
    client.update_config(config_filter).unwrap();
    recorder.take_sdk_events();
    server.shutdown().await;
    wait_state(&mut events, ConnectionState::Reconnecting).await;
    let seen = recorder.take_sdk_events();
    client.logout().await.unwrap();
    seen
}

// One thread (the default runtime of `tokio::test`), so the connection task
// emits where the recorder is the default subscriber.
#[tokio::test(flavor = "current_thread")]
async fn update_config_sets_what_the_sdk_emits_without_a_hook() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());

    let quiet = shutdown_seen_by("off", &recorder).await;
    assert!(quiet.is_empty(), "\"off\" silences the SDK: {quiet:?}");

    let loud = shutdown_seen_by("warn,rtm=info", &recorder).await;
    assert!(
        loud.iter()
            .any(|(t, l)| t == "rtm::client::connection" && *l == tracing::Level::INFO),
        "INFO events come through at \"rtm=info\": {loud:?}"
    );

    let warn_only = shutdown_seen_by("warn", &recorder).await;
    assert!(
        warn_only.iter().all(|(_, l)| *l <= tracing::Level::WARN),
        "{warn_only:?}"
    );
    // Leave the process-wide level as it was found.
    let (c, _e) = RtmClient::new("ws://127.0.0.1:1", Default::default());
    c.update_config("trace").unwrap();
}

#[test]
fn version_is_the_crates() {
    assert_eq!(VERSION, env!("CARGO_PKG_VERSION"));
    assert!(!VERSION.is_empty());
}

// ------------------------------------------------------ docs/PORTING.md drift

/// Every method and event of the reference's `RtmClient` and `RtmChannel`
/// (Agora RTM Web SDK 1.x) has a row in PORTING.md.
#[test]
fn porting_guide_has_a_row_for_every_reference_method_and_event() {
    let names = [
        // RtmClient methods
        "addOrUpdateChannelAttributes",
        "addOrUpdateLocalUserAttributes",
        "clearChannelAttributes",
        "clearLocalUserAttributes",
        "createChannel",
        "createInstance",
        "createLocalInvitation",
        "createMediaMessageByUploading",
        "createMessage",
        "deleteChannelAttributesByKeys",
        "deleteLocalUserAttributesByKeys",
        "downloadMedia",
        "enableLogUpload",
        "getChannelAttributes",
        "getChannelAttributesByKeys",
        "getChannelMemberCount",
        "getUserAttributes",
        "getUserAttributesByKeys",
        "login",
        "logout",
        "queryPeersBySubscriptionOption",
        "queryPeersOnlineStatus",
        "renewToken",
        "sendMessageToPeer",
        "setLocalUserAttributes",
        "setParameters",
        "subscribePeersOnlineStatus",
        "unsubscribePeersOnlineStatus",
        "updateConfig",
        // RtmClient events
        "ConnectionStateChanged",
        "MessageFromPeer",
        "PeersOnlineStatusChanged",
        "RemoteInvitationReceived",
        "TokenExpired",
        "TokenPrivilegeWillExpire",
        // RtmChannel methods and events
        "join",
        "leave",
        "sendMessage",
        "getMembers",
        "ChannelMessage",
        "MemberJoined",
        "MemberLeft",
        "MemberCountUpdated",
        "AttributesUpdated",
        // Invitations
        "LocalInvitation",
        "RemoteInvitation",
    ];
    for name in names {
        assert!(
            PORTING_MD.lines().any(|l| l.starts_with('|')
                && (l.contains(&format!("`{name}")) || l.contains(&format!(".{name}")))),
            "PORTING.md has no table row for `{name}`"
        );
    }
}

/// The error-number table of PORTING.md is exactly what `agora_code` says:
/// rows `| Family | KIND | number |`.
#[test]
fn porting_guide_error_numbers_are_the_codes() {
    let families: BTreeMap<String, CallFamily> = CallFamily::ALL
        .iter()
        .map(|f| (format!("{f:?}"), *f))
        .collect();
    let mut seen = BTreeMap::<String, usize>::new();
    for line in PORTING_MD.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", family, kind, number, reference name, ""
        if cells.len() < 5 {
            continue;
        }
        let Some(family) = families.get(cells[1].trim_matches('`')) else {
            continue;
        };
        let kind: ErrorKind = serde_json::from_str(&format!("\"{}\"", cells[2].trim_matches('`')))
            .unwrap_or_else(|_| panic!("not a kind in row {line}"));
        let number: u32 = cells[3]
            .parse()
            .unwrap_or_else(|_| panic!("not a number in row {line}"));
        assert_eq!(kind.agora_code(*family), Some(number), "row {line}");
        *seen.entry(cells[1].to_string()).or_default() += 1;
    }
    for family in families.keys() {
        assert!(
            seen.contains_key(&format!("`{family}`")),
            "PORTING.md has no error rows for {family}: {seen:?}"
        );
    }
}
