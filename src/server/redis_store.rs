//! The [`Store`] of cluster mode: every server node of a cluster keeps its
//! durable state in one shared Redis (7 or later, standalone or a
//! primary with replicas; not Redis Cluster, whose slots would split the keys
//! one script touches).
//!
//! # How it writes
//!
//! One writer task per store owns the connection (a reconnecting
//! [`ConnectionManager`](redis::aio::ConnectionManager)) and drains a queue of
//! operations in submission order, so the FIFO contract of [`Store`] holds:
//! submitting never blocks (the queue is unbounded) and each operation's
//! [`Ticket`] is answered once Redis has acknowledged it. Consecutive
//! single-step operations (all but attribute edits and purges) are sent as
//! one pipeline: under load one round trip serves many requests.
//!
//! Every step that reads and then writes is one Lua script, which Redis runs
//! atomically, so two nodes pushing at the same moment can never both pass a
//! quota. An attribute edit runs in Rust ([`AttributeEdit`]) between a read
//! and a compare-and-set script on the channel's version: when another node
//! wrote in between, the edit is run again on the new state (all-or-nothing,
//! never a lost update).
//!
//! # Keys
//!
//! All keys start with the prefix given to [`RedisStore::connect`] (the
//! cluster passes `rtm:`); `{uid}` and `{ch}` are user and channel ids as
//! they are (they hold no newline, which the entries below use as a
//! separator).
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `offline:seq` | string | the last offline-message `seq` handed out (`INCR`) |
//! | `offline:totals` | hash | `messages`, `bytes`: all stored offline messages |
//! | `offline:rbytes` | hash | `{uid}` → bytes waiting for that receiver (a field per non-empty mailbox) |
//! | `offline:byts` | zset | `seq\n{to}` scored by receive time: what `purge_offline` finds |
//! | `inbox:{uid}` | zset | the receiver's mailbox: `seq\nts\nbytes\n{from}\n<body>` scored by `seq` |
//! | `offline:done:{op}` | string | the `seq` a push stored, for 30 s: a push sent again after a lost connection finds it and stores nothing twice |
//! | `sender:{uid}` | zset | the sender's stored messages: `seq\nbytes` scored by receive time (the per-sender quotas) |
//! | `cattr:{ch}` | hash | `v`: version, `a`: the channel's attributes (JSON array, key order) |
//! | `cattr-channels` | set | channels that have attributes |
//! | `cattr-version` | string | the last attribute version handed out (never reused) |
//! | `cempty` | hash | `{ch}` → ms since which the channel has had no members |
//! | `members:{ch}` | hash | (written by the cluster layer: uid → node) read here only: a channel with this key has members somewhere |
//!
//! A mailbox body is `T` + the text's UTF-8 bytes, `R` + the description's
//! length + `\n` + description + raw bytes, or `J` + the message's JSON (file
//! and image messages): no JSON escaping of texts and raw data.
//!
//! # Durability
//!
//! A ticket resolves once Redis has acknowledged the write. How durable that
//! is depends on Redis's persistence: with `appendonly yes` and
//! `appendfsync always`, nothing acknowledged is lost when Redis crashes or
//! the machine loses power; with `appendfsync everysec` (Redis's default
//! when the AOF is on) up to about one second of acknowledged writes can be
//! lost; without the AOF, everything since the last RDB snapshot. When Redis
//! is unreachable an operation answers [`StoreError::Backend`] within
//! [`OP_TIMEOUT`] (never hangs); an operation that timed out after it was
//! sent may still have taken effect. The store reconnects by itself.
//!
//! Channels with members: `mark_all_channels_empty` marks only channels
//! whose `members:{ch}` does not exist, and `sweep_empty_channels` never
//! clears such a channel (it drops its empty-since record instead: the
//! record is false while the channel has members somewhere).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, IntoConnectionInfo, ProtocolVersion, RedisError, Script, ServerErrorKind};
use redis::{RedisResult, Value};
use tokio::sync::mpsc;

use super::redis_reply::{array_of, bytes_of, int_of, redact_url};

use super::store::{
    AttributeEdit, Completer, EditResult, OfflineMessage, OfflineQuota, Store, StoreError,
    StoreStats, Ticket,
};
use crate::protocol::{ChannelAttribute, ChannelId, RtmMessage, Uid};

/// The longest one operation (or one pipeline of them) waits for Redis.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// Most operations sent in one pipeline.
const MAX_BATCH_OPS: usize = 1024;

/// Attempts of an attribute edit that other nodes keep overtaking.
const MAX_EDIT_ATTEMPTS: usize = 200;

/// Offline messages a purge removes per script run (Redis serves others between runs).
const PURGE_CHUNK: usize = 512;

/// Pause before trying again when the connection to Redis failed.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Lua shared by the offline-message scripts: parsing an entry and removing
/// a message with all its bookkeeping. `ARGV[1]` is always the key prefix.
const LUA_PRELUDE: &str = r#"
local P = ARGV[1]
local function parse(e)
  return string.match(e, '^(%d+)\n(%d+)\n(%d+)\n([^\n]*)\n')
end
local function remove(to, e)
  local inbox = P .. 'inbox:' .. to
  if redis.call('ZREM', inbox, e) == 0 then return 0 end
  local seq, ts, bytes, from = parse(e)
  if not seq then return 1 end
  redis.call('ZREM', P .. 'sender:' .. from, seq .. '\n' .. bytes)
  redis.call('ZREM', P .. 'offline:byts', seq .. '\n' .. to)
  redis.call('HINCRBY', P .. 'offline:totals', 'messages', -1)
  redis.call('HINCRBY', P .. 'offline:totals', 'bytes', -tonumber(bytes))
  if redis.call('EXISTS', inbox) == 0 then
    redis.call('HDEL', P .. 'offline:rbytes', to)
  else
    redis.call('HINCRBY', P .. 'offline:rbytes', to, -tonumber(bytes))
  end
  return 1
end
"#;

/// ARGV: prefix, to, from, ts, bytes, body, per_receiver_messages,
/// per_receiver_bytes, sender_window_ms, per_sender_messages,
/// per_sender_bytes, total_bytes, operation id. Answers `{1, seq}` or,
/// refused, `{0, sender_messages, sender_bytes, total_bytes}`. Sent again
/// after a lost connection, it finds its operation id and stores nothing twice.
const LUA_PUSH: &str = r#"
local done_key = P .. 'offline:done:' .. ARGV[13]
local prev = redis.call('GET', done_key)
if prev then return {1, tonumber(prev)} end
local to, from, ts, bytes_s, body = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local bytes = tonumber(bytes_s)
local cap_n, cap_b = tonumber(ARGV[7]), tonumber(ARGV[8])
local window, s_n, s_b, total_max = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local since = tonumber(ts) - window
if since < 0 then since = 0 end
since = string.format('%.0f', since)
local skey = P .. 'sender:' .. from
local sn, sb = 0, 0
if s_n > 0 then sn = redis.call('ZCOUNT', skey, since, '+inf') end
if s_b > 0 then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', skey, since, '+inf')) do
    sb = sb + tonumber(string.match(m, '\n(%d+)$'))
  end
end
local total = tonumber(redis.call('HGET', P .. 'offline:totals', 'bytes') or '0')
if (cap_b > 0 and bytes > cap_b) or (s_n > 0 and sn >= s_n) or (s_b > 0 and sb + bytes > s_b)
   or (total_max > 0 and total + bytes > total_max) then
  return {0, sn, sb, total}
end
local seq = string.format('%.0f', redis.call('INCR', P .. 'offline:seq'))
local inbox = P .. 'inbox:' .. to
redis.call('ZADD', inbox, seq, seq .. '\n' .. ts .. '\n' .. bytes_s .. '\n' .. from .. '\n' .. body)
redis.call('SET', done_key, seq, 'EX', 30)
redis.call('ZADD', skey, ts, seq .. '\n' .. bytes_s)
redis.call('ZADD', P .. 'offline:byts', ts, seq .. '\n' .. to)
redis.call('HINCRBY', P .. 'offline:totals', 'messages', 1)
redis.call('HINCRBY', P .. 'offline:totals', 'bytes', bytes_s)
local kept = redis.call('HINCRBY', P .. 'offline:rbytes', to, bytes_s)
local n = redis.call('ZCARD', inbox)
while n > cap_n or (cap_b > 0 and kept > cap_b) do
  local oldest = redis.call('ZRANGE', inbox, 0, 0)
  if #oldest == 0 then break end
  local _, _, b = parse(oldest[1])
  remove(to, oldest[1])
  n = n - 1
  kept = kept - (tonumber(b) or 0)
end
return {1, tonumber(seq)}
"#;

/// ARGV: prefix, to, min_ts, after_seq, limit. Answers the entries, oldest first.
const LUA_PENDING: &str = r#"
local inbox = P .. 'inbox:' .. ARGV[2]
local min_ts, limit = tonumber(ARGV[3]), tonumber(ARGV[5])
local out = {}
local after = ARGV[4]
while #out < limit do
  local chunk = redis.call('ZRANGEBYSCORE', inbox, '(' .. after, '+inf', 'LIMIT', 0, 256)
  if #chunk == 0 then break end
  for _, e in ipairs(chunk) do
    local seq, ts = parse(e)
    if not seq then return redis.error_reply('damaged offline message in ' .. inbox) end
    after = seq
    if tonumber(ts) >= min_ts then
      out[#out + 1] = e
      if #out >= limit then break end
    end
  end
end
return out
"#;

/// ARGV: prefix, to, up_to_seq. Answers how many were removed.
const LUA_ACK: &str = r#"
local to = ARGV[2]
local n = 0
for _, e in ipairs(redis.call('ZRANGEBYSCORE', P .. 'inbox:' .. to, '-inf', ARGV[3])) do
  n = n + remove(to, e)
end
return n
"#;

/// ARGV: prefix, before_ts, chunk. Answers `{removed, looked_at}`.
const LUA_PURGE: &str = r#"
local items = redis.call('ZRANGEBYSCORE', P .. 'offline:byts', '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, item in ipairs(items) do
  local seq, to = string.match(item, '^(%d+)\n(.*)$')
  local found = {}
  if seq then found = redis.call('ZRANGEBYSCORE', P .. 'inbox:' .. to, seq, seq) end
  if #found > 0 then
    n = n + remove(to, found[1])
  else
    redis.call('ZREM', P .. 'offline:byts', item)
  end
end
return {n, #items}
"#;

/// ARGV: prefix. Answers `{messages, receivers, channels}`.
const LUA_STATS: &str = r#"
return {
  tonumber(redis.call('HGET', P .. 'offline:totals', 'messages') or '0'),
  redis.call('HLEN', P .. 'offline:rbytes'),
  redis.call('SCARD', P .. 'cattr-channels'),
}
"#;

/// ARGV: prefix, channel. Answers the attribute JSON or nil.
const LUA_GET_ATTRIBUTES: &str = r#"
return redis.call('HGET', P .. 'cattr:' .. ARGV[2], 'a')
"#;

/// ARGV: prefix, channel, expected version ("0": none), new JSON ("": remove).
/// Answers 1 when written, 0 when the version had changed.
const LUA_CAS_ATTRIBUTES: &str = r#"
local ch = ARGV[2]
local key = P .. 'cattr:' .. ch
local current = redis.call('HGET', key, 'v') or '0'
if current ~= ARGV[3] then return 0 end
if ARGV[4] == '' then
  redis.call('DEL', key)
  redis.call('SREM', P .. 'cattr-channels', ch)
else
  local v = string.format('%.0f', redis.call('INCR', P .. 'cattr-version'))
  redis.call('HSET', key, 'v', v, 'a', ARGV[4])
  redis.call('SADD', P .. 'cattr-channels', ch)
end
return 1
"#;

/// ARGV: prefix, channel, since_ms ("": has members again).
const LUA_SET_EMPTY: &str = r#"
if ARGV[3] == '' then
  redis.call('HDEL', P .. 'cempty', ARGV[2])
else
  redis.call('HSETNX', P .. 'cempty', ARGV[2], ARGV[3])
end
return 1
"#;

/// ARGV: prefix, since_ms.
const LUA_MARK_ALL_EMPTY: &str = r#"
for _, ch in ipairs(redis.call('SMEMBERS', P .. 'cattr-channels')) do
  if redis.call('EXISTS', P .. 'members:' .. ch) == 0 then
    redis.call('HSETNX', P .. 'cempty', ch, ARGV[2])
  end
end
return 1
"#;

/// ARGV: prefix, cutoff_ms. Answers the channels whose attributes were cleared.
const LUA_SWEEP: &str = r#"
local cutoff = tonumber(ARGV[2])
local records = redis.call('HGETALL', P .. 'cempty')
local cleared = {}
for i = 1, #records, 2 do
  local ch, since = records[i], tonumber(records[i + 1])
  if since and since < cutoff then
    redis.call('HDEL', P .. 'cempty', ch)
    if redis.call('EXISTS', P .. 'members:' .. ch) == 0 then
      if redis.call('DEL', P .. 'cattr:' .. ch) == 1 then
        redis.call('SREM', P .. 'cattr-channels', ch)
        cleared[#cleared + 1] = ch
      end
    end
  end
end
return cleared
"#;

/// The scripts, in the order of [`Lua`].
const SCRIPTS: [&str; 10] = [
    LUA_PUSH,
    LUA_PENDING,
    LUA_ACK,
    LUA_PURGE,
    LUA_STATS,
    LUA_GET_ATTRIBUTES,
    LUA_CAS_ATTRIBUTES,
    LUA_SET_EMPTY,
    LUA_MARK_ALL_EMPTY,
    LUA_SWEEP,
];

#[derive(Debug, Clone, Copy)]
enum Lua {
    Push,
    Pending,
    Ack,
    Purge,
    Stats,
    GetAttributes,
    CasAttributes,
    SetEmpty,
    MarkAllEmpty,
    Sweep,
}

struct Scripts {
    code: Vec<String>,
    scripts: Vec<Script>,
}

impl Scripts {
    fn new() -> Scripts {
        let code: Vec<String> = SCRIPTS
            .iter()
            .map(|s| format!("{LUA_PRELUDE}{s}"))
            .collect();
        let scripts = code.iter().map(|c| Script::new(c)).collect();
        Scripts { code, scripts }
    }

    fn get(&self, lua: Lua) -> &Script {
        &self.scripts[lua as usize]
    }
}

/// A single-step operation: one script run, answered from its reply.
struct Call {
    lua: Lua,
    args: Vec<Vec<u8>>,
    done: Box<dyn FnOnce(Result<Value, StoreError>) + Send + Sync>,
}

/// What the writer task is asked to do, in order.
enum Command {
    Call(Call),
    Update {
        channel: String,
        edit: AttributeEdit,
        done: Completer<EditResult>,
    },
    Purge {
        before_ts: u64,
        done: Completer<u64>,
    },
    Barrier(Completer<()>),
    Close(Completer<()>),
}

impl Command {
    fn fail(self, error: impl Fn() -> StoreError) {
        match self {
            Command::Call(call) => (call.done)(Err(error())),
            Command::Update { done, .. } => done.complete(Err(error())),
            Command::Purge { done, .. } => done.complete(Err(error())),
            Command::Barrier(done) | Command::Close(done) => done.complete(Err(error())),
        }
    }
}

/// See the module doc.
pub struct RedisStore {
    queue: mpsc::UnboundedSender<Command>,
    location: String,
    prefix: String,
    /// Random per store: with `ops`, the ids that make a resent push harmless.
    nonce: u64,
    ops: AtomicU64,
}

/// `redis://host:port/db` without user name or password.
fn redacted_url(info: &redis::ConnectionInfo) -> String {
    match info.addr() {
        redis::ConnectionAddr::Unix(path) => {
            format!(
                "redis+unix://{}?db={}",
                path.display(),
                info.redis_settings().db()
            )
        }
        addr => format!("redis://{addr}/{}", info.redis_settings().db()),
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port[/db]`)
    /// and starts the writer. Fails when Redis does not answer within
    /// [`OP_TIMEOUT`].
    pub async fn connect(url: &str, prefix: &str) -> Result<Arc<RedisStore>, StoreError> {
        let info = url.into_connection_info().map_err(|e| {
            StoreError::Backend(format!(
                "{:?} is not a Redis URL ({e}); write redis://HOST:PORT[/DB]",
                redact_url(url)
            ))
        })?;
        let shown = redacted_url(&info);
        let settings = info.redis_settings().clone();
        // RESP3: the connection manager hears of a lost connection at once
        // and reconnects before the next operation needs it.
        let info = info.set_redis_settings(settings.set_protocol(ProtocolVersion::RESP3));
        let client = redis::Client::open(info)
            .map_err(|e| StoreError::Backend(format!("Redis at {shown}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let scripts = Scripts::new();
        let conn = tokio::time::timeout(OP_TIMEOUT, async {
            let mut conn = ConnectionManager::new_with_config(client, config).await?;
            let mut pipe = redis::pipe();
            for code in &scripts.code {
                pipe.cmd("SCRIPT").arg("LOAD").arg(code.as_bytes()).ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
            Ok::<_, RedisError>(conn)
        })
        .await
        .map_err(|_| unreachable(&shown, "it did not answer within 5 s"))?
        .map_err(|e| describe(&shown, &e))?;
        let (queue, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            conn,
            scripts,
            url: shown.clone(),
            prefix: prefix.to_string(),
            scripts_loaded: true,
            down: None,
            last_failure: None,
        };
        tokio::spawn(writer.run(rx));
        Ok(Arc::new(RedisStore {
            queue,
            location: format!("Redis at {shown} (prefix {prefix})"),
            prefix: prefix.to_string(),
            nonce: getrandom::u64().unwrap_or_else(|_| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                t ^ u64::from(std::process::id()).rotate_left(32)
            }),
            ops: AtomicU64::new(0),
        }))
    }

    fn next_op_id(&self) -> String {
        let n = self.ops.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n}", self.nonce)
    }

    fn send(&self, command: Command) {
        if let Err(mpsc::error::SendError(command)) = self.queue.send(command) {
            command.fail(|| StoreError::Closed);
        }
    }

    /// Queues a script run whose reply `parse` turns into the answer.
    fn call<T: Send + 'static>(
        &self,
        lua: Lua,
        args: Vec<Vec<u8>>,
        parse: impl FnOnce(Value) -> Result<T, StoreError> + Send + Sync + 'static,
    ) -> Ticket<T> {
        let (done, ticket) = Ticket::new();
        let mut full = Vec::with_capacity(args.len() + 1);
        full.push(self.prefix.as_bytes().to_vec());
        full.extend(args);
        self.send(Command::Call(Call {
            lua,
            args: full,
            done: Box::new(move |reply| done.complete(reply.and_then(parse))),
        }));
        ticket
    }
}

fn unreachable(url: &str, why: &str) -> StoreError {
    StoreError::Backend(format!(
        "Redis at {url} is unreachable ({why}); the operation was not confirmed. Check that Redis is running and reachable, then retry"
    ))
}

/// Worth sending again: the connection failed (refused, or lost before
/// the answer), not a slow answer. Every operation is safe to repeat: reads,
/// idempotent writes, compare-and-set edits, and pushes carry an id.
fn is_retryable(e: &RedisError) -> bool {
    !e.is_timeout() && (e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error())
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// A Redis error as a store error: unreachable, or what Redis said.
fn describe(url: &str, e: &RedisError) -> StoreError {
    if is_connection_error(e) {
        unreachable(url, &e.to_string())
    } else {
        StoreError::Backend(format!("Redis at {url} answered with an error: {e}"))
    }
}

fn bad_reply(what: &str, v: &Value) -> StoreError {
    StoreError::Backend(format!("unexpected answer from Redis to {what}: {v:?}"))
}

/// The stored body of a message (see the module doc).
fn encode_body(message: &RtmMessage) -> Vec<u8> {
    match message {
        RtmMessage::Text { text } => {
            let mut out = Vec::with_capacity(1 + text.len());
            out.push(b'T');
            out.extend_from_slice(text.as_bytes());
            out
        }
        RtmMessage::Raw { raw, description } => {
            let mut out = format!("R{}\n{description}", description.len()).into_bytes();
            out.extend_from_slice(raw);
            out
        }
        other => {
            let mut out = b"J".to_vec();
            // Serializing a message of plain fields cannot fail.
            out.extend(serde_json::to_vec(other).unwrap_or_default());
            out
        }
    }
}

fn decode_body(body: &[u8]) -> Result<RtmMessage, String> {
    match body.split_first() {
        Some((b'T', text)) => String::from_utf8(text.to_vec())
            .map(|text| RtmMessage::Text { text })
            .map_err(|e| e.to_string()),
        Some((b'R', rest)) => {
            let nl = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or("no description length")?;
            let len: usize = std::str::from_utf8(&rest[..nl])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("bad description length")?;
            let rest = &rest[nl + 1..];
            if rest.len() < len {
                return Err("description cut short".into());
            }
            let description = String::from_utf8(rest[..len].to_vec()).map_err(|e| e.to_string())?;
            Ok(RtmMessage::Raw {
                raw: rest[len..].to_vec(),
                description,
            })
        }
        Some((b'J', json)) => serde_json::from_slice(json).map_err(|e| e.to_string()),
        _ => Err("unknown body kind".into()),
    }
}

/// Reads a mailbox entry `seq\nts\nbytes\nfrom\nbody`.
fn decode_entry(entry: &[u8]) -> Result<OfflineMessage, StoreError> {
    let damaged = |why: &str| {
        StoreError::Backend(format!(
            "an offline message stored in Redis cannot be read: {why}"
        ))
    };
    let mut parts = entry.splitn(5, |&b| b == b'\n');
    let mut field = |name: &str| parts.next().ok_or_else(|| damaged(&format!("no {name}")));
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| damaged(&e.to_string()));
    let seq: u64 = text(field("seq")?)?
        .parse()
        .map_err(|_| damaged("bad seq"))?;
    let ts: u64 = text(field("time")?)?
        .parse()
        .map_err(|_| damaged("bad time"))?;
    let _bytes = field("size")?;
    let from: Uid = text(field("sender")?)?
        .parse()
        .map_err(|e| damaged(&format!("bad sender: {e}")))?;
    let message = decode_body(field("body")?).map_err(|e| damaged(&e))?;
    Ok(OfflineMessage {
        seq,
        from,
        message,
        server_received_ts: ts,
    })
}

fn decode_attributes(json: Option<Vec<u8>>) -> Result<Vec<ChannelAttribute>, StoreError> {
    match json {
        None => Ok(Vec::new()),
        Some(j) if j.is_empty() => Ok(Vec::new()),
        Some(j) => serde_json::from_slice(&j).map_err(|e| {
            StoreError::Backend(format!(
                "channel attributes stored in Redis cannot be read: {e}"
            ))
        }),
    }
}

fn is_noscript(r: &RedisResult<Value>) -> bool {
    matches!(r, Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
}

/// The writer task: owns the connection, runs the queue in order.
struct Writer {
    conn: ConnectionManager,
    scripts: Scripts,
    url: String,
    prefix: String,
    /// False after an error: the next pipeline loads the scripts first.
    scripts_loaded: bool,
    /// Set when Redis proved unreachable: the rest of that batch gets this
    /// answer at once instead of waiting out a timeout each.
    down: Option<String>,
    /// The last connection failure of the running operation (its retries).
    last_failure: Option<String>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let mut batch = Vec::new();
        let mut closing = None;
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < MAX_BATCH_OPS {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.down = None;
            let mut calls = Vec::new();
            for command in batch.drain(..) {
                if closing.is_some() {
                    command.fail(|| StoreError::Closed);
                    continue;
                }
                match command {
                    Command::Call(call) => {
                        calls.push(call);
                        continue;
                    }
                    other => {
                        self.run_calls(std::mem::take(&mut calls)).await;
                        match other {
                            Command::Update {
                                channel,
                                edit,
                                done,
                            } => {
                                let result = match self.down_error() {
                                    Some(e) => Err(e),
                                    None => {
                                        let r = tokio::time::timeout(
                                            OP_TIMEOUT,
                                            self.update(&channel, &edit),
                                        )
                                        .await;
                                        self.settle(r)
                                    }
                                };
                                done.complete(result)
                            }
                            Command::Purge { before_ts, done } => {
                                let result = match self.down_error() {
                                    Some(e) => Err(e),
                                    None => {
                                        let r =
                                            tokio::time::timeout(OP_TIMEOUT, self.purge(before_ts))
                                                .await;
                                        self.settle(r)
                                    }
                                };
                                done.complete(result)
                            }
                            Command::Barrier(done) => done.complete(Ok(())),
                            Command::Close(done) => closing = Some(done),
                            Command::Call(_) => {}
                        }
                    }
                }
            }
            self.run_calls(calls).await;
            if closing.is_some() {
                break;
            }
        }
        // Operations queued after a close answer `Closed` (dropping `rx`
        // makes later submissions fail the same way).
        rx.close();
        while let Ok(command) = rx.try_recv() {
            command.fail(|| StoreError::Closed);
        }
        if let Some(done) = closing {
            done.complete(Ok(()));
        }
    }

    /// The answer of an operation run under [`OP_TIMEOUT`]; notes when
    /// Redis proved unreachable.
    fn settle<T>(
        &mut self,
        outcome: Result<Result<T, RedisError>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        let last_failure = self.last_failure.take();
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.scripts_loaded = false;
                if is_connection_error(&e) {
                    self.down = Some(e.to_string());
                }
                Err(describe(&self.url, &e))
            }
            Err(_) => {
                self.scripts_loaded = false;
                let why = match last_failure {
                    Some(e) => format!("{e}; still failing after 5 s"),
                    None => "it did not answer within 5 s".to_string(),
                };
                let err = unreachable(&self.url, &why);
                self.down = Some(why);
                Err(err)
            }
        }
    }

    /// Notes why Redis failed and waits a little before trying again.
    async fn pause(&mut self, e: &RedisError) {
        self.last_failure = Some(e.to_string());
        tokio::time::sleep(RETRY_PAUSE).await;
    }

    /// Why this batch answers at once: Redis proved unreachable in it.
    fn down_error(&self) -> Option<StoreError> {
        self.down.as_ref().map(|why| unreachable(&self.url, why))
    }

    /// Sends the calls as one pipeline and answers each from its reply.
    async fn run_calls(&mut self, calls: Vec<Call>) {
        if calls.is_empty() {
            return;
        }
        if self.down.is_some() {
            for call in calls {
                (call.done)(Err(self.down_error().unwrap_or(StoreError::Closed)));
            }
            return;
        }
        let r = tokio::time::timeout(OP_TIMEOUT, self.pipeline(&calls)).await;
        let replies = self.settle(r);
        match replies {
            Ok(replies) if replies.len() == calls.len() => {
                for (call, reply) in calls.into_iter().zip(replies) {
                    (call.done)(reply.map_err(|e| describe(&self.url, &e)));
                }
            }
            Ok(replies) => {
                let n = replies.len();
                for call in calls {
                    (call.done)(Err(StoreError::Backend(format!(
                        "Redis at {} answered {n} replies to a pipeline of different length",
                        self.url
                    ))));
                }
            }
            Err(e) => {
                let text = match e {
                    StoreError::Backend(text) => text,
                    other => other.to_string(),
                };
                for call in calls {
                    (call.done)(Err(StoreError::Backend(text.clone())));
                }
            }
        }
    }

    async fn pipeline(&mut self, calls: &[Call]) -> Result<Vec<RedisResult<Value>>, RedisError> {
        let mut reloaded = false;
        loop {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            if !self.scripts_loaded {
                for code in &self.scripts.code {
                    pipe.cmd("SCRIPT").arg("LOAD").arg(code.as_bytes()).ignore();
                }
            }
            for call in calls {
                pipe.cmd("EVALSHA")
                    .arg(self.scripts.get(call.lua).get_hash())
                    .arg(0)
                    .arg(&call.args);
            }
            match pipe
                .query_async::<Vec<RedisResult<Value>>>(&mut self.conn)
                .await
            {
                Ok(replies) => {
                    self.scripts_loaded = true;
                    // Redis lost its scripts (a restart) and ran none of
                    // the pipeline: load them and send it again.
                    if !reloaded && replies.iter().all(is_noscript) {
                        self.scripts_loaded = false;
                        reloaded = true;
                        continue;
                    }
                    return Ok(replies);
                }
                // Wait for Redis to come back (the caller's timeout bounds this).
                Err(e) if is_retryable(&e) => self.pause(&e).await,
                Err(e) => return Err(e),
            }
        }
    }

    /// Read, edit, compare-and-set; again when another node wrote between.
    async fn update(
        &mut self,
        channel: &str,
        edit: &AttributeEdit,
    ) -> Result<EditResult, RedisError> {
        let key = format!("{}cattr:{channel}", self.prefix);
        let mut attempts = 0;
        while attempts < MAX_EDIT_ATTEMPTS {
            let read = redis::cmd("HMGET")
                .arg(&key)
                .arg("v")
                .arg("a")
                .query_async::<(Option<String>, Option<Vec<u8>>)>(&mut self.conn)
                .await;
            let (version, json) = match read {
                Ok(r) => r,
                Err(e) if is_retryable(&e) => {
                    self.pause(&e).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let current = decode_attributes(json).map_err(|e| {
                RedisError::from((ErrorKind::Parse, "channel attributes", e.to_string()))
            })?;
            let next = match edit(&current) {
                Ok(next) => next,
                Err(refused) => return Ok(Err(refused)),
            };
            let mut sorted = next.clone();
            sorted.sort_by(|a, b| a.key.cmp(&b.key));
            let encoded = if sorted.is_empty() {
                Vec::new()
            } else {
                serde_json::to_vec(&sorted).map_err(|e| {
                    RedisError::from((ErrorKind::Client, "channel attributes", e.to_string()))
                })?
            };
            let written = self
                .scripts
                .get(Lua::CasAttributes)
                .arg(&self.prefix)
                .arg(channel)
                .arg(version.as_deref().unwrap_or("0"))
                .arg(encoded)
                .invoke_async::<i64>(&mut self.conn)
                .await;
            match written {
                Ok(1) => return Ok(Ok(next)),
                Ok(_) => attempts += 1,
                Err(e) if is_retryable(&e) => self.pause(&e).await,
                Err(e) => return Err(e),
            }
        }
        Err(RedisError::from((
            ErrorKind::Client,
            "channel attributes",
            format!(
                "channel {channel}: other servers changed its attributes {MAX_EDIT_ATTEMPTS} times in a row during this edit; retry"
            ),
        )))
    }

    /// Removes old offline messages a chunk at a time.
    async fn purge(&mut self, before_ts: u64) -> Result<u64, RedisError> {
        let mut removed = 0u64;
        loop {
            let reply = self
                .scripts
                .get(Lua::Purge)
                .arg(&self.prefix)
                .arg(before_ts)
                .arg(PURGE_CHUNK)
                .invoke_async::<(u64, usize)>(&mut self.conn)
                .await;
            match reply {
                Ok((n, looked_at)) => {
                    removed += n;
                    if looked_at < PURGE_CHUNK {
                        return Ok(removed);
                    }
                }
                Err(e) if is_retryable(&e) => self.pause(&e).await,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Store for RedisStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn stats(&self) -> Ticket<StoreStats> {
        self.call(Lua::Stats, Vec::new(), |v| {
            let a = array_of(v.clone()).unwrap_or_default();
            let n = |i: usize| a.get(i).and_then(int_of).map(|n| n.max(0) as u64);
            match (n(0), n(1), n(2)) {
                (Some(offline_messages), Some(offline_receivers), Some(channels)) => {
                    Ok(StoreStats {
                        offline_messages,
                        offline_receivers,
                        channels_with_attributes: channels,
                    })
                }
                _ => Err(bad_reply("stats", &v)),
            }
        })
    }

    fn barrier(&self) -> Ticket<()> {
        let (done, ticket) = Ticket::new();
        self.send(Command::Barrier(done));
        ticket
    }

    fn shutdown(&self) -> Ticket<()> {
        let (done, ticket) = Ticket::new();
        self.send(Command::Close(done));
        ticket
    }

    fn channel_attributes(&self, channel: &ChannelId) -> Ticket<Vec<ChannelAttribute>> {
        let args = vec![channel.to_string().into_bytes()];
        self.call(Lua::GetAttributes, args, |v| match v {
            Value::Nil => Ok(Vec::new()),
            other => match bytes_of(other.clone()) {
                Some(json) => decode_attributes(Some(json)),
                None => Err(bad_reply("reading channel attributes", &other)),
            },
        })
    }

    fn update_channel_attributes(
        &self,
        channel: &ChannelId,
        edit: AttributeEdit,
    ) -> Ticket<EditResult> {
        let (done, ticket) = Ticket::new();
        self.send(Command::Update {
            channel: channel.to_string(),
            edit,
            done,
        });
        ticket
    }

    fn set_channel_empty_since(&self, channel: &ChannelId, since_ms: Option<u64>) -> Ticket<()> {
        let since = since_ms.map(|t| t.to_string()).unwrap_or_default();
        let args = vec![channel.to_string().into_bytes(), since.into_bytes()];
        self.call(Lua::SetEmpty, args, |_| Ok(()))
    }

    fn mark_all_channels_empty(&self, since_ms: u64) -> Ticket<()> {
        let args = vec![since_ms.to_string().into_bytes()];
        self.call(Lua::MarkAllEmpty, args, |_| Ok(()))
    }

    fn sweep_empty_channels(&self, cutoff_ms: u64) -> Ticket<Vec<ChannelId>> {
        let args = vec![cutoff_ms.to_string().into_bytes()];
        self.call(Lua::Sweep, args, |v| {
            let items = array_of(v.clone()).ok_or_else(|| bad_reply("sweep", &v))?;
            items
                .into_iter()
                .map(|item| {
                    let text = bytes_of(item)
                        .and_then(|b| String::from_utf8(b).ok())
                        .ok_or_else(|| bad_reply("sweep", &v))?;
                    text.parse::<ChannelId>().map_err(|e| {
                        StoreError::Backend(format!(
                            "channel id {text:?} stored in Redis is not valid: {e}"
                        ))
                    })
                })
                .collect()
        })
    }

    fn push_offline(
        &self,
        to: &Uid,
        from: &Uid,
        message: &RtmMessage,
        server_received_ts: u64,
        quota: &OfflineQuota,
    ) -> Ticket<()> {
        let quota = *quota;
        let bytes = message.size() as u64;
        let args = vec![
            to.to_string().into_bytes(),
            from.to_string().into_bytes(),
            server_received_ts.to_string().into_bytes(),
            bytes.to_string().into_bytes(),
            encode_body(message),
            quota.per_receiver_messages.to_string().into_bytes(),
            quota.per_receiver_bytes.to_string().into_bytes(),
            quota.sender_window_ms.to_string().into_bytes(),
            quota.per_sender_messages.to_string().into_bytes(),
            quota.per_sender_bytes.to_string().into_bytes(),
            quota.total_bytes.to_string().into_bytes(),
            self.next_op_id().into_bytes(),
        ];
        self.call(Lua::Push, args, move |v| {
            let a = array_of(v.clone()).unwrap_or_default();
            let n = |i: usize| a.get(i).and_then(int_of).map(|n| n.max(0) as u64);
            match (n(0), n(1), n(2), n(3)) {
                (Some(1), Some(_), _, _) => Ok(()),
                (Some(0), Some(sender_messages), Some(sender_bytes), Some(total)) => {
                    // The script applied the same rules; the refusal itself
                    // (kind and text) comes from the one definition.
                    match quota.check(bytes, sender_messages, sender_bytes, total) {
                        Err(refusal) => Err(StoreError::Quota(refusal)),
                        Ok(()) => Err(StoreError::Backend(format!(
                            "Redis refused an offline message that is within the quota ({sender_messages} messages, {sender_bytes} bytes of the sender, {total} in all)"
                        ))),
                    }
                }
                _ => Err(bad_reply("storing an offline message", &v)),
            }
        })
    }

    fn pending_offline(
        &self,
        to: &Uid,
        min_ts: u64,
        after_seq: u64,
        limit: usize,
    ) -> Ticket<Vec<OfflineMessage>> {
        let args = vec![
            to.to_string().into_bytes(),
            min_ts.to_string().into_bytes(),
            after_seq.to_string().into_bytes(),
            limit.to_string().into_bytes(),
        ];
        self.call(Lua::Pending, args, |v| {
            let items = array_of(v.clone()).ok_or_else(|| bad_reply("reading a mailbox", &v))?;
            items
                .into_iter()
                .map(|item| {
                    let entry = bytes_of(item).ok_or_else(|| bad_reply("reading a mailbox", &v))?;
                    decode_entry(&entry)
                })
                .collect()
        })
    }

    fn ack_offline(&self, to: &Uid, up_to_seq: u64) -> Ticket<()> {
        let args = vec![
            to.to_string().into_bytes(),
            up_to_seq.to_string().into_bytes(),
        ];
        self.call(Lua::Ack, args, |_| Ok(()))
    }

    fn purge_offline(&self, before_ts: u64) -> Ticket<u64> {
        let (done, ticket) = Ticket::new();
        self.send(Command::Purge { before_ts, done });
        ticket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip() {
        let messages = [
            RtmMessage::text("hello\nworld\u{0}"),
            RtmMessage::Raw {
                raw: vec![0, 10, 255, b'\n'],
                description: "two\nlines".into(),
            },
            RtmMessage::Raw {
                raw: Vec::new(),
                description: String::new(),
            },
        ];
        for m in messages {
            assert_eq!(decode_body(&encode_body(&m)).unwrap(), m);
        }
    }

    #[test]
    fn entries_parse() {
        let mut entry = b"42\n1700000000000\n5\nalice\n".to_vec();
        entry.extend(encode_body(&RtmMessage::text("hi\nyo")));
        let m = decode_entry(&entry).unwrap();
        assert_eq!(m.seq, 42);
        assert_eq!(m.server_received_ts, 1_700_000_000_000);
        assert_eq!(m.from.as_str(), "alice");
        assert_eq!(m.message, RtmMessage::text("hi\nyo"));
    }

    #[test]
    fn passwords_are_not_shown() {
        let info = "redis://:secret@127.0.0.1:6379/3"
            .into_connection_info()
            .unwrap();
        assert_eq!(redacted_url(&info), "redis://127.0.0.1:6379/3");
    }
}
