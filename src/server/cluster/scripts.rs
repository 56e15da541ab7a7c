//! The Lua scripts of cluster mode. Each runs atomically inside Redis, so a
//! step that reads and then writes shared state (a login taking over a uid,
//! a join counting members, a peer message finding its receiver's node)
//! cannot interleave with another node's.
//!
//! Every script takes the key prefix as `ARGV[1]` and builds key names from
//! it (see `docs/SCALING.md` for the layout). Bus payloads are lines joined
//! with `\n`: origin node, kind, then the kind's fields (see `bus.rs`).

/// Login: `ARGV = prefix, uid, node, sid`. Makes (node, sid) the uid's live
/// session and answers what was there before: `{}` (nobody), or
/// `{node, sid, link, node_alive, node_last_heartbeat_ms}`. Whether that was a remote login or a
/// resume the caller decides (asking the old node when it looks alive).
pub(super) const CLAIM: &str = r#"
local P, uid, node, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local uk = P .. 'u:' .. uid
local old = redis.call('HMGET', uk, 'node', 'sid', 'link')
redis.call('HSET', uk, 'node', node, 'sid', sid, 'link', 'up')
redis.call('SADD', P .. 'nu:' .. node, uid)
if not old[1] then
  redis.call('DEL', P .. 'ua:' .. uid, P .. 'us:' .. uid, P .. 'uch:' .. uid)
  return {}
end
if old[1] ~= node then
  redis.call('SREM', P .. 'nu:' .. old[1], uid)
end
local alive = redis.call('EXISTS', P .. 'alive:' .. old[1])
local seen = redis.call('HGET', P .. 'heartbeats', old[1]) or '0'
return {old[1], old[2] or '', old[3] or 'up', alive, seen}
"#;

/// A resume on this node of a session another node held: `ARGV = prefix,
/// uid, node`. Points the uid's memberships at this node and answers
/// `{channels, attributes (flat k,v list), subscriptions}`.
pub(super) const ADOPT: &str = r#"
local P, uid, node = ARGV[1], ARGV[2], ARGV[3]
local chans = redis.call('SMEMBERS', P .. 'uch:' .. uid)
local kept = {}
for _, ch in ipairs(chans) do
  local mk = P .. 'members:' .. ch
  if redis.call('HEXISTS', mk, uid) == 1 then
    redis.call('HSET', mk, uid, node)
    kept[#kept + 1] = ch
  else
    redis.call('SREM', P .. 'uch:' .. uid, ch)
  end
end
return {kept, redis.call('HGETALL', P .. 'ua:' .. uid), redis.call('SMEMBERS', P .. 'us:' .. uid)}
"#;

/// The link of (node, sid) went up or down: `ARGV = prefix, uid, node, sid,
/// link`. Answers 1 if that session still owns the uid.
pub(super) const SET_LINK: &str = r#"
local P, uid, node, sid, link = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local uk = P .. 'u:' .. uid
local cur = redis.call('HMGET', uk, 'node', 'sid')
if cur[1] == node and cur[2] == sid then
  redis.call('HSET', uk, 'link', link)
  return 1
end
return 0
"#;

/// Removes `uid`'s memberships held by `node` (publishing `left` to each
/// channel) and, when `whole` is 1 and (node, sid) still owns the uid, the
/// user itself (its node publishes OFFLINE, with every other state change).
/// `ARGV = prefix, uid, node, sid, whole`.
/// Answers the channels that became empty.
pub(super) const DEPART: &str = r#"
local P, uid, node, sid, whole = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local uk = P .. 'u:' .. uid
local cur = redis.call('HMGET', uk, 'node', 'sid')
local owns = cur[1] == node and cur[2] == sid
local emptied = {}
for _, ch in ipairs(redis.call('SMEMBERS', P .. 'uch:' .. uid)) do
  local mk = P .. 'members:' .. ch
  if redis.call('HGET', mk, uid) == node then
    redis.call('HDEL', mk, uid)
    redis.call('SREM', P .. 'uch:' .. uid, ch)
    local n = redis.call('HLEN', mk)
    if n == 0 then emptied[#emptied + 1] = ch end
    redis.call('PUBLISH', P .. 'c:' .. ch, node .. '\nleft\n' .. ch .. '\n' .. uid .. '\n' .. n)
  end
end
if whole == '1' and owns then
  redis.call('DEL', uk, P .. 'uch:' .. uid, P .. 'ua:' .. uid, P .. 'us:' .. uid)
  redis.call('SREM', P .. 'nu:' .. node, uid)
end
return emptied
"#;

/// Join: `ARGV = prefix, channel, uid, node`. Answers the member count.
pub(super) const JOIN: &str = r#"
local P, ch, uid, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local mk = P .. 'members:' .. ch
redis.call('HSET', mk, uid, node)
redis.call('SADD', P .. 'uch:' .. uid, ch)
local n = redis.call('HLEN', mk)
redis.call('PUBLISH', P .. 'c:' .. ch, node .. '\njoined\n' .. ch .. '\n' .. uid .. '\n' .. n)
return n
"#;

/// Leave: `ARGV = prefix, channel, uid, node`. Answers the member count, or
/// -1 when the uid was not a member through this node.
pub(super) const LEAVE: &str = r#"
local P, ch, uid, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local mk = P .. 'members:' .. ch
if redis.call('HGET', mk, uid) ~= node then return -1 end
redis.call('HDEL', mk, uid)
redis.call('SREM', P .. 'uch:' .. uid, ch)
local n = redis.call('HLEN', mk)
redis.call('PUBLISH', P .. 'c:' .. ch, node .. '\nleft\n' .. ch .. '\n' .. uid .. '\n' .. n)
return n
"#;

/// A peer message to a uid that is not on this node: `ARGV = prefix, to,
/// offline_enabled, payload`. Publishes it to the receiver's node when that
/// node is alive and (the link is up, or the message is not to be stored).
/// Answers 1 (sent, link up), 2 (sent for the receiver's resume), 0 (not
/// sent: nobody there, its node is dead, or it is to be stored instead).
pub(super) const PEER: &str = r#"
local P, to, offline, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rec = redis.call('HMGET', P .. 'u:' .. to, 'node', 'link')
if not rec[1] then return 0 end
if redis.call('EXISTS', P .. 'alive:' .. rec[1]) == 0 then return 0 end
if rec[2] == 'up' then
  redis.call('PUBLISH', P .. 'n:' .. rec[1], payload)
  return 1
end
if offline == '1' then return 0 end
redis.call('PUBLISH', P .. 'n:' .. rec[1], payload)
return 2
"#;

/// Sends `payload` to the node of `uid` if it is alive: `ARGV = prefix,
/// uid, payload`. Answers 1 when sent.
pub(super) const TO_USER_NODE: &str = r#"
local P, uid, payload = ARGV[1], ARGV[2], ARGV[3]
local node = redis.call('HGET', P .. 'u:' .. uid, 'node')
if not node then return 0 end
if redis.call('EXISTS', P .. 'alive:' .. node) == 0 then return 0 end
redis.call('PUBLISH', P .. 'n:' .. node, payload)
return 1
"#;

/// Online states: `ARGV = prefix, uid...`. Answers one number per uid:
/// 0 OFFLINE, 1 ONLINE, 2 UNREACHABLE (link down, or its node is dead).
pub(super) const PRESENCE: &str = r#"
local P = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local rec = redis.call('HMGET', P .. 'u:' .. ARGV[i], 'node', 'link')
  if not rec[1] then
    out[#out + 1] = 0
  elseif redis.call('EXISTS', P .. 'alive:' .. rec[1]) == 0 or rec[2] ~= 'up' then
    out[#out + 1] = 2
  else
    out[#out + 1] = 1
  end
end
return out
"#;

/// Replaces a user's attributes: `ARGV = prefix, uid, node, sid, k1, v1, …`
/// (only while (node, sid) owns the uid).
pub(super) const SET_ATTRS: &str = r#"
local P, uid, node, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('HMGET', P .. 'u:' .. uid, 'node', 'sid')
if cur[1] ~= node or cur[2] ~= sid then return 0 end
local ak = P .. 'ua:' .. uid
redis.call('DEL', ak)
for i = 5, #ARGV, 2 do redis.call('HSET', ak, ARGV[i], ARGV[i + 1]) end
return 1
"#;

/// A user's attributes, if the user is logged in: `ARGV = prefix, uid`.
/// Answers `{0}` (not logged in) or `{1, k1, v1, …}`.
pub(super) const GET_ATTRS: &str = r#"
local P, uid = ARGV[1], ARGV[2]
if redis.call('EXISTS', P .. 'u:' .. uid) == 0 then return {0} end
local out = {1}
for _, x in ipairs(redis.call('HGETALL', P .. 'ua:' .. uid)) do out[#out + 1] = x end
return out
"#;

/// After Redis came back (possibly empty): writes one local user's live
/// state again. `ARGV = prefix, uid, node, sid, link, nch, ch…, nattr, k, v…,
/// nsub, uid…`. Answers 1, or 0 when another node owns the uid now (this
/// node's session is then the older one and is ended).
pub(super) const REREGISTER: &str = r#"
local P, uid, node, sid, link = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local uk = P .. 'u:' .. uid
local cur = redis.call('HMGET', uk, 'node', 'sid')
if cur[1] and (cur[1] ~= node or cur[2] ~= sid) then return 0 end
redis.call('HSET', uk, 'node', node, 'sid', sid, 'link', link)
redis.call('SADD', P .. 'nu:' .. node, uid)
local i = 6
local nch = tonumber(ARGV[i]); i = i + 1
for j = 1, nch do
  local ch = ARGV[i]; i = i + 1
  redis.call('HSET', P .. 'members:' .. ch, uid, node)
  redis.call('SADD', P .. 'uch:' .. uid, ch)
end
local nattr = tonumber(ARGV[i]); i = i + 1
local ak = P .. 'ua:' .. uid
redis.call('DEL', ak)
for j = 1, nattr do
  redis.call('HSET', ak, ARGV[i], ARGV[i + 1]); i = i + 2
end
local nsub = tonumber(ARGV[i]); i = i + 1
local sk = P .. 'us:' .. uid
redis.call('DEL', sk)
for j = 1, nsub do
  redis.call('SADD', sk, ARGV[i]); i = i + 1
end
return 1
"#;

/// A node is found without its liveness key: `ARGV = prefix, dead_node,
/// now_ms, finder`. The first finder records the time and tells the
/// watchers of the dead node's users they are UNREACHABLE. Answers
/// `{0}` (it is alive after all) or `{1, dead_since_ms}`.
pub(super) const MARK_DEAD: &str = r#"
local P, dead, now, finder = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', P .. 'alive:' .. dead) == 1 then
  redis.call('DEL', P .. 'dead:' .. dead)
  return {0}
end
local dk = P .. 'dead:' .. dead
if redis.call('SET', dk, now, 'NX') then
  for _, uid in ipairs(redis.call('SMEMBERS', P .. 'nu:' .. dead)) do
    local rec = redis.call('HMGET', P .. 'u:' .. uid, 'node', 'link')
    if rec[1] == dead and rec[2] == 'up' then
      redis.call('PUBLISH', P .. 'p:' .. uid, finder .. '\nstate\n' .. uid .. '\n2')
    end
  end
  return {1, now}
end
return {1, redis.call('GET', dk)}
"#;

/// Removes up to `limit` users of a dead node (past its grace) as a logout
/// would: `ARGV = prefix, dead_node, limit, finder, now_ms`. Answers how many are
/// left, or -1 when the node is alive again (nothing is done).
pub(super) const REAP: &str = r#"
local P, dead, limit, finder, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
if redis.call('EXISTS', P .. 'alive:' .. dead) == 1 then return -1 end
local nk = P .. 'nu:' .. dead
local uids = redis.call('SPOP', nk, limit)
for _, uid in ipairs(uids) do
  local uk = P .. 'u:' .. uid
  if redis.call('HGET', uk, 'node') == dead then
    for _, ch in ipairs(redis.call('SMEMBERS', P .. 'uch:' .. uid)) do
      local mk = P .. 'members:' .. ch
      if redis.call('HGET', mk, uid) == dead then
        redis.call('HDEL', mk, uid)
        local n = redis.call('HLEN', mk)
        if n == 0 then
          -- Empty everywhere now: its attributes' countdown starts (the
          -- store's empty-since record).
          redis.call('HSETNX', P .. 'cempty', ch, now)
        end
        redis.call('PUBLISH', P .. 'c:' .. ch, finder .. '\nleft\n' .. ch .. '\n' .. uid .. '\n' .. n)
      end
    end
    redis.call('DEL', uk, P .. 'uch:' .. uid, P .. 'ua:' .. uid, P .. 'us:' .. uid)
    redis.call('PUBLISH', P .. 'p:' .. uid, finder .. '\nstate\n' .. uid .. '\n0')
  end
end
local left = redis.call('SCARD', nk)
if left == 0 then
  redis.call('SREM', P .. 'nodes', dead)
  redis.call('DEL', P .. 'dead:' .. dead)
  redis.call('HDEL', P .. 'heartbeats', dead)
end
return left
"#;
