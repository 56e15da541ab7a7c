//! Files and images over real sockets (spec §9, PROTOCOL.md §16): upload,
//! send, download, byte for byte; the limits (32 MiB, quotas, 9 transfers),
//! expiry, cancellation and a broken link resumed — and that nothing is
//! left behind when a transfer fails.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rtm::client::{
    CallFamily, ClientEvent, ErrorKind, MAX_MEDIA_BYTES, MediaMessageOptions, MediaSource,
    MediaType, RtmClient, RtmError, RtmMessage, SendMessageOptions, TransferHandler,
};
use rtm::server::{MemoryStore, ServerConfig, ServerHandle};

/// Bytes that differ everywhere (a repeated pattern would hide misplaced chunks).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A server whose files go to `dir`.
async fn media_server(dir: &TempDir, tune: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let mut config = test_config();
    config.hub.media.dir = Some(dir.path().join("media"));
    tune(&mut config);
    start_server_on("127.0.0.1:0", config, Arc::new(MemoryStore::new())).await
}

fn file_options() -> MediaMessageOptions {
    MediaMessageOptions::default()
}

async fn upload(client: &RtmClient, bytes: Vec<u8>, name: &str) -> Result<RtmMessage, RtmError> {
    client
        .create_media_message_by_uploading(
            MediaSource::Bytes(bytes),
            MediaMessageOptions {
                file_name: Some(name.into()),
                ..file_options()
            },
            None,
        )
        .await
}

#[tokio::test]
async fn a_file_sent_to_a_peer_is_saved_byte_for_byte() {
    let dir = TempDir::new("media-peer");
    let server = media_server(&dir, |_| {}).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let (bob, mut be) = login(&server.url(), "bob").await;

    let bytes = pattern(3 * 1024 * 1024 + 17, 1);
    let source = dir.path().join("report.pdf");
    std::fs::write(&source, &bytes).unwrap();
    let up = TransferHandler::new();
    let message = alice
        .create_media_message_by_uploading(
            MediaSource::Path(source),
            MediaMessageOptions {
                description: "Q3 numbers".into(),
                ..file_options()
            },
            Some(&up),
        )
        .await
        .unwrap();
    assert_eq!(up.progress().current, bytes.len() as u64);
    assert_eq!(up.progress().total, bytes.len() as u64);
    let RtmMessage::File {
        media_id,
        size,
        file_name,
        description,
        ..
    } = &message
    else {
        panic!("expected a FILE message, got {message:?}");
    };
    assert_eq!(*size, bytes.len() as u64);
    assert_eq!(file_name, "report.pdf", "the source's name by default");
    assert_eq!(description, "Q3 numbers");
    alice
        .send_message_to_peer(message.clone(), "bob", SendMessageOptions::default())
        .await
        .unwrap();

    let got = wait_for(&mut be, |e| match e {
        ClientEvent::MessageFromPeer { message, .. } => Some(message.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, message, "bob sees the name, size and id");
    let dest = dir.path().join("saved.pdf");
    let down = TransferHandler::new();
    let n = bob
        .download_media_to_file(media_id, &dest, Some(&down))
        .await
        .unwrap();
    assert_eq!(n, bytes.len() as u64);
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        bytes,
        "saved bytes are identical"
    );
    assert_eq!(down.progress().current, bytes.len() as u64);
    assert!(!dir.path().join("saved.pdf.part").exists());
    // And into memory, as the reference's downloadMedia.
    assert_eq!(bob.download_media(media_id, None).await.unwrap(), bytes);
    server.shutdown().await;
}

#[tokio::test]
async fn a_32_mib_file_goes_through_a_channel_with_progress_on_both_sides() {
    let dir = TempDir::new("media-32");
    let server = media_server(&dir, |_| {}).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let (bob, mut be) = login(&server.url(), "bob").await;
    let room_a = alice.create_channel("room").unwrap();
    room_a.join().await.unwrap();
    let room_b = bob.create_channel("room").unwrap();
    room_b.join().await.unwrap();

    let bytes = pattern(MAX_MEDIA_BYTES as usize, 2);
    let up = TransferHandler::new();
    let mut ups = up.watch();
    let total = bytes.len() as u64;
    let watcher = tokio::spawn(async move {
        let mut between = 0u32;
        while ups.changed().await.is_ok() {
            let now = ups.borrow().current;
            if now > 0 && now < total {
                between += 1;
            }
        }
        between
    });
    let message = alice
        .create_media_message_by_uploading(
            MediaSource::Bytes(bytes.clone()),
            MediaMessageOptions {
                file_name: Some("big.bin".into()),
                ..file_options()
            },
            Some(&up),
        )
        .await
        .unwrap();
    drop(up);
    assert!(
        watcher.await.unwrap() >= 2,
        "progress reported along the way"
    );
    room_a.send_message(message.clone()).await.unwrap();
    let got = wait_for(&mut be, |e| match e {
        ClientEvent::Channel {
            event: rtm::client::ChannelEvent::ChannelMessage { message, .. },
            ..
        } => Some(message.clone()),
        _ => None,
    })
    .await;
    let down = TransferHandler::new();
    let dest = dir.path().join("big.bin");
    bob.download_media_to_file(got.media_id().unwrap(), &dest, Some(&down))
        .await
        .unwrap();
    assert_eq!(down.progress().current, MAX_MEDIA_BYTES);
    assert!(std::fs::read(&dest).unwrap() == bytes, "32 MiB identical");
    server.shutdown().await;
}

/// The smallest PNG header imagesize reads: signature and IHDR.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png.extend(pattern(1000, 3));
    png
}

#[tokio::test]
async fn an_image_knows_its_size_and_carries_its_thumbnail() {
    let dir = TempDir::new("media-image");
    let server = media_server(&dir, |_| {}).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let image = png_header(640, 480);
    let thumb = png_header(64, 48);
    let message = alice
        .create_media_message_by_uploading(
            MediaSource::Bytes(image.clone()),
            MediaMessageOptions {
                message_type: MediaType::Image,
                file_name: Some("cat.png".into()),
                thumbnail: thumb.clone(),
                thumbnail_width: 64,
                thumbnail_height: 48,
                ..file_options()
            },
            None,
        )
        .await
        .unwrap();
    match &message {
        RtmMessage::Image {
            width,
            height,
            thumbnail,
            size,
            ..
        } => {
            assert_eq!((*width, *height), (640, 480), "found from the PNG header");
            assert_eq!(thumbnail, &thumb);
            assert_eq!(*size, image.len() as u64);
        }
        other => panic!("expected an IMAGE, got {other:?}"),
    }
    assert_eq!(
        alice
            .download_media(message.media_id().unwrap(), None)
            .await
            .unwrap(),
        image
    );
    server.shutdown().await;
}

#[tokio::test]
async fn oversize_files_and_metadata_are_refused_before_anything_is_sent() {
    let dir = TempDir::new("media-big");
    let server = media_server(&dir, |_| {}).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let e = upload(&alice, vec![0; MAX_MEDIA_BYTES as usize + 1], "x")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SizeOverflow);
    assert_eq!(e.agora_code(CallFamily::UploadMedia), Some(4));
    assert!(e.to_string().contains("32 MB"), "{e}");
    // A file on disk is refused by its size, before it is read.
    let path = dir.path().join("huge.bin");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_MEDIA_BYTES + 1).unwrap();
    let e = alice
        .create_media_message_by_uploading(MediaSource::Path(path), file_options(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SizeOverflow);
    let e = alice
        .create_media_message_by_uploading(
            MediaSource::Bytes(vec![1; 10]),
            MediaMessageOptions {
                thumbnail: vec![0; 33 * 1024],
                ..file_options()
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = upload(&alice, vec![1; 10], "../etc/passwd")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(server.hub.media().file_count(), 0, "nothing left behind");
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_and_expired_ids_are_not_exist() {
    let dir = TempDir::new("media-expire");
    let server = media_server(&dir, |c| c.hub.media.ttl = Duration::from_millis(50)).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let e = alice
        .download_media("0123456789abcdef0123456789abcdef", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotExist);
    assert_eq!(e.agora_code(CallFamily::DownloadMedia), Some(4));
    let e = alice.download_media("not-an-id", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);

    let message = upload(&alice, pattern(1000, 4), "a.txt").await.unwrap();
    let id = message.media_id().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.hub.media().sweep();
    let dest = dir.path().join("a.txt");
    let e = alice
        .download_media_to_file(&id, &dest, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotExist);
    assert!(e.to_string().contains("7 days"), "{e}");
    assert!(!dest.exists() && !dir.path().join("a.txt.part").exists());
    // Deleted from disk in the background (the sweeper does not wait on
    // the disk): soon, not at once.
    let media = dir.path().join("media");
    let deadline = tokio::time::Instant::now() + WAIT;
    let left = loop {
        let left: Vec<_> = std::fs::read_dir(&media).unwrap().collect();
        if left.is_empty() || tokio::time::Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        left.is_empty(),
        "the expired file is deleted from disk: {left:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_canceled_upload_or_download_leaves_nothing_behind() {
    let dir = TempDir::new("media-cancel");
    let server = media_server(&dir, |_| {}).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let up = TransferHandler::new();
    let mut progress = up.watch();
    let canceler = {
        let up = up.clone();
        tokio::spawn(async move {
            while progress.changed().await.is_ok() {
                if progress.borrow().current > 1024 * 1024 {
                    up.cancel();
                    return;
                }
            }
        })
    };
    let e = alice
        .create_media_message_by_uploading(
            MediaSource::Bytes(pattern(16 * 1024 * 1024, 5)),
            file_options(),
            Some(&up),
        )
        .await
        .unwrap_err();
    canceler.await.unwrap();
    assert_eq!(e.kind(), ErrorKind::Interrupted);
    assert_eq!(e.agora_code(CallFamily::UploadMedia), Some(6));
    // The server deletes what it had once it hears of the cancel.
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.hub.media().file_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.hub.media().file_count(), 0);
    assert_eq!(server.hub.media().stored_bytes(), 0);

    let message = upload(&alice, pattern(16 * 1024 * 1024, 6), "x.bin")
        .await
        .unwrap();
    let down = TransferHandler::new();
    down.cancel();
    let dest = dir.path().join("x.bin");
    let e = alice
        .download_media_to_file(message.media_id().unwrap(), &dest, Some(&down))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Interrupted);
    assert!(!dest.exists() && !dir.path().join("x.bin.part").exists());
    server.shutdown().await;
}

#[tokio::test]
async fn an_upload_whose_link_breaks_resumes_where_it_stopped() {
    let dir = TempDir::new("media-resume");
    let server = media_server(&dir, |_| {}).await;
    let proxy = Proxy::start(server.addr).await;
    let (alice, _ae) = login(&proxy.url(), "alice").await;
    let (bob, _be) = login(&server.url(), "bob").await;
    let bytes = pattern(12 * 1024 * 1024, 7);
    let up = TransferHandler::new();
    let mut progress = up.watch();
    // Cuts the link past 4 MiB, then notes the lowest progress seen after:
    // a restart from zero would show below what was already sent.
    let cutter = tokio::spawn(async move {
        while progress.changed().await.is_ok() {
            if progress.borrow().current > 4 * 1024 * 1024 {
                proxy.cut();
                break;
            }
        }
        let mut lowest = u64::MAX;
        while progress.changed().await.is_ok() {
            lowest = lowest.min(progress.borrow().current);
        }
        (proxy, lowest)
    });
    let message = alice
        .create_media_message_by_uploading(
            MediaSource::Bytes(bytes.clone()),
            file_options(),
            Some(&up),
        )
        .await
        .unwrap();
    drop(up);
    let (_proxy, lowest_after_cut) = cutter.await.unwrap();
    assert!(
        lowest_after_cut > 1024 * 1024 && lowest_after_cut != u64::MAX,
        "resumed from what the server had, not from zero (lowest after the cut: {lowest_after_cut})"
    );
    assert_eq!(
        bob.download_media(message.media_id().unwrap(), None)
            .await
            .unwrap(),
        bytes,
        "the resumed upload is whole"
    );
    assert_eq!(server.hub.media().file_count(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn quotas_refuse_an_upload_with_a_clear_error() {
    let dir = TempDir::new("media-quota");
    let server = media_server(&dir, |c| c.hub.media.per_user_bytes = 1024 * 1024).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    upload(&alice, pattern(600 * 1024, 8), "a").await.unwrap();
    let e = upload(&alice, pattern(600 * 1024, 9), "b")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
    assert!(e.to_string().contains("quota"), "{e}");
    // Another user has a quota of their own.
    let (bob, _be) = login(&server.url(), "bob").await;
    upload(&bob, pattern(600 * 1024, 10), "c").await.unwrap();
    assert_eq!(server.hub.media().file_count(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn at_most_nine_transfers_at_once_and_tickets_are_single_use() {
    let dir = TempDir::new("media-conc");
    let server = media_server(&dir, |_| {}).await;
    let (mut alice, _) = raw_login(&server.url(), "alice").await;
    let sha = "0".repeat(64);
    for n in 0..10u64 {
        raw_send(
            &mut alice,
            &format!(
                r#"{{"id":{},"type":"request_media_upload","media_type":"FILE","size":10,"sha256":"{sha}","file_name":"f{n}"}}"#,
                10 + n
            ),
        )
        .await;
        let reply = raw_recv(&mut alice).await.unwrap();
        if n < 9 {
            assert!(
                matches!(reply, rtm::protocol::ServerFrame::Ok { .. }),
                "ticket {n}: {reply:?}"
            );
        } else {
            match reply {
                rtm::protocol::ServerFrame::Error { error, .. } => {
                    assert_eq!(error.kind, ErrorKind::ConcurrencyLimitExceeded)
                }
                other => panic!("expected CONCURRENCY_LIMIT_EXCEEDED, got {other:?}"),
            }
        }
    }
    // A made-up ticket opens nothing.
    let mut ws = raw_connect(&format!("{}/media", server.url())).await;
    raw_send(&mut ws, r#"{"ticket":"00000000000000000000000000000000"}"#).await;
    let text = loop {
        use futures_util::StreamExt;
        match ws.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => break t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("expected an error frame, got {other:?}"),
        }
    };
    assert!(
        text.contains("\"type\":\"error\"") && text.contains("ticket"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn files_survive_a_server_restart() {
    let dir = TempDir::new("media-restart");
    let server = media_server(&dir, |_| {}).await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let bytes = pattern(200_000, 11);
    let message = upload(&alice, bytes.clone(), "keep.bin").await.unwrap();
    drop(alice);
    server.shutdown().await;
    let server = media_server(&dir, |_| {}).await;
    let (bob, _be) = login(&server.url(), "bob").await;
    assert_eq!(
        bob.download_media(message.media_id().unwrap(), None)
            .await
            .unwrap(),
        bytes
    );
    server.shutdown().await;
}
