//! The resume buffer: what arrives for a user while its link is down.
//!
//! A dropped link keeps the user a member for the grace period; without this
//! buffer every peer and channel message sent to it meanwhile would be lost
//! even when it comes back a second later. The hub creates a buffer when a
//! frame for the user cannot be queued (its connection is ending) or when the
//! link is reported down, and hands the frames to the session that resumes.
//!
//! Bounded in bytes (`resume_buffer_bytes`): a link that stays down under a
//! heavy stream must not grow the server's memory without end. Once a frame
//! does not fit, nothing more is kept — the client gets an unbroken prefix
//! followed by a `messages_missed` event with how many were dropped, never
//! a silent gap in the middle.

use tokio_tungstenite::tungstenite::Message;

use crate::protocol::{Event, encode_event};

/// Frames kept for one user whose link is down; see the module doc.
#[derive(Debug)]
pub struct ResumeBuffer {
    frames: Vec<Message>,
    /// Sum of the frames' lengths, in bytes.
    bytes: usize,
    /// Most bytes kept.
    cap_bytes: usize,
    /// Frames that did not fit (and every one after them).
    missed: u64,
}

impl ResumeBuffer {
    pub fn new(cap_bytes: usize) -> Self {
        Self {
            frames: Vec::new(),
            bytes: 0,
            cap_bytes,
            missed: 0,
        }
    }

    /// Keeps `frame` if it fits and nothing was dropped yet (so the kept
    /// frames stay an unbroken prefix); otherwise counts it as missed.
    pub fn push(&mut self, frame: Message) {
        let len = frame.len();
        if self.missed > 0 || self.bytes + len > self.cap_bytes {
            self.missed += 1;
            return;
        }
        self.bytes += len;
        self.frames.push(frame);
    }

    /// Frames that did not fit.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// What the resuming session gets, in order: the kept frames, then a
    /// `messages_missed` event when some did not fit.
    pub fn into_frames(self) -> Vec<Message> {
        let mut frames = self.frames;
        if self.missed > 0 {
            let missed = Event::MessagesMissed { count: self.missed };
            frames.push(Message::Text(encode_event(&missed).into()));
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Message {
        Message::Text("x".repeat(n).into())
    }

    #[test]
    fn keeps_an_unbroken_prefix_and_reports_the_rest() {
        let mut b = ResumeBuffer::new(250);
        b.push(frame(100));
        b.push(frame(100));
        b.push(frame(100)); // does not fit
        b.push(frame(10)); // would fit, but comes after a gap
        assert_eq!(b.missed(), 2);
        let frames = b.into_frames();
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames[2].to_text().unwrap(),
            r#"{"type":"event","event":{"kind":"messages_missed","count":2}}"#
        );
    }

    #[test]
    fn nothing_missed_means_no_event() {
        let mut b = ResumeBuffer::new(1000);
        b.push(frame(10));
        assert_eq!(b.into_frames().len(), 1);
    }
}
