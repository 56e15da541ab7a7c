//! The bare reference server (`rtm bench --bare-server ADDR`): tokio-tungstenite
//! as its users run it — tungstenite's default configuration (its 128 KiB
//! write buffer, default read buffer), `TCP_NODELAY`, a bounded queue per
//! connection drained by a writer that feeds each frame and flushes once per
//! batch — and no application logic beyond relaying. None of rtm's own
//! settings (small read buffer, eager writes) are imposed on it: a reference
//! that carries our handicaps proves nothing.
//!
//! - the URL path names the connection (`/alice`); it is greeted with `hi`;
//! - `* text` goes to every other connection, the same bytes shared;
//! - `@bob text` goes to connection `bob`.
//!
//! Frames are relayed unchanged. It is the physical-limit reference for this
//! stack. For the bench tool's own tests it can also misbehave on purpose:
//! drop or repeat every n-th delivery.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_util::sync::CancellationToken;

/// Deliberate misbehaviour, for proving the bench counts right.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Drop every n-th delivery (0: never).
    pub drop_every: u64,
    /// Send every n-th delivery twice (0: never).
    pub dup_every: u64,
}

/// Frames a connection may have queued before it is dropped as a slow consumer
/// (as rtm's `queue_frames` in the bench config).
const QUEUE_FRAMES: usize = 65_536;

struct Relay {
    /// Every connection's queue, by connection number; the lock is held only
    /// to look up or to hand a frame to each queue (`try_send` never waits).
    by_id: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    by_name: Mutex<HashMap<String, (u64, mpsc::Sender<Message>)>>,
    next_id: AtomicU64,
    deliveries: AtomicU64,
    faults: Faults,
}

impl Relay {
    fn deliver(&self, to: &mpsc::Sender<Message>, m: &Message) {
        let n = self.deliveries.fetch_add(1, Ordering::Relaxed) + 1;
        let f = self.faults;
        if f.drop_every > 0 && n.is_multiple_of(f.drop_every) {
            return;
        }
        let _ = to.try_send(m.clone());
        if f.dup_every > 0 && n.is_multiple_of(f.dup_every) {
            let _ = to.try_send(m.clone());
        }
    }
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, faults: Faults, shutdown: CancellationToken) {
    let relay = Arc::new(Relay {
        by_id: Mutex::new(HashMap::new()),
        by_name: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        deliveries: AtomicU64::new(0),
        faults,
    });
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, relay.clone(), shutdown.clone()));
            }
            // Out of file descriptors and the like: wait a little, go on.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

async fn connection(stream: TcpStream, relay: Arc<Relay>, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let mut name = String::new();
    #[allow(clippy::result_large_err)] // the signature tungstenite's callback wants
    let callback = |req: &Request, resp: Response| {
        name = req.uri().path().trim_start_matches('/').to_string();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE_FRAMES);
    let id = relay.next_id.fetch_add(1, Ordering::Relaxed);
    relay
        .by_id
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, tx.clone());
    if !name.is_empty() {
        relay
            .by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), (id, tx.clone()));
    }
    let _ = tx.try_send(Message::text("hi"));
    // The writer: feed what is ready, flush once per batch.
    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(256);
        while rx.recv_many(&mut batch, 256).await > 0 {
            for m in batch.drain(..) {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = stream.next() => m,
        };
        let Some(Ok(msg)) = msg else { break };
        let text = match &msg {
            Message::Text(t) => t.as_str(),
            Message::Close(_) => break,
            _ => continue,
        };
        if text.starts_with("* ") {
            let all = relay.by_id.lock().unwrap_or_else(|e| e.into_inner());
            for (other, q) in all.iter() {
                if *other != id {
                    relay.deliver(q, &msg);
                }
            }
        } else if let Some(rest) = text.strip_prefix('@') {
            let to = rest.split(' ').next().unwrap_or("");
            let q = relay
                .by_name
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(to)
                .map(|(_, q)| q.clone());
            if let Some(q) = q {
                relay.deliver(&q, &msg);
            }
        }
    }
    relay
        .by_id
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    {
        let mut names = relay.by_name.lock().unwrap_or_else(|e| e.into_inner());
        if names.get(&name).is_some_and(|(i, _)| *i == id) {
            names.remove(&name);
        }
    }
    drop(tx);
    let _ = writer.await;
}
