//! The messages around `App::update`: [`Event`]s in, [`Command`]s out to
//! the executor, and the [`CommandResult`]s it answers with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crossterm::event::{KeyEvent, MouseEvent};

use crate::client::{
    ChannelAttribute, ChannelId, ClientEvent, LocalInvitationEvent, LoginInfo, MediaType,
    PeerMessageSendResult, RemoteInvitationEvent, RtmError, RtmMessage, Uid,
};
use crate::tui::commands::AttrWrite;
use crate::tui::conversation::ConvId;
use crate::tui::history::{HistoryPage, HistoryRecord, HistoryReport, LoadedConversation, RowId};
use crate::tui::notify::Notification;

/// Everything that can happen to the messenger.
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Bracketed paste: the whole pasted text at once.
    Paste(String),
    /// Pushed by the SDK.
    Rtm(ClientEvent),
    /// The answer to a [`Command`], from the command executor.
    CommandResult(CommandResult),
    /// A periodic wake-up that expires notes and highlights.
    Tick,
    /// The terminal window gained (true) or lost focus: notifications for the
    /// open conversation only while it is not looked at.
    FocusChanged(bool),
    /// The embedded server that this messenger relies on went away and this
    /// messenger now hosts it on `addr`; `kept_data`: its data directory
    /// already held what the previous host kept (attributes, offline messages).
    NowHosting {
        addr: String,
        kept_data: bool,
    },
    /// The SDK is (re)connected to this server: with several servers
    /// configured, the one in use now. Comes just before the CONNECTED
    /// change it belongs to.
    ServerInUse(String),
    /// A call invitation arrived or changed: the SDK's invitation events as
    /// plain data (the event loop hands the SDK's handles to the executor).
    Call(CallEvent),
}

/// What happened to a call, without the SDK's handles: an app that holds
/// no handle can be driven by tests, and only the executor acts on calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// Someone rings us (`RemoteInvitationReceived`).
    Ringing {
        caller: Uid,
        /// The caller's id of the call; with `caller` it names the call.
        id: u64,
        content: String,
        /// The call's channel, when the caller set one.
        channel: Option<String>,
        /// How long until the server expires it unanswered, in ms.
        expires_in_ms: u64,
    },
    /// One of our calls changed; `call` is the app's id from [`Command::Call`].
    Outgoing {
        call: u64,
        callee: Uid,
        event: LocalInvitationEvent,
    },
    /// A call to us changed (answered, canceled, failed).
    Incoming {
        caller: Uid,
        id: u64,
        /// Our answer's text, once we answered.
        response: Option<String>,
        event: RemoteInvitationEvent,
    },
}

/// What `update` asks the outside world to do. The executor runs each one
/// against the SDK (or the file system) and answers with a [`CommandResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Login {
        uid: Uid,
        token: Option<String>,
    },
    /// `id` comes back in [`CommandResult::PeerMessageSent`] to find the entry.
    SendPeer {
        peer: Uid,
        text: String,
        id: u64,
    },
    Join(ChannelId),
    Leave(ChannelId),
    SendChannel {
        channel: ChannelId,
        text: String,
        id: u64,
    },
    GetMembers(ChannelId),
    Subscribe(Vec<Uid>),
    Unsubscribe(Vec<Uid>),
    QueryStatus(Vec<Uid>),
    UserAttrWrite(AttrWrite),
    /// `explicit`: the user asked (answer in the status bar) rather than the
    /// app fetching for the Attributes pane.
    GetUserAttributes {
        uid: Uid,
        keys: Option<Vec<String>>,
        explicit: bool,
    },
    ChannelAttrWrite {
        channel: ChannelId,
        op: AttrWrite,
        notify: bool,
    },
    GetChannelAttributes {
        channel: ChannelId,
        keys: Option<Vec<String>>,
        explicit: bool,
    },
    /// Swap in a new login token (`/token`).
    RenewToken(String),
    /// Run the configured `token_command` and renew with what it prints.
    FetchToken,
    /// Read `watched.txt`.
    LoadWatched,
    /// Write `watched.txt` with exactly these uids.
    SaveWatched(Vec<Uid>),
    /// Read `muted.txt`.
    LoadMuted,
    /// Write `muted.txt` with exactly these conversations.
    SaveMuted(Vec<ConvId>),
    /// Open (and load) the local history of this uid; sent after login.
    OpenHistory(Uid),
    /// Keep a message (or our message's delivery) in the local history.
    RecordHistory(HistoryRecord),
    /// Read the page of `conv`'s stored messages before row `before`
    /// (`None`: a conversation the start-up load left out), reaching down
    /// to row `until` when given (a search hit).
    LoadHistoryPage {
        conv: ConvId,
        before: Option<RowId>,
        until: Option<RowId>,
    },
    /// Search `conv`'s stored messages before row `before` for `query`.
    SearchHistory {
        conv: ConvId,
        query: String,
        before: Option<RowId>,
    },
    /// Ring `callee` (`/call`); `call` is the app's id of the call, which
    /// its [`CallEvent::Outgoing`] events and [`CommandResult::CallSent`] carry.
    Call {
        call: u64,
        callee: Uid,
        content: String,
    },
    /// Hang up our call `call` before it is answered.
    CancelCall {
        call: u64,
        callee: Uid,
    },
    /// Accept (`accept`) or refuse the call `id` from `caller`.
    AnswerCall {
        caller: Uid,
        id: u64,
        accept: bool,
        response: String,
    },
    /// `/file`, `/image`: check the file at `path` (typed as `typed`),
    /// make an image's thumbnail and upload it; progress comes back as
    /// [`CommandResult::TransferProgress`], the end as [`CommandResult::Uploaded`].
    Upload {
        id: u64,
        path: PathBuf,
        typed: String,
        kind: MediaType,
    },
    /// `/save`: download `media_id` to `dest` (a file, or a directory to
    /// put `file_name` in; `None`: the user's download directory), never
    /// over an existing file. Ends with [`CommandResult::Saved`].
    Download {
        id: u64,
        media_id: String,
        file_name: String,
        dest: Option<PathBuf>,
    },
    /// Esc: stop transfer `id` (its end comes as usual, as canceled).
    CancelTransfer(u64),
    /// Send an uploaded file's FILE or IMAGE message under the app's id
    /// `id` (answered like a text: `PeerMessageSent`, `ChannelMessageSent`).
    SendMedia {
        conv: ConvId,
        message: RtmMessage,
        id: u64,
    },
    /// Ring the bell and/or show a desktop notification (the event loop writes it).
    Notify(Notification),
    /// Clear the terminal and draw everything again (Ctrl-L).
    Redraw,
    /// Switch the terminal's mouse capture on or off.
    SetMouseCapture(bool),
    Quit,
}

/// The outcome of a [`Command`], fed back into `update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandResult {
    LoggedIn {
        uid: Uid,
        result: Result<LoginInfo, RtmError>,
    },
    PeerMessageSent {
        peer: Uid,
        id: u64,
        result: Result<PeerMessageSendResult, RtmError>,
    },
    ChannelMessageSent {
        channel: ChannelId,
        id: u64,
        result: Result<u64, RtmError>,
    },
    Joined {
        channel: ChannelId,
        result: Result<u32, RtmError>,
    },
    Left {
        channel: ChannelId,
        result: Result<(), RtmError>,
    },
    Members {
        channel: ChannelId,
        result: Result<Vec<Uid>, RtmError>,
    },
    Subscribed {
        peers: Vec<Uid>,
        result: Result<(), RtmError>,
    },
    Unsubscribed {
        peers: Vec<Uid>,
        result: Result<(), RtmError>,
    },
    OnlineStatus {
        peers: Vec<Uid>,
        result: Result<BTreeMap<Uid, bool>, RtmError>,
    },
    UserAttrWritten {
        op: AttrWrite,
        result: Result<(), RtmError>,
    },
    UserAttributes {
        uid: Uid,
        keys: Option<Vec<String>>,
        explicit: bool,
        result: Result<BTreeMap<String, String>, RtmError>,
    },
    ChannelAttrWritten {
        channel: ChannelId,
        op: AttrWrite,
        notify: bool,
        result: Result<(), RtmError>,
    },
    ChannelAttributes {
        channel: ChannelId,
        keys: Option<Vec<String>>,
        explicit: bool,
        result: Result<Vec<ChannelAttribute>, RtmError>,
    },
    /// The server took our call (it rings), or why not; a call refused
    /// here never rang and gets no events.
    CallSent {
        call: u64,
        callee: Uid,
        result: Result<(), RtmError>,
    },
    /// Hanging up failed (the call had ended: its own event says how).
    CallCanceled {
        call: u64,
        callee: Uid,
        result: Result<(), RtmError>,
    },
    /// Our answer to a call went out, or why not.
    CallAnswered {
        caller: Uid,
        id: u64,
        accept: bool,
        result: Result<(), RtmError>,
    },
    /// How far transfer `id` is (at most about ten a second).
    TransferProgress {
        id: u64,
        current: u64,
        total: u64,
    },
    /// Upload `id` ended: the message to send, or why not (in words).
    Uploaded {
        id: u64,
        result: Result<RtmMessage, String>,
    },
    /// Download `id` ended: where the file is, or why not (in words).
    Saved {
        id: u64,
        result: Result<PathBuf, String>,
    },
    /// Uids read from `watched.txt` (or why it could not be read).
    WatchedLoaded(Result<Vec<Uid>, String>),
    WatchedSaved(Result<(), String>),
    /// A token renewal (typed or fetched by `token_command`) ended.
    TokenRenewed(Result<(), String>),
    MutedLoaded(Result<Vec<ConvId>, String>),
    MutedSaved(Result<(), String>),
    /// The recent conversations from the local history, most recently
    /// active first (or why it could not be read).
    HistoryLoaded(Result<Vec<LoadedConversation>, String>),
    /// Writing the local history failed (reported once).
    HistoryFailed(String),
    /// An older page of stored messages (answering `LoadHistoryPage`).
    HistoryPage {
        conv: ConvId,
        before: Option<RowId>,
        result: Result<HistoryPage, String>,
    },
    /// Stored messages that match a search (answering `SearchHistory`):
    /// their row ids, newest first.
    HistoryFound {
        conv: ConvId,
        query: String,
        result: Result<Vec<RowId>, String>,
    },
}

impl From<HistoryReport> for CommandResult {
    fn from(r: HistoryReport) -> Self {
        match r {
            HistoryReport::Loaded(r) => CommandResult::HistoryLoaded(r),
            HistoryReport::Failed(e) => CommandResult::HistoryFailed(e),
            HistoryReport::Page {
                conv,
                before,
                result,
            } => CommandResult::HistoryPage {
                conv,
                before,
                result,
            },
            HistoryReport::Found {
                conv,
                query,
                result,
            } => CommandResult::HistoryFound {
                conv,
                query,
                result,
            },
        }
    }
}
