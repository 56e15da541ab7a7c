//! Call invitations: `/call`, `/accept`, `/refuse`, `/cancel`, the answer
//! and hang-up keys, the ringing banner's state and the line each call
//! leaves in the direct conversation.
//!
//! The app holds calls as plain data (who, the id, the text, a deadline by
//! the app's clock); the SDK's invitation handles stay in the executor,
//! which the commands name by id. So `update` stays pure and the tests
//! drive calls with [`CallEvent`]s, with no client behind them.

use super::*;
use crate::client::{
    ErrorKind, LocalInvitationEvent, MAX_INVITATION_CONTENT_BYTES, MAX_INVITATION_RESPONSE_BYTES,
    RemoteInvitationEvent, RemoteInvitationFailureReason, RtmError, Uid,
};
use crate::tui::commands::next_token;
use crate::tui::conversation::{ConvId, Entry, EntryKind};
use crate::tui::history::HistoryRecord;
use crate::tui::keymap::Action;
use crate::tui::notify::{Desktop, Notification, NotifyLevel};

/// A ringing call that the server never ended (the link is gone, say)
/// leaves the banner this long after its deadline, as missed.
pub const CALL_GRACE_MS: u64 = 10_000;

/// A call that rings us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    pub caller: Uid,
    /// The caller's id of the call.
    pub id: u64,
    pub content: String,
    /// The call's channel, when the caller set one.
    pub channel: Option<String>,
    /// When the server expires it unanswered, ms by the app's clock.
    pub deadline: u64,
    /// Our answer is on its way: `Some(true)` accepting, `Some(false)` refusing.
    pub answering: Option<bool>,
}

/// How far one of our calls got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialing {
    /// Handed to the SDK; the server has not answered yet.
    Sending,
    /// The server took it and rings the callee.
    Ringing,
    /// The callee's messenger shows it (RECEIVED_BY_REMOTE).
    PhoneRings,
}

/// A call of ours, not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCall {
    /// The app's id, named by the commands and the events.
    pub call: u64,
    pub callee: Uid,
    pub content: String,
    pub state: Dialing,
    /// `/cancel` is on its way.
    pub hanging_up: bool,
}

/// ` (lunch?)`: the call's text for its line, when it had one.
fn about(content: &str) -> String {
    let content = one_line(content);
    if content.is_empty() {
        String::new()
    } else {
        format!(" ({content})")
    }
}

/// `accepted` or `accepted: sure`.
fn answered(word: &str, response: &str) -> String {
    let response = one_line(response);
    if response.is_empty() {
        word.to_string()
    } else {
        format!("{word}: {response}")
    }
}

/// A call's text on one line (the banner and the call lines are one line each).
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An SDK error about a call, in words for people.
fn call_error(e: &RtmError) -> String {
    match e.kind() {
        ErrorKind::TooOften => {
            "you are calling too often (the server allows 10 calls in 5 s); wait a moment".into()
        }
        _ => e.to_string(),
    }
}

impl App {
    /// The incoming calls, oldest first; the banner shows the newest.
    pub fn incoming_calls(&self) -> &[IncomingCall] {
        &self.incoming
    }

    /// Our calls not answered yet, oldest first.
    pub fn outgoing_calls(&self) -> &[OutgoingCall] {
        &self.outgoing
    }

    /// Whole seconds until `call` expires unanswered, rounded up (so a
    /// fresh call shows 60 and the last second shows 1).
    pub fn seconds_left(&self, call: &IncomingCall) -> u64 {
        call.deadline.saturating_sub(self.now()).div_ceil(1000)
    }

    /// The call the banner shows and the keys answer: the newest not
    /// answered yet.
    pub fn banner_call(&self) -> Option<&IncomingCall> {
        self.incoming.iter().rev().find(|c| c.answering.is_none())
    }

    /// `/call [uid] [text]`.
    pub(super) fn start_call(
        &mut self,
        peer: Option<Uid>,
        content: String,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        let Some(me) = self.me.clone() else {
            return Err("not logged in".into());
        };
        let callee = match peer {
            Some(p) => p,
            None => match &self.selected {
                Some(ConvId::Peer(p)) => p.clone(),
                _ => {
                    return Err(
                        "/call: say who to ring: /call <uid> [text] (in a direct conversation, /call alone rings its peer)"
                            .into(),
                    );
                }
            },
        };
        if callee == me {
            return Err("you cannot call yourself; /call <uid> rings someone else".into());
        }
        if content.len() > MAX_INVITATION_CONTENT_BYTES {
            return Err(format!(
                "the call's text is {} bytes, over the limit of {MAX_INVITATION_CONTENT_BYTES} bytes (8 KB): shorten it",
                content.len()
            ));
        }
        match self.connection {
            ConnectionState::Connected => {}
            ConnectionState::Aborted | ConnectionState::Disconnected => {
                return Err(
                    "the session has ended, so nobody can be called; quit and start rtm chat again"
                        .into(),
                );
            }
            // A call is now or never: it is not queued like a message.
            _ => return Err("not connected; call again once the connection is back".into()),
        }
        if self.outgoing.iter().any(|c| c.callee == callee) {
            return Err(format!(
                "you are already ringing {callee}; /cancel {callee} hangs up"
            ));
        }
        let call = self.next_id;
        self.next_id += 1;
        self.outgoing.push(OutgoingCall {
            call,
            callee: callee.clone(),
            content: content.clone(),
            state: Dialing::Sending,
            hanging_up: false,
        });
        // Like /msg: the call's line lands in this conversation.
        self.open(ConvId::Peer(callee.clone()), out);
        self.info(format!("ringing {callee}…"));
        out.push(Command::Call {
            call,
            callee,
            content,
        });
        Ok(())
    }

    /// `/accept` and `/refuse`: the first word may name the caller (needed
    /// when calls from several people ring); the rest is the response.
    pub(super) fn answer_call(
        &mut self,
        accept: bool,
        rest: &str,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        let verb = if accept { "accept" } else { "refuse" };
        let ringing: Vec<&IncomingCall> = self
            .incoming
            .iter()
            .filter(|c| c.answering.is_none())
            .collect();
        if ringing.is_empty() {
            return Err(format!("/{verb}: no call is ringing"));
        }
        let named = next_token(rest).and_then(|(word, tail)| {
            let caller = Uid::new(word).ok()?;
            ringing
                .iter()
                .rev()
                .find(|c| c.caller == caller)
                .map(|c| ((c.caller.clone(), c.id), tail.trim().to_string()))
        });
        let ((caller, id), response) = match named {
            Some(found) => found,
            None => {
                let newest = ringing[ringing.len() - 1];
                if ringing.iter().any(|c| c.caller != newest.caller) {
                    let mut names: Vec<String> =
                        ringing.iter().map(|c| c.caller.to_string()).collect();
                    names.dedup();
                    return Err(format!(
                        "/{verb}: {} calls ring ({}); say whose: /{verb} {} [response]",
                        ringing.len(),
                        names.join(", "),
                        newest.caller
                    ));
                }
                ((newest.caller.clone(), newest.id), rest.trim().to_string())
            }
        };
        if response.len() > MAX_INVITATION_RESPONSE_BYTES {
            return Err(format!(
                "/{verb}: the response is {} bytes, over the limit of {MAX_INVITATION_RESPONSE_BYTES} bytes (8 KB)",
                response.len()
            ));
        }
        self.answer(caller, id, accept, response, out);
        Ok(())
    }

    /// The accept key (and the refuse half of the hang-up key): answers the
    /// banner's call without words.
    pub(super) fn answer_newest_call(&mut self, accept: bool, out: &mut Vec<Command>) {
        match self.banner_call().map(|c| (c.caller.clone(), c.id)) {
            Some((caller, id)) => self.answer(caller, id, accept, String::new(), out),
            None => self.info("no call is ringing"),
        }
    }

    fn answer(
        &mut self,
        caller: Uid,
        id: u64,
        accept: bool,
        response: String,
        out: &mut Vec<Command>,
    ) {
        if let Some(c) = self
            .incoming
            .iter_mut()
            .find(|c| c.caller == caller && c.id == id)
        {
            c.answering = Some(accept);
        }
        let verb = if accept { "accepting" } else { "refusing" };
        self.info(format!("{verb} {caller}'s call…"));
        out.push(Command::AnswerCall {
            caller,
            id,
            accept,
            response,
        });
    }

    /// The hang-up key: refuses the banner's call; with none ringing here,
    /// hangs up our newest call.
    pub(super) fn hang_up(&mut self, out: &mut Vec<Command>) {
        if self.banner_call().is_some() {
            return self.answer_newest_call(false, out);
        }
        if let Err(e) = self.cancel_call(None, out) {
            self.info(e);
        }
    }

    /// `/cancel [uid]`: hangs up our call to `peer`, or the newest.
    pub(super) fn cancel_call(
        &mut self,
        peer: Option<Uid>,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        let found = self
            .outgoing
            .iter_mut()
            .rev()
            .find(|c| peer.as_ref().is_none_or(|p| *p == c.callee));
        let Some(c) = found else {
            return Err(match peer {
                Some(p) => format!("you are not calling {p}"),
                None => "no call of yours is ringing".into(),
            });
        };
        c.hanging_up = true;
        let (call, callee) = (c.call, c.callee.clone());
        self.info(format!("hanging up on {callee}…"));
        out.push(Command::CancelCall { call, callee });
        Ok(())
    }

    /// A call arrived or changed.
    pub(super) fn on_call_event(&mut self, ev: CallEvent, out: &mut Vec<Command>) {
        match ev {
            CallEvent::Ringing {
                caller,
                id,
                content,
                channel,
                expires_in_ms,
            } => {
                if self
                    .incoming
                    .iter()
                    .any(|c| c.caller == caller && c.id == id)
                {
                    return;
                }
                let deadline = self.now().saturating_add(expires_in_ms);
                self.incoming.push(IncomingCall {
                    caller: caller.clone(),
                    id,
                    content: content.clone(),
                    channel,
                    deadline,
                    answering: None,
                });
                self.follow(&caller, out);
                self.note(format!(
                    "{caller} is calling: {} accepts, {} refuses",
                    self.global_key(Action::AcceptCall),
                    self.global_key(Action::HangUp)
                ));
                if let Some(n) = self.call_notification(&caller, &content) {
                    out.push(Command::Notify(n));
                }
            }
            CallEvent::Outgoing {
                call,
                callee,
                event,
            } => self.on_outgoing_event(call, callee, event, out),
            CallEvent::Incoming {
                caller,
                id,
                response,
                event,
            } => self.on_incoming_event(caller, id, response, event, out),
        }
    }

    /// The bell and desktop notification of an incoming call: as for a
    /// direct message from the caller (its level, `/mute`), except that a
    /// call rings even while its conversation is looked at.
    fn call_notification(&self, caller: &Uid, content: &str) -> Option<Notification> {
        let id = ConvId::Peer(caller.clone());
        let level = if self.muted.contains(&id) {
            NotifyLevel::None
        } else {
            self.notify.level(&id)
        };
        let loud = self.notify.bell || self.notify.desktop != Desktop::Off;
        (level != NotifyLevel::None && loud).then(|| Notification {
            bell: self.notify.bell,
            desktop: self.notify.desktop,
            title: format!("rtm: {caller} is calling"),
            body: if content.is_empty() {
                format!("{caller} is calling")
            } else {
                one_line(content)
            },
        })
    }

    fn on_outgoing_event(
        &mut self,
        call: u64,
        callee: Uid,
        event: LocalInvitationEvent,
        out: &mut Vec<Command>,
    ) {
        let Some(at) = self.outgoing.iter().position(|c| c.call == call) else {
            return;
        };
        if event == LocalInvitationEvent::ReceivedByPeer {
            self.outgoing[at].state = Dialing::PhoneRings;
            self.note(format!("{callee}'s phone rings…"));
            return;
        }
        let c = self.outgoing.remove(at);
        let me = self.me.clone();
        let you = format!("you called {callee}{}", about(&c.content));
        let (line, status) = match event {
            LocalInvitationEvent::Accepted { response } => (
                format!("{you} — {}", answered("accepted", &response)),
                Ok(format!("{callee} {}", answered("accepted", &response))),
            ),
            LocalInvitationEvent::Refused { response } => (
                format!("{you} — {}", answered("refused", &response)),
                Ok(format!("{callee} {}", answered("refused", &response))),
            ),
            LocalInvitationEvent::Canceled => {
                (format!("{you} — canceled"), Ok("call canceled".into()))
            }
            LocalInvitationEvent::Failure(reason) => {
                let line = format!("call to {callee} failed: {}", reason.describe());
                (line.clone(), Err(line))
            }
            // Handled above.
            LocalInvitationEvent::ReceivedByPeer => return,
        };
        match status {
            Ok(s) => self.note(s),
            Err(e) => self.error(e),
        }
        if let Some(me) = me {
            self.call_line(&callee, &me, line, false, out);
        }
    }

    fn on_incoming_event(
        &mut self,
        caller: Uid,
        id: u64,
        response: Option<String>,
        event: RemoteInvitationEvent,
        out: &mut Vec<Command>,
    ) {
        // A call dropped here already (past its deadline) has its line.
        let Some(at) = self
            .incoming
            .iter()
            .position(|c| c.caller == caller && c.id == id)
        else {
            return;
        };
        let c = self.incoming.remove(at);
        let about = about(&c.content);
        let response = response.unwrap_or_default();
        let (line, missed) = match event {
            RemoteInvitationEvent::Accepted => {
                self.note(format!("you accepted {caller}'s call"));
                (
                    format!(
                        "{caller} called{about} — {}",
                        answered("accepted", &response)
                    ),
                    false,
                )
            }
            RemoteInvitationEvent::Refused => {
                self.note(format!("you refused {caller}'s call"));
                (
                    format!(
                        "{caller} called{about} — {}",
                        answered("refused", &response)
                    ),
                    false,
                )
            }
            RemoteInvitationEvent::Canceled { .. } => {
                self.note(format!("{caller} hung up"));
                (format!("missed call from {caller}{about}"), true)
            }
            RemoteInvitationEvent::Failure(RemoteInvitationFailureReason::AcceptFailure) => {
                let why = RemoteInvitationFailureReason::AcceptFailure.describe();
                self.error(format!("{caller}'s call: {why}"));
                (
                    format!("{caller} called{about} — not accepted: {why}"),
                    true,
                )
            }
            RemoteInvitationEvent::Failure(reason) => {
                self.note(format!("missed call from {caller}"));
                (
                    format!("missed call from {caller}{about} — {}", reason.describe()),
                    true,
                )
            }
        };
        let accepted = event == RemoteInvitationEvent::Accepted;
        self.call_line(&caller, &caller, line, missed, out);
        // Accepting is turning to the caller; otherwise, with nothing open,
        // the line shows like a first message would.
        if accepted || self.selected.is_none() {
            self.open(ConvId::Peer(caller), out);
        }
    }

    /// Adds a call's line to the direct conversation with `peer` and keeps
    /// it in the local history; a missed call counts as unread there.
    fn call_line(
        &mut self,
        peer: &Uid,
        caller: &Uid,
        text: String,
        missed: bool,
        out: &mut Vec<Command>,
    ) {
        let conv = ConvId::Peer(peer.clone());
        let ts = self.now();
        if self.keep_history {
            out.push(Command::RecordHistory(HistoryRecord::Call {
                conv: conv.clone(),
                ts,
                caller: caller.clone(),
                text: text.clone(),
                outgoing: self.me.as_ref() == Some(caller),
            }));
        }
        let entry = Entry {
            ts,
            kind: EntryKind::Call(text),
        };
        self.push_incoming(conv, entry, missed, out);
    }

    /// Answers about calls from the executor.
    pub(super) fn on_call_result(&mut self, r: CommandResult, out: &mut Vec<Command>) {
        match r {
            CommandResult::CallSent {
                call,
                callee,
                result,
            } => match result {
                Ok(()) => {
                    if let Some(c) = self.outgoing.iter_mut().find(|c| c.call == call)
                        && c.state == Dialing::Sending
                    {
                        c.state = Dialing::Ringing;
                    }
                }
                Err(e) => {
                    // Refused before it rang: no event will follow.
                    let Some(at) = self.outgoing.iter().position(|c| c.call == call) else {
                        return;
                    };
                    self.outgoing.remove(at);
                    let line = format!("call to {callee} failed: {}", call_error(&e));
                    self.error(line.clone());
                    if let Some(me) = self.me.clone() {
                        self.call_line(&callee, &me, line, false, out);
                    }
                }
            },
            CommandResult::CallCanceled {
                call,
                callee,
                result,
            } => {
                if let Some(c) = self.outgoing.iter_mut().find(|c| c.call == call) {
                    c.hanging_up = false;
                }
                match result {
                    // The event that ended it says how.
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyEnd => {}
                    Err(e) => self.error(format!("cannot hang up on {callee}: {}", call_error(&e))),
                }
            }
            CommandResult::CallAnswered {
                caller,
                id,
                accept,
                result,
            } => {
                let Err(e) = result else {
                    return;
                };
                if let Some(c) = self
                    .incoming
                    .iter_mut()
                    .find(|c| c.caller == caller && c.id == id)
                {
                    // A refusal that did not get through leaves it ringing
                    // (a failed acceptance ends it; its event follows).
                    c.answering = None;
                }
                let verb = if accept { "accept" } else { "refuse" };
                self.error(format!("cannot {verb} {caller}'s call: {}", call_error(&e)));
            }
            _ => {}
        }
    }

    /// Each tick: the banner's countdown is drawn again when its second
    /// changes, and calls long past their deadline (the server's end of
    /// them never came) leave as missed.
    pub(super) fn tick_calls(&mut self, out: &mut Vec<Command>) {
        let now = self.now();
        let stale: Vec<IncomingCall> = self
            .incoming
            .iter()
            .filter(|c| now > c.deadline.saturating_add(CALL_GRACE_MS))
            .cloned()
            .collect();
        for c in stale {
            self.incoming
                .retain(|k| !(k.caller == c.caller && k.id == c.id));
            let line = format!(
                "missed call from {}{} — nobody answered in time",
                c.caller,
                about(&c.content)
            );
            self.call_line(&c.caller, &c.caller, line, true, out);
            self.dirty = true;
        }
        let shown = self.banner_call().map(|c| self.seconds_left(c));
        if shown != self.countdown_shown {
            self.countdown_shown = shown;
            self.dirty = true;
        }
    }
}
