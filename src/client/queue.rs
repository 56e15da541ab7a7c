//! The bounded event queue behind [`ClientEvents`](super::ClientEvents) and
//! [`ChannelEvents`](super::ChannelEvents).
//!
//! Why not a tokio channel: a bounded `mpsc` can only refuse the *newest*
//! event when full, and would have to block the connection task (which also
//! answers requests and heartbeats) or drop silently. Here the connection
//! task never waits: when the application falls behind by `capacity` events
//! the *oldest* droppable event goes, the count is kept, and the reader gets
//! one `Lagged { dropped }` item before what is left — as tokio's `broadcast`
//! reports lag. Rare, state-bearing events (connection state, token, restore
//! reports) are dropped only when nothing else is left to drop.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// An item type of an event queue: how a lag is reported and what may go.
pub(super) trait QueueItem: Sized {
    /// The item that stands for `dropped` events the reader never got.
    fn lagged(dropped: u64) -> Self;
    /// False for the rare events that carry state the application must not
    /// miss; those are evicted only when the queue holds nothing else.
    fn droppable(&self) -> bool;
}

/// One queue: any number of producers (behind the SDK), one reader.
pub(super) struct EventQueue<T> {
    /// Locked only to push or pop one item, never across an `.await`.
    state: Mutex<QueueState<T>>,
    /// Wakes the reader. `notify_one` keeps a permit when the reader is not
    /// waiting yet, so a push between its check and its wait is not lost.
    ready: Notify,
    /// Most items held at once (at least 1).
    capacity: usize,
}

struct QueueState<T> {
    items: VecDeque<T>,
    /// Evicted since the reader last heard of it.
    dropped: u64,
    /// No more items will come (the client or channel is gone).
    closed: bool,
    /// The reader was dropped: pushing is pointless.
    reader_gone: bool,
}

/// What the reader finds.
enum Next<T> {
    Item(T),
    Empty,
    Closed,
}

impl<T: QueueItem> EventQueue<T> {
    pub(super) fn new(capacity: usize) -> Self {
        EventQueue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                dropped: 0,
                closed: false,
                reader_gone: false,
            }),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item`, evicting the oldest droppable one when full. Gives the
    /// item back when nobody reads this queue any more (or it is closed), so
    /// the caller can route it elsewhere.
    pub(super) fn push(&self, item: T) -> Result<(), T> {
        {
            let mut st = self.lock();
            if st.reader_gone || st.closed {
                return Err(item);
            }
            if st.items.len() >= self.capacity {
                let at = st.items.iter().position(T::droppable).unwrap_or(0);
                st.items.remove(at);
                st.dropped += 1;
            }
            st.items.push_back(item);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// No more items: the reader gets what is queued, then `None`.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The reader is gone; what is queued is freed at once.
    pub(super) fn drop_reader(&self) {
        let mut st = self.lock();
        st.reader_gone = true;
        st.items.clear();
    }

    pub(super) fn has_reader(&self) -> bool {
        !self.lock().reader_gone
    }

    fn next(&self) -> Next<T> {
        let mut st = self.lock();
        if st.dropped > 0 {
            let n = std::mem::take(&mut st.dropped);
            return Next::Item(T::lagged(n));
        }
        match st.items.pop_front() {
            Some(item) => Next::Item(item),
            None if st.closed => Next::Closed,
            None => Next::Empty,
        }
    }

    pub(super) async fn recv(&self) -> Option<T> {
        loop {
            match self.next() {
                Next::Item(item) => return Some(item),
                Next::Closed => return None,
                Next::Empty => self.ready.notified().await,
            }
        }
    }

    pub(super) fn try_recv(&self) -> Option<T> {
        match self.next() {
            Next::Item(item) => Some(item),
            Next::Empty | Next::Closed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Ev {
        Msg(u32),
        State,
        Lagged(u64),
    }

    impl QueueItem for Ev {
        fn lagged(dropped: u64) -> Self {
            Ev::Lagged(dropped)
        }
        fn droppable(&self) -> bool {
            matches!(self, Ev::Msg(_))
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_droppable_and_says_how_many() {
        let q = EventQueue::new(3);
        q.push(Ev::State).unwrap();
        for i in 0..5 {
            q.push(Ev::Msg(i)).unwrap();
        }
        assert_eq!(q.try_recv(), Some(Ev::Lagged(3)));
        assert_eq!(q.try_recv(), Some(Ev::State), "state is kept");
        assert_eq!(q.try_recv(), Some(Ev::Msg(3)));
        assert_eq!(q.try_recv(), Some(Ev::Msg(4)));
        assert_eq!(q.try_recv(), None);
    }

    #[tokio::test]
    async fn a_closed_queue_drains_then_ends_and_a_gone_reader_refuses() {
        let q = EventQueue::new(4);
        q.push(Ev::Msg(1)).unwrap();
        q.close();
        assert_eq!(q.recv().await, Some(Ev::Msg(1)));
        assert_eq!(q.recv().await, None);
        let q = EventQueue::new(4);
        q.drop_reader();
        assert_eq!(q.push(Ev::Msg(2)), Err(Ev::Msg(2)));
        assert!(!q.has_reader());
    }
}
