//! The command executor: runs each [`Command`] from `App::update` against the
//! SDK (or the file system) off the UI loop and sends the outcome back as a
//! [`CommandResult`]. The UI never awaits a reply.
//!
//! Message sends and writes of `watched.txt` go through one ordered lane, so
//! two messages typed in a row arrive in that order and the file ends up with
//! the latest list; everything else runs concurrently.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::app::{CallEvent, Command, CommandResult, Event};
use super::commands::AttrWrite;
use super::conversation::ConvId;
use super::history::HistoryWriter;
use super::media::{PreparedUpload, prepare_upload, reserve_destination};
use super::pacer::{Paced, Pacer};
use super::{MUTED_FILE, WATCHED_FILE};
use crate::client::{
    ChannelAttributeOptions, ClientEvent, ErrorKind, LocalInvitation, MediaMessageOptions,
    MediaSource, MediaType, RemoteInvitation, RtmChannel, RtmClient, RtmError, RtmMessage,
    SendMessageOptions, TransferHandler,
};
use crate::client::{ChannelId, Uid};
use crate::config::ClientSettings;

/// The answer to a history read when the history's thread is not running.
const HISTORY_OFF: &str = "the local history is off for this session";

/// What every command needs besides the client.
struct Ctx {
    client: RtmClient,
    watched_file: PathBuf,
    muted_file: PathBuf,
    /// `settings.offline_messages`: ask the server to store messages for offline peers.
    offline_messages: bool,
    /// `settings.token_command`: prints a fresh login token.
    token_command: Option<String>,
    /// A handle of every channel joined here, owned by the executor: the SDK
    /// leaves a channel when its last handle is dropped. Locked only to
    /// insert or remove, never across an `.await`.
    joined: std::sync::Mutex<std::collections::HashMap<ChannelId, RtmChannel>>,
    /// Holds reads and subscriptions under the server's limits and retries
    /// the ones refused "for now" (see `pacer`).
    pacer: Pacer,
    /// The SDK's handles of the calls that have not ended. Locked only to
    /// look up, insert or remove, never across an `.await`.
    calls: std::sync::Mutex<Calls>,
    /// The handler of every running upload and download, by the app's
    /// transfer id (Esc cancels through it). Locked like `calls`.
    transfers: std::sync::Mutex<std::collections::HashMap<u64, TransferHandler>>,
    /// Where `/save` puts files without a destination.
    download_dir: PathBuf,
}

/// The most progress reports a transfer sends the UI a second: enough for
/// a smooth bar, few enough never to flood the loop.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// The open calls' handles. The app names calls with plain data (its own
/// id for ours, caller and id for those ringing us) and never holds a
/// handle; the commands that act on a call find it here.
#[derive(Default)]
struct Calls {
    /// Ours, by the SDK's invitation id: the app's id and the handle.
    outgoing: std::collections::HashMap<u64, (u64, LocalInvitation)>,
    /// Those ringing us, by caller and the caller's id.
    incoming: std::collections::HashMap<(Uid, u64), RemoteInvitation>,
}

/// Hands commands to tasks; dropping it ends the ordered lane.
pub struct Executor {
    ctx: Arc<Ctx>,
    results: mpsc::UnboundedSender<CommandResult>,
    ordered: mpsc::UnboundedSender<Command>,
    /// The local history's thread; `None` with `--no-history` (then no file
    /// is created or read). Taken by [`take_history`](Self::take_history) at quit.
    history: Option<HistoryWriter>,
}

impl Executor {
    /// Starts the ordered lane. Results go to `results`.
    pub fn start(
        client: RtmClient,
        settings: &ClientSettings,
        results: mpsc::UnboundedSender<CommandResult>,
    ) -> Executor {
        let ctx = Arc::new(Ctx {
            client,
            watched_file: settings.paths.data_dir.join(WATCHED_FILE),
            muted_file: settings.paths.data_dir.join(MUTED_FILE),
            offline_messages: settings.offline_messages,
            token_command: settings.token_command.clone(),
            joined: Default::default(),
            pacer: Pacer::default(),
            calls: Default::default(),
            transfers: Default::default(),
            // The user's download folder (XDG_DOWNLOAD_DIR …); without one,
            // a folder in rtm's data dir.
            download_dir: directories::UserDirs::new()
                .and_then(|u| u.download_dir().map(Path::to_path_buf))
                .unwrap_or_else(|| settings.paths.data_dir.join("downloads")),
        });
        let (ordered, mut rx) = mpsc::unbounded_channel::<Command>();
        let (lane_ctx, lane_results) = (ctx.clone(), results.clone());
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                if let Some(r) = execute(&lane_ctx, cmd).await {
                    // The UI is gone when this fails; nothing is waiting for the answer.
                    let _ = lane_results.send(r);
                }
            }
        });
        let history = if settings.history {
            let results = results.clone();
            // The UI is gone when sending fails; nothing is waiting for the report.
            HistoryWriter::start(settings.paths.data_dir.clone(), move |r| {
                let _ = results.send(CommandResult::from(r));
            })
            .map_err(|e| tracing::warn!("local history is off: cannot start its thread: {e}"))
            .ok()
        } else {
            None
        };
        Executor {
            ctx,
            results,
            ordered,
            history,
        }
    }

    /// The history writer, to [`close`](HistoryWriter::close) at quit so
    /// that what is queued reaches the file.
    pub fn take_history(&mut self) -> Option<HistoryWriter> {
        self.history.take()
    }

    /// For an SDK event that says the client is connected: the server it is
    /// connected to, for the app to take just before that event (with
    /// several servers configured, the status bar shows which one).
    pub fn server_in_use(&self, ev: &ClientEvent) -> Option<Event> {
        match ev {
            ClientEvent::ConnectionStateChanged {
                state: crate::client::ConnectionState::Connected,
                ..
            } => self.ctx.client.current_server_url().map(Event::ServerInUse),
            _ => None,
        }
    }

    /// An SDK event as the app takes it: a call's event becomes plain data
    /// ([`Event::Call`]) and its handle is kept here (while the call is
    /// open) for the commands that act on it; the rest pass as they are.
    pub fn translate(&self, ev: ClientEvent) -> Event {
        let mut calls = lock_calls(&self.ctx);
        match ev {
            ClientEvent::RemoteInvitationReceived(inv) => {
                let event = CallEvent::Ringing {
                    caller: inv.caller_id().clone(),
                    id: inv.id(),
                    content: inv.content().to_string(),
                    channel: inv.channel_id().map(str::to_string),
                    expires_in_ms: u64::try_from(inv.expires_in().as_millis()).unwrap_or(u64::MAX),
                };
                calls
                    .incoming
                    .insert((inv.caller_id().clone(), inv.id()), inv);
                Event::Call(event)
            }
            ClientEvent::RemoteInvitation { invitation, event } => {
                // Every event after the first ends the call.
                calls
                    .incoming
                    .remove(&(invitation.caller_id().clone(), invitation.id()));
                Event::Call(CallEvent::Incoming {
                    caller: invitation.caller_id().clone(),
                    id: invitation.id(),
                    response: invitation.response(),
                    event,
                })
            }
            ClientEvent::LocalInvitation { invitation, event } => {
                let ended = invitation.state().is_ended();
                let found = if ended {
                    calls.outgoing.remove(&invitation.id())
                } else {
                    calls.outgoing.get(&invitation.id()).cloned()
                };
                match found {
                    Some((call, _)) => Event::Call(CallEvent::Outgoing {
                        call,
                        callee: invitation.callee_id().clone(),
                        event,
                    }),
                    // Not one the app made: nothing shows it.
                    None => Event::Rtm(ClientEvent::LocalInvitation { invitation, event }),
                }
            }
            ev => Event::Rtm(ev),
        }
    }

    /// `/call`: the invitation is made here, before anything is sent, so
    /// that its events (which may overtake the send's answer) find it.
    fn call(&self, call: u64, callee: Uid, content: String) {
        let made = self
            .ctx
            .client
            .create_local_invitation(callee.as_str())
            .and_then(|inv| inv.set_content(content).map(|()| inv));
        let inv = match made {
            Ok(inv) => inv,
            Err(e) => {
                let _ = self.results.send(CommandResult::CallSent {
                    call,
                    callee,
                    result: Err(e),
                });
                return;
            }
        };
        lock_calls(&self.ctx)
            .outgoing
            .insert(inv.id(), (call, inv.clone()));
        let (ctx, results) = (self.ctx.clone(), self.results.clone());
        tokio::spawn(async move {
            let result = inv.send().await;
            if result.is_err() && !inv.state().is_ended() {
                // Refused before it rang: no event will end it.
                lock_calls(&ctx).outgoing.remove(&inv.id());
            }
            let _ = results.send(CommandResult::CallSent {
                call,
                callee,
                result,
            });
        });
    }

    /// Runs an upload or download on a task of its own, its handler kept
    /// under `id` while it runs, its progress sent at most every
    /// [`PROGRESS_INTERVAL`]; `end` makes the final result.
    fn transfer<F, Fut>(&self, id: u64, work: F)
    where
        F: FnOnce(Arc<Ctx>, TransferHandler) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = CommandResult> + Send + 'static,
    {
        let handler = TransferHandler::new();
        lock_transfers(&self.ctx).insert(id, handler.clone());
        let (ctx, results) = (self.ctx.clone(), self.results.clone());
        tokio::spawn(async move {
            let progress = forward_progress(id, handler.clone(), results.clone());
            let result = tokio::select! {
                r = work(ctx.clone(), handler) => r,
                // Never ends by itself: it stops with the work.
                () = progress => return,
            };
            lock_transfers(&ctx).remove(&id);
            let _ = results.send(result);
        });
    }

    /// Starts one command. `Quit` is the event loop's business and ignored here.
    pub fn dispatch(&self, cmd: Command) {
        match cmd {
            Command::Upload {
                id,
                path,
                typed,
                kind,
            } => self.transfer(id, move |ctx, handler| async move {
                let result = upload(&ctx, path, typed, kind, &handler).await;
                CommandResult::Uploaded { id, result }
            }),
            Command::Download {
                id,
                media_id,
                file_name,
                dest,
            } => self.transfer(id, move |ctx, handler| async move {
                let result = download(&ctx, &media_id, &file_name, dest, &handler).await;
                CommandResult::Saved { id, result }
            }),
            Command::CancelTransfer(id) => {
                if let Some(h) = lock_transfers(&self.ctx).get(&id) {
                    h.cancel();
                }
            }
            Command::Call {
                call,
                callee,
                content,
            } => self.call(call, callee, content),
            Command::Quit | Command::Notify(_) | Command::Redraw | Command::SetMouseCapture(_) => {}
            // In order, on the history's own thread: never a tokio worker.
            Command::OpenHistory(uid) => {
                if let Some(h) = &self.history {
                    h.open(uid);
                }
            }
            Command::RecordHistory(record) => {
                if let Some(h) = &self.history {
                    h.record(record);
                }
            }
            // The app asks only while the history is open; without the
            // thread, say so rather than leave it waiting.
            Command::LoadHistoryPage {
                conv,
                before,
                until,
            } => match &self.history {
                Some(h) => h.page(conv, before, until),
                None => {
                    let _ = self.results.send(CommandResult::HistoryPage {
                        conv,
                        before,
                        result: Err(HISTORY_OFF.into()),
                    });
                }
            },
            Command::SearchHistory {
                conv,
                query,
                before,
            } => match &self.history {
                Some(h) => h.search(conv, query, before),
                None => {
                    let _ = self.results.send(CommandResult::HistoryFound {
                        conv,
                        query,
                        result: Err(HISTORY_OFF.into()),
                    });
                }
            },
            Command::SendPeer { .. }
            | Command::SendChannel { .. }
            | Command::SendMedia { .. }
            | Command::SaveWatched(_)
            | Command::SaveMuted(_) => {
                let _ = self.ordered.send(cmd);
            }
            cmd => {
                let (ctx, results) = (self.ctx.clone(), self.results.clone());
                tokio::spawn(async move {
                    if let Some(r) = execute(&ctx, cmd).await {
                        let _ = results.send(r);
                    }
                });
            }
        }
    }
}

/// A channel handle for one call: the joined channel's own while it is kept
/// in `Ctx::joined`. Channel events reach the UI on the client's stream (the
/// executor never takes a channel's stream).
fn channel(ctx: &Ctx, id: &ChannelId) -> Result<RtmChannel, RtmError> {
    ctx.client.create_channel(id.as_str())
}

/// Keeps (`Some`) or lets go of (`None`) the handle that holds a channel joined.
fn hold_joined(ctx: &Ctx, id: &ChannelId, handle: Option<RtmChannel>) {
    let mut joined = ctx.joined.lock().unwrap_or_else(|p| p.into_inner());
    match handle {
        Some(h) => {
            joined.insert(id.clone(), h);
        }
        None => {
            joined.remove(id);
        }
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn uid_strs(v: &[Uid]) -> Vec<&str> {
    v.iter().map(Uid::as_str).collect()
}

fn lock_calls(ctx: &Ctx) -> std::sync::MutexGuard<'_, Calls> {
    ctx.calls.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_transfers(
    ctx: &Ctx,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, TransferHandler>> {
    ctx.transfers.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends transfer `id`'s progress to the UI as it changes, at most once
/// every [`PROGRESS_INTERVAL`] (the latest figure, never a backlog).
async fn forward_progress(
    id: u64,
    handler: TransferHandler,
    results: mpsc::UnboundedSender<CommandResult>,
) {
    let mut rx = handler.watch();
    while rx.changed().await.is_ok() {
        let p = *rx.borrow_and_update();
        if results
            .send(CommandResult::TransferProgress {
                id,
                current: p.current,
                total: p.total,
            })
            .is_err()
        {
            break;
        }
        tokio::time::sleep(PROGRESS_INTERVAL).await;
    }
    // The handler lives as long as the work: wait for it to end.
    std::future::pending::<()>().await
}

/// An SDK error of a transfer, in words: a cancel is not an error to show.
fn transfer_error(e: RtmError) -> String {
    match &e {
        RtmError::Local(body) | RtmError::Server(body) if body.kind == ErrorKind::Interrupted => {
            body.message.clone()
        }
        _ => e.to_string(),
    }
}

/// `/file`, `/image`: checks the file and makes a picture's thumbnail (off
/// the async workers: it reads and decodes), then uploads it.
async fn upload(
    ctx: &Ctx,
    path: PathBuf,
    typed: String,
    kind: MediaType,
    handler: &TransferHandler,
) -> Result<RtmMessage, String> {
    let image = kind == MediaType::Image;
    let checked = path.clone();
    let prepared: PreparedUpload =
        tokio::task::spawn_blocking(move || prepare_upload(&checked, &typed, image))
            .await
            .map_err(|e| format!("cannot read the file: {e}"))??;
    if handler.is_canceled() {
        return Err("canceled".into());
    }
    let thumbnail = prepared
        .thumbnail
        .unwrap_or_else(|| crate::tui::media::Thumbnail {
            bytes: Vec::new(),
            width: 0,
            height: 0,
        });
    let options = MediaMessageOptions {
        message_type: kind,
        file_name: Some(prepared.file_name),
        width: prepared.width,
        height: prepared.height,
        thumbnail: thumbnail.bytes,
        thumbnail_width: thumbnail.width,
        thumbnail_height: thumbnail.height,
        ..MediaMessageOptions::default()
    };
    ctx.client
        .create_media_message_by_uploading(MediaSource::Path(path), options, Some(handler))
        .await
        .map_err(transfer_error)
}

/// `/save`: takes a free destination on disk, then downloads into it (the
/// SDK checks the SHA-256); a failed download leaves nothing behind.
async fn download(
    ctx: &Ctx,
    media_id: &str,
    file_name: &str,
    dest: Option<PathBuf>,
    handler: &TransferHandler,
) -> Result<PathBuf, String> {
    let (default_dir, name) = (ctx.download_dir.clone(), file_name.to_string());
    let path = tokio::task::spawn_blocking(move || {
        reserve_destination(dest.as_deref(), &default_dir, &name)
    })
    .await
    .map_err(|e| format!("cannot save: {e}"))??;
    match ctx
        .client
        .download_media_to_file(media_id, &path, Some(handler))
        .await
    {
        Ok(_) => Ok(path),
        Err(e) => {
            // The empty file that held the name.
            let _ = tokio::fs::remove_file(&path).await;
            Err(transfer_error(e))
        }
    }
}

async fn execute(ctx: &Ctx, cmd: Command) -> Option<CommandResult> {
    let client = &ctx.client;
    Some(match cmd {
        // Dispatched before the executor's tasks (see `Executor::call`).
        Command::Call { .. } => return None,
        Command::CancelCall { call, callee } => {
            let inv = lock_calls(ctx)
                .outgoing
                .values()
                .find(|(c, _)| *c == call)
                .map(|(_, inv)| inv.clone());
            let result = match inv {
                Some(inv) => inv.cancel().await,
                // Ended meanwhile; its event told the app how.
                None => Ok(()),
            };
            CommandResult::CallCanceled {
                call,
                callee,
                result,
            }
        }
        Command::AnswerCall {
            caller,
            id,
            accept,
            response,
        } => {
            let inv = lock_calls(ctx).incoming.get(&(caller.clone(), id)).cloned();
            let result = match inv {
                Some(inv) if accept => inv.accept(response).await,
                Some(inv) => inv.refuse(response).await,
                None => Err(RtmError::Local(crate::client::ErrorBody::new(
                    crate::client::ErrorKind::AlreadyEnd,
                    "the call has ended",
                ))),
            };
            CommandResult::CallAnswered {
                caller,
                id,
                accept,
                result,
            }
        }
        // Dispatched before the executor's tasks (see `Executor::dispatch`).
        Command::Upload { .. } | Command::Download { .. } | Command::CancelTransfer(_) => {
            return None;
        }
        Command::Quit
        | Command::Notify(_)
        | Command::Redraw
        | Command::SetMouseCapture(_)
        | Command::OpenHistory(_)
        | Command::RecordHistory(_)
        | Command::LoadHistoryPage { .. }
        | Command::SearchHistory { .. } => return None,
        Command::RenewToken(token) => {
            CommandResult::TokenRenewed(client.renew_token(&token).await.map_err(|e| e.to_string()))
        }
        Command::FetchToken => {
            let result = match &ctx.token_command {
                None => Err("no token_command is configured".to_string()),
                Some(cmd) => match fetch_token(cmd).await {
                    Ok(token) => client.renew_token(&token).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                },
            };
            CommandResult::TokenRenewed(result)
        }
        Command::Login { uid, token } => CommandResult::LoggedIn {
            result: client.login(uid.as_str(), token).await,
            uid,
        },
        Command::SendPeer { peer, text, id } => {
            let options = SendMessageOptions {
                enable_offline_messaging: ctx.offline_messages,
            };
            let result = client
                .send_message_to_peer(RtmMessage::text(text), peer.as_str(), options)
                .await;
            CommandResult::PeerMessageSent { peer, id, result }
        }
        Command::SendMedia { conv, message, id } => match conv {
            ConvId::Peer(peer) => {
                let options = SendMessageOptions {
                    enable_offline_messaging: ctx.offline_messages,
                };
                let result = client
                    .send_message_to_peer(message, peer.as_str(), options)
                    .await;
                CommandResult::PeerMessageSent { peer, id, result }
            }
            ConvId::Channel(ch) => {
                let result = match channel(ctx, &ch) {
                    Ok(c) => c.send_message(message).await,
                    Err(e) => Err(e),
                };
                CommandResult::ChannelMessageSent {
                    channel: ch,
                    id,
                    result,
                }
            }
        },
        Command::SendChannel {
            channel: ch,
            text,
            id,
        } => {
            let result = match channel(ctx, &ch) {
                Ok(c) => c.send_message(RtmMessage::text(text)).await,
                Err(e) => Err(e),
            };
            CommandResult::ChannelMessageSent {
                channel: ch,
                id,
                result,
            }
        }
        Command::Join(ch) => CommandResult::Joined {
            result: match channel(ctx, &ch) {
                Ok(c) => {
                    let joined = c.join().await;
                    if joined.is_ok() {
                        hold_joined(ctx, &ch, Some(c));
                    }
                    joined
                }
                Err(e) => Err(e),
            },
            channel: ch,
        },
        Command::Leave(ch) => CommandResult::Left {
            result: match channel(ctx, &ch) {
                Ok(c) => {
                    let left = c.leave().await;
                    if left.is_ok() {
                        hold_joined(ctx, &ch, None);
                    }
                    left
                }
                Err(e) => Err(e),
            },
            channel: ch,
        },
        Command::GetMembers(ch) => CommandResult::Members {
            result: match channel(ctx, &ch) {
                Ok(c) => ctx.pacer.run(Paced::Members, || c.get_members()).await,
                Err(e) => Err(e),
            },
            channel: ch,
        },
        Command::Subscribe(peers) => CommandResult::Subscribed {
            result: ctx
                .pacer
                .run(Paced::Subscriptions, || async {
                    client
                        .subscribe_peers_online_status(&uid_strs(&peers))
                        .await
                })
                .await,
            peers,
        },
        Command::Unsubscribe(peers) => CommandResult::Unsubscribed {
            result: ctx
                .pacer
                .run(Paced::Subscriptions, || async {
                    client
                        .unsubscribe_peers_online_status(&uid_strs(&peers))
                        .await
                })
                .await,
            peers,
        },
        Command::QueryStatus(peers) => CommandResult::OnlineStatus {
            result: ctx
                .pacer
                .run(Paced::StatusQueries, || async {
                    client.query_peers_online_status(&uid_strs(&peers)).await
                })
                .await,
            peers,
        },
        Command::UserAttrWrite(op) => {
            let result = match &op {
                AttrWrite::Set(map) => client.set_local_user_attributes(map.clone()).await,
                AttrWrite::Put(map) => {
                    client
                        .add_or_update_local_user_attributes(map.clone())
                        .await
                }
                AttrWrite::Delete(keys) => {
                    client
                        .delete_local_user_attributes_by_keys(&strs(keys))
                        .await
                }
                AttrWrite::Clear => client.clear_local_user_attributes().await,
            };
            CommandResult::UserAttrWritten { op, result }
        }
        Command::GetUserAttributes {
            uid,
            keys,
            explicit,
        } => {
            let result = ctx
                .pacer
                .run(Paced::UserAttributeReads, || async {
                    match &keys {
                        None => client.get_user_attributes(uid.as_str()).await,
                        Some(k) => {
                            client
                                .get_user_attributes_by_keys(uid.as_str(), &strs(k))
                                .await
                        }
                    }
                })
                .await;
            CommandResult::UserAttributes {
                uid,
                keys,
                explicit,
                result,
            }
        }
        Command::ChannelAttrWrite {
            channel: ch,
            op,
            notify,
        } => {
            let options = ChannelAttributeOptions {
                enable_notification_to_channel_members: notify,
            };
            let id = ch.as_str();
            let result = match &op {
                AttrWrite::Set(map) => {
                    client
                        .set_channel_attributes(id, map.clone(), options)
                        .await
                }
                AttrWrite::Put(map) => {
                    client
                        .add_or_update_channel_attributes(id, map.clone(), options)
                        .await
                }
                AttrWrite::Delete(keys) => {
                    client
                        .delete_channel_attributes_by_keys(id, &strs(keys), options)
                        .await
                }
                AttrWrite::Clear => client.clear_channel_attributes(id, options).await,
            };
            CommandResult::ChannelAttrWritten {
                channel: ch,
                op,
                notify,
                result,
            }
        }
        Command::GetChannelAttributes {
            channel: ch,
            keys,
            explicit,
        } => {
            let result = ctx
                .pacer
                .run(Paced::ChannelAttributeReads, || async {
                    match &keys {
                        None => client.get_channel_attributes(ch.as_str()).await,
                        Some(k) => {
                            client
                                .get_channel_attributes_by_keys(ch.as_str(), &strs(k))
                                .await
                        }
                    }
                })
                .await;
            CommandResult::ChannelAttributes {
                channel: ch,
                keys,
                explicit,
                result,
            }
        }
        Command::LoadWatched => CommandResult::WatchedLoaded(load_watched(&ctx.watched_file).await),
        Command::SaveWatched(peers) => {
            CommandResult::WatchedSaved(save_watched(&ctx.watched_file, &peers).await)
        }
        Command::LoadMuted => CommandResult::MutedLoaded(
            read_optional(&ctx.muted_file)
                .await
                .map(|text| parse_muted(&text)),
        ),
        Command::SaveMuted(ids) => {
            let lines: Vec<String> = ids.iter().map(muted_line).collect();
            CommandResult::MutedSaved(save_lines(&ctx.muted_file, &lines).await)
        }
    })
}

/// How long `token_command` may take.
const TOKEN_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `token_command` with `sh -c` and takes the first line it prints.
pub async fn fetch_token(cmd: &str) -> Result<String, String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(TOKEN_COMMAND_TIMEOUT, child)
        .await
        .map_err(|_| {
            format!(
                "token_command did not finish within {} s",
                TOKEN_COMMAND_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("cannot run token_command: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim();
        return Err(format!(
            "token_command failed ({}){}",
            out.status,
            if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            }
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "token_command printed nothing".to_string())
}

/// Parses `watched.txt`: one uid per line; blank lines and `#` comments are
/// skipped, and so are lines that are not valid uids (logged).
pub fn parse_watched(text: &str) -> Vec<Uid> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| match Uid::new(l) {
            Ok(u) => Some(u),
            Err(e) => {
                tracing::warn!("skipping {l:?} in {WATCHED_FILE}: {e}");
                None
            }
        })
        .collect()
}

/// `muted.txt`: `@uid` for a peer, `#channel` for a channel, one a line.
fn muted_line(id: &ConvId) -> String {
    match id {
        ConvId::Peer(p) => format!("@{p}"),
        ConvId::Channel(c) => format!("#{c}"),
    }
}

/// Parses `muted.txt`; lines that name nothing valid are skipped (logged).
pub fn parse_muted(text: &str) -> Vec<ConvId> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let id = if let Some(p) = l.strip_prefix('@') {
                Uid::new(p).map(ConvId::Peer).map_err(|e| e.to_string())
            } else if let Some(c) = l.strip_prefix('#') {
                ChannelId::new(c)
                    .map(ConvId::Channel)
                    .map_err(|e| e.to_string())
            } else {
                Err("start a line with @ (peer) or # (channel)".into())
            };
            id.map_err(|e| tracing::warn!("skipping {l:?} in {MUTED_FILE}: {e}"))
                .ok()
        })
        .collect()
}

/// A file's text; a missing file is empty.
async fn read_optional(path: &Path) -> Result<String, String> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Reads the watched list; a missing file is an empty list.
pub async fn load_watched(path: &Path) -> Result<Vec<Uid>, String> {
    read_optional(path).await.map(|text| parse_watched(&text))
}

/// Writes the watched list.
pub async fn save_watched(path: &Path, peers: &[Uid]) -> Result<(), String> {
    let lines: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
    save_lines(path, &lines).await
}

/// Writes lines through a temporary file and a rename, so a crash mid-write
/// never leaves a half-written list.
async fn save_lines(path: &Path, lines: &[String]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(fail)?;
    }
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    let tmp = path.with_extension("txt.tmp");
    tokio::fs::write(&tmp, text).await.map_err(fail)?;
    tokio::fs::rename(&tmp, path).await.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientConfig, ClientEvent, ClientEvents, ConnectionState};
    use crate::server::{self, MemoryStore, ServerConfig, TestClock};
    use crate::tui::app::{App, Event};
    use crate::tui::fixtures;
    use std::time::Duration;

    /// A server whose clock and limits follow paused tokio time, without
    /// heartbeats (a paused clock jumps ahead whenever the runtime idles).
    fn paused_server_config() -> ServerConfig {
        let mut c = ServerConfig::default();
        c.timing.heartbeat_timeout = Duration::from_secs(24 * 3600);
        c.timing.heartbeat_interval = Duration::from_secs(3600);
        c.timing.clock = Arc::new(TestClock::new());
        c
    }

    /// Feeds the app what the SDK and the executor send and runs what it
    /// asks for, like `tui::run` without a terminal, until `done` says so.
    async fn pump(
        app: &mut App,
        executor: &Executor,
        events: &mut ClientEvents,
        results: &mut mpsc::UnboundedReceiver<CommandResult>,
        mut done: impl FnMut(&App, &Event) -> bool,
    ) {
        let run = async {
            loop {
                let event = tokio::select! {
                    Some(ev) = events.recv() => Event::Rtm(ev),
                    Some(r) = results.recv() => Event::CommandResult(r),
                };
                let stop = done(app, &event);
                for cmd in app.update(event) {
                    executor.dispatch(cmd);
                }
                if stop {
                    return;
                }
            }
        };
        // Virtual time: a stall fails here instead of hanging.
        tokio::time::timeout(Duration::from_secs(3600), run)
            .await
            .expect("the messenger got stuck");
    }

    /// After a reconnection the messenger asks for the members (and the
    /// attributes) of every joined channel at once; with 20 channels that
    /// once tripped the server's 5-per-2-s limit and 8 of them stayed
    /// empty. Over a real server whose link drops: every list is filled.
    #[tokio::test(start_paused = true)]
    async fn after_a_dropped_link_all_20_channels_get_their_members_and_attributes() {
        const N: usize = 20;
        let server = server::spawn(
            "127.0.0.1:0",
            paused_server_config(),
            Arc::new(MemoryStore::new()),
        )
        .await
        .expect("bind a test server");
        let addr = server.addr;
        let mut options = fixtures::options(Some("alice"));
        options.settings.server = server.url();
        let config = ClientConfig {
            request_timeout: Duration::from_secs(3600),
            login_timeout: Duration::from_secs(3600),
            heartbeat_interval: Duration::from_secs(3600),
            heartbeat_timeout: Duration::from_secs(24 * 3600),
            reconnect_initial: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(200),
            ..ClientConfig::default()
        };
        let (client, mut events) = RtmClient::new(server.url(), config);
        let (tx, mut results) = mpsc::unbounded_channel();
        let executor = Executor::start(client.clone(), &options.settings, tx);
        let mut app = App::with_login_hint(&options, None);
        for cmd in app.init() {
            executor.dispatch(cmd);
        }
        pump(&mut app, &executor, &mut events, &mut results, |_, ev| {
            matches!(ev, Event::CommandResult(CommandResult::LoggedIn { .. }))
        })
        .await;
        let channels: Vec<ChannelId> = (0..N)
            .map(|i| ChannelId::new(format!("room{i:02}")).unwrap())
            .collect();
        // Twenty joins typed in a row: each answer asks for members and attributes.
        for c in &channels {
            for cmd in app.update(Event::Paste(format!("/join {c}"))) {
                executor.dispatch(cmd);
            }
            for cmd in app.update(crate::tui::fixtures::key(crossterm::event::KeyCode::Enter)) {
                executor.dispatch(cmd);
            }
        }
        let (mut members, mut attrs) = (0, 0);
        let mut counted = |ev: &Event| {
            match ev {
                Event::CommandResult(CommandResult::Members { result, .. }) => {
                    assert!(result.is_ok(), "{result:?}");
                    members += 1;
                }
                Event::CommandResult(CommandResult::ChannelAttributes { result, .. }) => {
                    assert!(result.is_ok(), "{result:?}");
                    attrs += 1;
                }
                _ => {}
            }
            members == N && attrs == N
        };
        pump(&mut app, &executor, &mut events, &mut results, |_, ev| {
            counted(ev)
        })
        .await;

        // The link drops: the server goes away and comes back on the same address.
        server.shutdown().await;
        pump(&mut app, &executor, &mut events, &mut results, |_, ev| {
            matches!(
                ev,
                Event::Rtm(ClientEvent::ConnectionStateChanged {
                    state: ConnectionState::Reconnecting,
                    ..
                })
            )
        })
        .await;
        let server = server::spawn(
            &addr.to_string(),
            paused_server_config(),
            Arc::new(MemoryStore::new()),
        )
        .await
        .expect("bind the test server again");
        for info in channels.iter().filter_map(|c| app.channel(c)) {
            assert!(!info.members.is_empty());
        }
        let (mut members, mut attrs) = (0, 0);
        pump(&mut app, &executor, &mut events, &mut results, |_, ev| {
            match ev {
                Event::CommandResult(CommandResult::Members { result, channel }) => {
                    assert!(result.is_ok(), "#{channel}: {result:?}");
                    members += 1;
                }
                Event::CommandResult(CommandResult::ChannelAttributes {
                    result, channel, ..
                }) => {
                    assert!(result.is_ok(), "#{channel}: {result:?}");
                    attrs += 1;
                }
                _ => {}
            }
            members == N && attrs == N
        })
        .await;
        let alice = Uid::new("alice").unwrap();
        for c in &channels {
            let info = app.channel(c).expect("still in the channel");
            assert!(info.members.contains(&alice), "#{c}: {:?}", info.members);
        }
        assert!(
            app.status().is_none_or(|s| !s.text.contains("cannot")),
            "{:?}",
            app.status()
        );
        drop(executor);
        let _ = client.logout().await;
        server.shutdown().await;
    }

    #[tokio::test]
    async fn token_command_output_and_failures() {
        assert_eq!(
            fetch_token("echo; echo '  rtm1.a.b  '").await,
            Ok("rtm1.a.b".into())
        );
        let err = fetch_token("echo nope >&2; exit 3").await.unwrap_err();
        assert!(err.contains("failed") && err.contains("nope"), "{err}");
        assert_eq!(
            fetch_token("true").await,
            Err("token_command printed nothing".into())
        );
    }

    #[tokio::test]
    async fn watched_list_round_trips_through_the_file() {
        let dir = std::env::temp_dir().join(format!("rtm-tui-watched-{}", std::process::id()));
        let path = dir.join("sub").join(WATCHED_FILE);
        assert_eq!(load_watched(&path).await, Ok(vec![]));
        let peers = vec![Uid::new("bob").unwrap(), Uid::new("carol smith").unwrap()];
        save_watched(&path, &peers).await.unwrap();
        assert_eq!(load_watched(&path).await, Ok(peers));
        assert_eq!(
            parse_watched("# friends\n\n bob \nbad*id\n"),
            vec![Uid::new("bob").unwrap()]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn muted_list_lines() {
        let ids = vec![
            ConvId::Peer(Uid::new("#odd uid").unwrap()),
            ConvId::Channel(ChannelId::new("general").unwrap()),
        ];
        let text: String = ids.iter().map(|i| muted_line(i) + "\n").collect();
        assert_eq!(text, "@#odd uid\n#general\n");
        assert_eq!(parse_muted(&format!("{text}junk\n")), ids);
    }
}
