//! How long the hub's one lock is held per operation, for the "many cores"
//! question: every request of every connection takes this mutex, so its
//! hold time bounds what any number of cores can do. A channel message to N
//! members holds it for the whole member loop (the JSON is encoded before);
//! a peer message and a join hold it briefly.
//!
//! Sessions are real hub sessions with real queues; each sample drains them
//! first, outside the timing, so queues never fill.
//!
//! Run: `cargo bench --bench hub` (divan prints min / median / mean).

use std::cell::RefCell;
use std::sync::Arc;

use divan::Bencher;
use rtm::protocol::{ChannelId, RtmMessage, SendMessageOptions, Uid};
use rtm::server::ServerConfig;
use rtm::server::hub::Hub;
use rtm::server::session::{Outbox, OutboxReceiver, QueueLimits, SessionHandle, next_session_id};
use rtm::server::store::MemoryStore;
use tokio_util::sync::CancellationToken;

fn main() {
    divan::main();
}

struct World {
    hub: Arc<Hub>,
    sessions: Vec<Arc<SessionHandle>>,
    queues: RefCell<Vec<OutboxReceiver>>,
    channel: ChannelId,
    _rt: tokio::runtime::Runtime,
}

impl World {
    /// `members` logged-in sessions (compact or not), all in one channel.
    fn new(members: usize, compact: bool) -> World {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let config = ServerConfig::default();
        let hub = Hub::new(
            config.hub.clone(),
            config.timing.clone(),
            Arc::new(MemoryStore::new()),
        );
        let channel: ChannelId = "bench".parse().expect("a channel id");
        let mut sessions = Vec::new();
        let mut queues = Vec::new();
        // Joins schedule member-count updates as tasks.
        let _in_runtime = rt.enter();
        for i in 0..members {
            let (tx, rx, _load) = Outbox::new(QueueLimits {
                frames: usize::MAX / 2,
                bytes: usize::MAX / 2,
            });
            let uid = Uid::new(format!("m{i}")).expect("a uid");
            let s = Arc::new(
                SessionHandle::new(next_session_id(), uid, tx, CancellationToken::new())
                    .with_compact_events(compact),
            );
            rt.block_on(hub.login(1, s.clone(), None));
            rt.block_on(hub.join(&s, &channel)).expect("join");
            sessions.push(s);
            queues.push(rx);
        }
        drop(_in_runtime);
        let w = World {
            hub,
            sessions,
            queues: RefCell::new(queues),
            channel,
            _rt: rt,
        };
        w.drain();
        w
    }

    fn drain(&self) {
        for q in self.queues.borrow_mut().iter_mut() {
            while q.try_recv().is_ok() {}
        }
    }
}

fn text() -> RtmMessage {
    RtmMessage::text("x".repeat(64))
}

/// One channel message of 64 bytes to every member: the lock is held for
/// the whole loop over the members.
#[divan::bench(args = [10, 100, 1000], sample_count = 200, sample_size = 20)]
fn channel_message(bencher: Bencher, members: usize) {
    let w = World::new(members, true);
    let from = w.sessions[0].uid.clone();
    bencher.with_inputs(|| w.drain()).bench_local_values(|()| {
        w.hub
            .send_channel_message(&from, &w.channel, text())
            .expect("sent")
    });
}

/// The same in the object form (clients that did not ask for compact).
#[divan::bench(args = [1000], sample_count = 200, sample_size = 20)]
fn channel_message_object_form(bencher: Bencher, members: usize) {
    let w = World::new(members, false);
    let from = w.sessions[0].uid.clone();
    bencher.with_inputs(|| w.drain()).bench_local_values(|()| {
        w.hub
            .send_channel_message(&from, &w.channel, text())
            .expect("sent")
    });
}

/// A live peer message between two online users.
#[divan::bench(sample_count = 200, sample_size = 100)]
fn peer_message(bencher: Bencher) {
    let w = World::new(2, true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let (from, to) = (w.sessions[0].uid.clone(), w.sessions[1].uid.clone());
    bencher.with_inputs(|| w.drain()).bench_local_values(|()| {
        rt.block_on(
            w.hub
                .send_peer_message(&from, &to, &text(), SendMessageOptions::default()),
        )
        .expect("sent")
    });
}
