//! The Lua side of the callback store: the writes that must not interleave (a create with its
//! checks, a compare-and-set, an abort, a scheduler claim) and the reads that walk the index
//! (a query, the expired records). Each touches the keys of one service only (one hash slot on
//! a Cluster; record keys are built from the service's record-key base and an id, in that slot).
//!
//! The scripts do not work out a record's index entries themselves: the caller sends the
//! entries to remove and add ([`crate::store::callback::index::delta`]), computed from the
//! record it read, and the write happens only if the record's version is still the one read.
//! So the layout of the index lives in one place (Rust), and Lua only applies it.
//! The exception is the claim, which changes no entry (a `Submitting` record is indexed as
//! `SCHEDULED`) and moves the state counts and the due time itself.

use std::sync::LazyLock;

use redis::Script;

use crate::store::redis::lua::{ANY_MEMORY, BASE, GROWS};

/// The scripts, hashed once.
pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) write: Script,
    pub(super) remove: Script,
    pub(super) abort: Script,
    pub(super) claim: Script,
    pub(super) query: Script,
    pub(super) expired: Script,
    pub(super) get: Script,
}

/// Every script's first line is its flags ([`GROWS`], [`ANY_MEMORY`]): a script that can grow
/// the data is refused whole while Redis is over `maxmemory` (nothing half-written); one that
/// only reads or deletes has none; a removal (`WRITE` of no record), an abort and a claim run
/// even then: they free memory or change a few bytes, and the scheduler must keep submitting
/// while the store is full.
pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let s = |head: &str, body: &str| Script::new(&format!("{head}{BASE}{LIB}{body}"));
    Scripts {
        create: s(GROWS, CREATE),
        write: s(GROWS, WRITE),
        remove: s(ANY_MEMORY, WRITE),
        abort: s(ANY_MEMORY, ABORT),
        claim: s(ANY_MEMORY, CLAIM),
        query: s("", QUERY),
        expired: s("", EXPIRED),
        get: s("", GET),
    }
});

/// Functions shared by the scripts (after the store's `BASE`: `arg`, `now_ms`).
const LIB: &str = r#"
-- A count, then that many arguments.
local function list()
  local out = {}
  for j = 1, tonumber(arg()) do out[j] = arg() end
  return out
end

-- Runs `cmd key <items>` in bounded batches (Lua's unpack has a stack limit); `pre` goes
-- before each item (ZADD's score).
local function batch(cmd, key, items, pre)
  local j = 1
  while j <= #items do
    local last = math.min(j + 499, #items)
    local a = {}
    for i = j, last do
      if pre then a[#a + 1] = pre end
      a[#a + 1] = items[i]
    end
    redis.call(cmd, key, unpack(a))
    j = last + 1
  end
end

-- Keeps a key at least until `t` (ms): a service's keys outlive its last record (plus a
-- grace), so a service dropped from the configuration leaves nothing behind for ever.
local function keep_until(key, t)
  local e = redis.call('PEXPIRETIME', key)
  if e ~= -2 and e < t then redis.call('PEXPIREAT', key, t) end
end

local function count(key, field, by)
  local n = redis.call('HINCRBY', key, field, by)
  if n <= 0 then redis.call('HDEL', key, field) end
end

-- Whether the record at KEYS[1] has version `expect` ('' : there is no record).
local function version_is(expect)
  local cur = redis.call('HGET', KEYS[1], 'v')
  if expect == '' then return not cur end
  return cur == expect
end

-- Writes a record change read from the arguments: id, keep-until ms, delete flag, options
-- ('=' : unchanged, '' : none, else the packed list), record fields (a list of field, value),
-- index entries to remove and to add, counter deltas (field, delta), due score ('' : none)
-- and expiry score ('' : none). KEYS: record, index, counts, due, expiry, options. Returns
-- the id.
-- Options are shared: a record's `o` is the SHA-1 of its packed options, kept once per service
-- in the options hash (`b<sha>` the list, `n<sha>` how many records use it), because most
-- records of a service carry the same ones and a long value would also turn the record's
-- hash from a compact listpack into a hash table.
local function write_record()
  local id = arg()
  local keep = tonumber(arg())
  local delete = arg() == '1'
  local opts = arg()
  local fields = list()
  local zrem = list()
  local zadd = list()
  local deltas = list()
  local due = arg()
  local exp = arg()
  local old_o = redis.call('HGET', KEYS[1], 'o')
  local new_o = nil
  if opts == '=' then new_o = old_o elseif opts ~= '' then new_o = redis.sha1hex(opts) end
  if delete then new_o = nil end
  if new_o ~= old_o then
    if new_o then
      redis.call('HSETNX', KEYS[6], 'b' .. new_o, opts)
      redis.call('HINCRBY', KEYS[6], 'n' .. new_o, 1)
    end
    if old_o and redis.call('HINCRBY', KEYS[6], 'n' .. old_o, -1) <= 0 then
      redis.call('HDEL', KEYS[6], 'n' .. old_o, 'b' .. old_o)
    end
  end
  redis.call('DEL', KEYS[1])
  if not delete then
    batch('HSET', KEYS[1], fields)
    if new_o then redis.call('HSET', KEYS[1], 'o', new_o) end
    redis.call('PEXPIREAT', KEYS[1], keep)
  end
  batch('ZREM', KEYS[2], zrem)
  batch('ZADD', KEYS[2], zadd, 0)
  for j = 1, #deltas, 2 do count(KEYS[3], deltas[j], deltas[j + 1]) end
  if due == '' then redis.call('ZREM', KEYS[4], id) else redis.call('ZADD', KEYS[4], due, id) end
  if exp == '' then redis.call('ZREM', KEYS[5], id) else redis.call('ZADD', KEYS[5], exp, id) end
  if not delete then
    for k = 2, 6 do keep_until(KEYS[k], keep) end
  end
  return id
end

-- A record's fields and its options (false when it has none), as readers get them.
local function with_options(key, okey)
  local all = redis.call('HGETALL', key)
  local opts = false
  for j = 1, #all, 2 do
    if all[j] == 'o' then opts = redis.call('HGET', okey, 'b' .. all[j + 1]) end
  end
  return all, opts
end
"#;

/// A create with the checks of §3.2 steps 4–5, in order; the first that fails answers and
/// nothing is written. KEYS: record, index, counts, due, expiry, options, throttle, day.
/// ARGV: bucket counter ('' : unchecked), capacity, max active ('' : unchecked), created ms,
/// throttles (a list of window ms, max), the day key's keep-until, parameter counters (a list
/// of fields), their max, in-queue max ('' : unchecked), the customer slice's lex bounds, the
/// record-key base, then the record (see `write_record`). Returns 'ok', or the check that
/// refused: 'bucket', 'queue', 'throttle' and its index (1-based), 'param' and its index,
/// 'duplicate'.
const CREATE: &str = r#"
local now = now_ms()
local room = arg()
local cap = tonumber(arg())
local max_active = arg()
local created = tonumber(arg())
local throttles = list()
local day_keep = tonumber(arg())
local params = list()
local param_max = tonumber(arg())
local in_queue = arg()
local cn_lo = arg()
local cn_hi = arg()
local base = arg()
if room ~= '' and (tonumber(redis.call('HGET', KEYS[3], room)) or 0) >= cap then
  return {'bucket'}
end
if max_active ~= '' then
  local active = 0
  for _, n in ipairs(redis.call('HMGET', KEYS[3], 'nU', 'nQ', 'nR', 'nP', 'nA')) do
    active = active + (tonumber(n) or 0)
  end
  if active >= tonumber(max_active) then return {'queue'} end
end
local longest = 0
for j = 1, #throttles, 2 do
  local window = tonumber(throttles[j])
  if window > longest then longest = window end
  local n = redis.call('ZCOUNT', KEYS[7], '(' .. (created - window), '+inf')
  if n >= tonumber(throttles[j + 1]) then return {'throttle', (j + 1) / 2} end
end
for j = 1, #params do
  if (tonumber(redis.call('HGET', KEYS[8], params[j])) or 0) >= param_max then
    return {'param', j}
  end
end
if in_queue ~= '' then
  local max = tonumber(in_queue)
  local open = 0
  local lo = cn_lo
  while open < max do
    local got = redis.call('ZRANGEBYLEX', KEYS[2], lo, cn_hi, 'LIMIT', 0, 64)
    for _, m in ipairs(got) do
      local f = redis.call('HMGET', base .. string.sub(m, -32), 's', 'xt')
      if f[1] and f[1] ~= 'C' and tonumber(f[2]) > now then open = open + 1 end
    end
    if #got < 64 then break end
    lo = '(' .. got[#got]
  end
  if open >= max then return {'duplicate'} end
end
if not version_is('') then return {'exists'} end
local id = write_record()
if #throttles > 0 then
  redis.call('ZADD', KEYS[7], created, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', created - longest)
  keep_until(KEYS[7], created + longest + 86400000)
end
for j = 1, #params do redis.call('HINCRBY', KEYS[8], params[j], 1) end
if #params > 0 then keep_until(KEYS[8], day_keep) end
return {'ok'}
"#;

/// A compare-and-set: writes when the record's version is the one expected (and, for a
/// reschedule into another bucket, when that bucket has room). KEYS: record, index, counts,
/// due, expiry, options. ARGV: expected version ('' : must not exist), bucket counter ('' : unchecked),
/// capacity, then the change (see `write_record`). Returns 'ok', 'conflict' or 'full'.
const WRITE: &str = r#"
if not version_is(arg()) then return 'conflict' end
local room = arg()
local cap = tonumber(arg())
if room ~= '' and (tonumber(redis.call('HGET', KEYS[3], room)) or 0) >= cap then
  return 'full'
end
write_record()
return 'ok'
"#;

/// An immediate create undone: the record removed (a change, as in `WRITE`) and its throttle
/// counts given back. KEYS: record, index, counts, due, expiry, options, throttle, day. ARGV:
/// expected
/// version, parameter counters (a list of fields), then the removal (see `write_record`).
/// Returns 'ok' or 'conflict'.
const ABORT: &str = r#"
if not version_is(arg()) then return 'conflict' end
local params = list()
local id = write_record()
redis.call('ZREM', KEYS[7], id)
for j = 1, #params do count(KEYS[8], params[j], -1) end
return 'ok'
"#;

/// A scheduler pass (§7.1): looks at the due records (score <= now), at most `batch`, and
/// claims those to submit: `s` U, `cl` node, `lu` now + lease, `at` + 1, version + 1, the due
/// score moved to the lease's end, the state counts moved. Records it must not claim are
/// returned for the caller to change by compare-and-set: 'f' give up (stale at start-up, or
/// out of attempts), 'd' drop (an immediate create whose node died), 'x' expired.
/// KEYS: due, counts, options. ARGV: record-key base, node, lease ms, batch, max attempts,
/// recovery ms ('' : none). Returns {more (1/0), then per record: kind, id, its fields, its
/// options}.
const CLAIM: &str = r#"
local now = now_ms()
local base = arg()
local node = arg()
local lease = tonumber(arg())
local max_batch = tonumber(arg())
local max_attempts = tonumber(arg())
local recovery = arg()
local stale_before = nil
if recovery ~= '' then stale_before = now - tonumber(recovery) end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max_batch)
local out = {0}
if max_batch > 0 and #ids == max_batch then out[1] = 1 end
local function give(kind, id, key)
  local all, opts = with_options(key, KEYS[3])
  out[#out + 1] = kind
  out[#out + 1] = id
  out[#out + 1] = all
  out[#out + 1] = opts
end
for _, id in ipairs(ids) do
  local key = base .. id
  local f = redis.call('HMGET', key, 's', 'sa', 'na', 'lu', 'at', 'im', 'xt', 'v')
  local s = f[1]
  if not s then
    redis.call('ZREM', KEYS[1], id)
  elseif tonumber(f[7]) <= now then
    give('x', id, key)
  else
    local stale = stale_before and tonumber(f[3] or f[2]) < stale_before
    local attempts = tonumber(f[5]) or 0
    if s == 'U' and tonumber(f[4] or '0') > now then
      redis.call('ZADD', KEYS[1], f[4], id)
    elseif s == 'U' and f[6] == '1' then
      give('d', id, key)
    elseif (s == 'U' and attempts >= max_attempts) or ((s == 'U' or s == 'S') and stale) then
      give('f', id, key)
    elseif s == 'S' or s == 'U' then
      local till = now + lease
      redis.call('HSET', key, 's', 'U', 'cl', node, 'lu', till, 'at', attempts + 1,
        'v', tonumber(f[8]) + 1)
      redis.call('ZADD', KEYS[1], till, id)
      if s == 'S' then
        count(KEYS[2], 'nS', -1)
        count(KEYS[2], 'nU', 1)
      end
      give('c', id, key)
    else
      redis.call('ZREM', KEYS[1], id)
    end
  end
end
return out
"#;

/// A query (see `store/callback/query.rs`): picks the group of sources with the fewest
/// entries, walks it in index order (a merge of its slices, deduplicated), tests each live
/// record, and stops at `limit` matches or `scan` records. KEYS: index, options. ARGV: record-key base,
/// limit, scan, operand ('a'/'o'), the tests that must pass (the admin's states), the tests
/// joined by the operand, the groups. A test is field ('' : the id), negate (1/0), values (a
/// list). A group is a count of sources, each 'l' (prefix length, lex low, lex high: a slice)
/// or 'i' (an id). Returns {complete (1/0), then per record: id, its fields, its options}.
const QUERY: &str = r#"
local now = now_ms()
local base = arg()
local limit = tonumber(arg())
local scan = tonumber(arg())
local operand = arg()
local function tests()
  local out = {}
  for j = 1, tonumber(arg()) do
    local t = {field = arg(), negate = arg() == '1'}
    t.values = list()
    out[j] = t
  end
  return out
end
local must = tests()
local terms = tests()
local groups = {}
for g = 1, tonumber(arg()) do
  local group = {}
  for j = 1, tonumber(arg()) do
    local kind = arg()
    if kind == 'l' then
      group[j] = {plen = tonumber(arg()), lo = arg(), hi = arg()}
    else
      group[j] = {id = arg()}
    end
  end
  groups[g] = group
end
local function size(group)
  local n = 0
  for _, src in ipairs(group) do
    if src.id then n = n + 1 else n = n + redis.call('ZLEXCOUNT', KEYS[1], src.lo, src.hi) end
  end
  return n
end
local best, best_size = nil, nil
for _, group in ipairs(groups) do
  local n = size(group)
  if not best or n < best_size then best, best_size = group, n end
end
-- Cursors over the chosen group: a slice is read 64 entries at a time.
for _, src in ipairs(best) do
  src.buf = {}
  src.i = 1
  if src.id then
    local dt = redis.call('HGET', base .. src.id, 'dt')
    if dt then src.buf[1] = string.rep('0', 13 - #dt) .. dt .. src.id end
    src.plen = 0
    src.done = true
  end
end
local function peek(src)
  if src.i > #src.buf then
    if src.done then return nil end
    local got = redis.call('ZRANGEBYLEX', KEYS[1], src.lo, src.hi, 'LIMIT', 0, 64)
    if #got < 64 then src.done = true end
    if #got == 0 then return nil end
    src.lo = '(' .. got[#got]
    src.buf = got
    src.i = 1
  end
  return string.sub(src.buf[src.i], src.plen + 1)
end
local function passes(t, rec, id)
  local v = id
  if t.field ~= '' then v = rec[t.field] end
  local hit = false
  for _, x in ipairs(t.values) do
    if x == v then hit = true break end
  end
  return hit ~= t.negate
end
local out = {1}
local found, examined, last = 0, 0, nil
while found < limit do
  local min, at = nil, nil
  for _, src in ipairs(best) do
    local s = peek(src)
    if s and (not min or s < min) then min, at = s, src end
  end
  if not min then break end
  local member = at.buf[at.i]
  at.i = at.i + 1
  if min ~= last then
    last = min
    if examined == scan then
      out[1] = 0
      break
    end
    examined = examined + 1
    local id = string.sub(min, -32)
    local all, opts = with_options(base .. id, KEYS[2])
    if #all == 0 then
      if not at.id then redis.call('ZREM', KEYS[1], member) end
    else
      local rec = {}
      for j = 1, #all, 2 do rec[all[j]] = all[j + 1] end
      if tonumber(rec['xt']) > now then
        local ok = true
        for _, t in ipairs(must) do
          if not passes(t, rec, id) then ok = false break end
        end
        if ok and #terms > 0 then
          local any = false
          for _, t in ipairs(terms) do
            local p = passes(t, rec, id)
            if operand == 'a' and not p then ok = false break end
            if p then any = true end
          end
          if operand == 'o' and not any then ok = false end
        end
        if ok then
          found = found + 1
          out[#out + 1] = id
          out[#out + 1] = all
          out[#out + 1] = opts
        end
      end
    end
  end
end
return out
"#;

/// One record and its options. KEYS: record, options. Returns {its fields, its options}.
const GET: &str = r#"
local all, opts = with_options(KEYS[1], KEYS[2])
return {all, opts}
"#;

/// Up to `max` records whose expiration passed, for the caller to remove by compare-and-set
/// (an id left in the expiry list without its record is dropped here). KEYS: expiry, due.
/// ARGV: record-key base, max. Returns {id, its fields, ...}.
const EXPIRED: &str = r#"
local base = ARGV[1]
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))) do
  local all = redis.call('HGETALL', base .. id)
  if #all == 0 then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
  else
    out[#out + 1] = id
    out[#out + 1] = all
  end
end
return out
"#;
