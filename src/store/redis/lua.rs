//! The Lua side of the Redis store: every operation that must not interleave runs as one
//! script, so it is atomic on the server (and, on Redis Cluster, every script touches keys of
//! one hash slot only; see `keys.rs` for the key layout).
//!
//! The clock is the server's (`TIME`), so every gateway node agrees on what has expired.
//! A hold (one reservation) is the string `"<expires_ms> <service id> <phone>"`, the phone empty
//! when the app gave none.

use redis::Script;

/// The scripts, hashed once.
pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) reserve: Script,
    pub(super) write_service: Script,
    pub(super) put_data: Script,
    pub(super) merge_data: Script,
    pub(super) delete_data: Script,
    pub(super) delete_key: Script,
    pub(super) set_ors: Script,
    pub(super) attach: Script,
    pub(super) delete_service: Script,
    pub(super) matching: Script,
    pub(super) release: Script,
    pub(super) usage: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let s = |head: &str, body: &str| Script::new(&format!("{head}{BASE}{LIB}{body}"));
        Scripts {
            create: s(GROWS, CREATE),
            reserve: s(GROWS, RESERVE),
            write_service: s(GROWS, WRITE_SERVICE),
            put_data: s(GROWS, PUT_DATA),
            merge_data: s(GROWS, MERGE_DATA),
            delete_data: s("", DELETE_DATA),
            delete_key: s(ANY_MEMORY, DELETE_KEY),
            set_ors: s(GROWS, SET_ORS),
            attach: s(GROWS, ATTACH),
            delete_service: s("", DELETE_SERVICE),
            matching: s(ANY_MEMORY, MATCH),
            release: s("", RELEASE),
            usage: s("", USAGE),
        }
    }

    pub(super) fn all(&self) -> [&Script; 13] {
        [
            &self.create,
            &self.reserve,
            &self.write_service,
            &self.put_data,
            &self.merge_data,
            &self.delete_data,
            &self.delete_key,
            &self.set_ors,
            &self.attach,
            &self.delete_service,
            &self.matching,
            &self.release,
            &self.usage,
        ]
    }
}

/// The first line of a script that writes new data: with flags (Redis 7), Redis refuses the
/// whole script, before it runs, while over `maxmemory` (an OOM error: the store is full,
/// 507), so nothing is half-written. A script without flags would be refused only at its
/// first write that needs memory, and run on past it when a DEL or HDEL came first.
pub(super) const GROWS: &str = "#!lua\n";
/// The first line of the match script and the key delete: they must run while Redis is full
/// (they release a hold, count a failure in a few bytes, or shrink a record), as the scripts
/// that only delete do; and, once running, finish what they began.
pub(super) const ANY_MEMORY: &str = "#!lua flags=allow-oom\n";

/// What every script of the Redis store starts with (the callback store's too): the argument
/// reader and the server's clock.
pub(super) const BASE: &str = r#"
local argi = 0
local function arg()
  argi = argi + 1
  return ARGV[argi]
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"#;

/// Functions shared by the scripts below; each script is a first line (flags, see [`GROWS`]),
/// [`BASE`], `LIB` and its body.
pub const LIB: &str = r#"

local function hold_exp(v)
  return tonumber(string.match(v, '^(%d+)')) or 0
end

local function hold_sid(v)
  return string.match(v, '^%d+ (%S+)')
end

local function hold_phone(v)
  return string.match(v, '^%d+ %S+ (.*)$')
end

-- HSET / HDEL in bounded batches (Lua's unpack has a stack limit).
local function hset_all(key, fv)
  local j = 1
  while j <= #fv do
    local last = math.min(j + 999, #fv)
    redis.call('HSET', key, unpack(fv, j, last))
    j = last + 1
  end
end

local function hdel_all(key, fields)
  local j = 1
  while j <= #fields do
    local last = math.min(j + 999, #fields)
    redis.call('HDEL', key, unpack(fields, j, last))
    j = last + 1
  end
end

-- Drops the expired holds of one number; returns how many live ones remain.
local function purge(key, now)
  local all = redis.call('HGETALL', key)
  local dead = {}
  for j = 1, #all, 2 do
    if hold_exp(all[j + 1]) <= now then dead[#dead + 1] = all[j] end
  end
  hdel_all(key, dead)
  return #all / 2 - #dead
end

-- The per-phone index of a group (kept for reservations made under a per-phone limit): one
-- field per phone, its value the phone's reservations, each `exp NUL sid NUL number NUL field
-- NUL`. Reservations leave it when released or matched (drop) and when they expire (live).
local function phone_entry(exp, sid, number, field)
  return exp .. '\0' .. sid .. '\0' .. number .. '\0' .. field .. '\0'
end

-- Keeps `keep(exp, sid, number, field)` entries of one phone, writing back only a change;
-- returns them.
local function phone_filter(hkey, phone, keep)
  local s = redis.call('HGET', hkey, phone)
  if not s then return {} end
  local out = {}
  local dropped = false
  for e, sid, number, field in string.gmatch(s, '(%d+)%z([^%z]*)%z([^%z]*)%z([^%z]*)%z') do
    if keep(tonumber(e), sid, number, field) then
      out[#out + 1] = phone_entry(e, sid, number, field)
    else
      dropped = true
    end
  end
  if #out == 0 then
    redis.call('HDEL', hkey, phone)
  elseif dropped then
    redis.call('HSET', hkey, phone, table.concat(out))
  end
  return out
end

-- The live reservations of one phone (the expired ones dropped).
local function phone_live(hkey, phone, now)
  return phone_filter(hkey, phone, function(e) return e > now end)
end

-- Takes one reservation (a released or matched hold) out of its phone's entries.
local function phone_drop(hkey, hold, number, field)
  local sid = hold_sid(hold)
  phone_filter(hkey, hold_phone(hold), function(_, s, n, f)
    return not (s == sid and n == number and f == field)
  end)
end

-- A code not held (live) on this number, from the `cap` codes of `len` digits whose value
-- starts at `low` (the code space, ids::CodeSpace): the caller's random candidates (all in
-- the space) first, then a walk from the first one within the space (among holds+1
-- consecutive codes one is free).
local function free_code(key, len, low, cap, cands, now)
  local function free(c)
    local v = redis.call('HGET', key, 'c' .. c)
    return (not v) or hold_exp(v) <= now
  end
  for j = 1, #cands do
    if free(cands[j]) then return cands[j] end
  end
  local v0 = tonumber(cands[1]) or low
  local fmt = '%0' .. len .. 'd'
  local holds = redis.call('HLEN', key)
  for k = 0, holds do
    local c = string.format(fmt, low + (v0 - low + k) % cap)
    if free(c) then return c end
  end
  return string.format(fmt, v0)
end

-- Reserves a number of the group whose round-robin key is KEYS[kr], per-phone index
-- KEYS[kr+1] and number keys KEYS[kr+2 ..], in configured order (contract 5.1, the rules of
-- store/pool/).
-- Reads its arguments: code length (0: exclusive), the code space's lowest code and size,
-- round robin (1/0), start, group size, service id, phone ('' when the app gave none: counted
-- against no limit), ttl ms, length of the number keys' common start, the phone's limit of
-- live reservations in the group (0: none), candidate count, candidates. The number keys are
-- the whole group or a window of it: the group's numbers from index `start` on. Random allocation walks the keys from `start` (whole group) or from
-- the first (window). Round robin walks from the group's position; a window walks only the
-- part of it from there on, and is a miss when the position lies outside it.
-- Returns {index in the keys, code or '', number}; or nil when the keys had no room; or nil
-- and 'phone-limit' when the phone already holds its limit.
local function reserve(kr, now)
  local code_len = tonumber(arg())
  local code_low = tonumber(arg())
  local cap = tonumber(arg())
  local rr = arg() == '1'
  local start = tonumber(arg())
  local first = start
  local total = tonumber(arg())
  local sid = arg()
  local phone = arg()
  local ttl_arg = arg()
  local ttl = tonumber(ttl_arg)
  local base_len = tonumber(arg())
  local per_phone = tonumber(arg())
  local cands = {}
  for j = 1, tonumber(arg()) do cands[j] = arg() end
  local phones = KEYS[kr + 1]
  local n = #KEYS - kr - 1
  if n <= 0 or total < n then return nil end
  local held = nil
  if per_phone > 0 and phone ~= '' then
    held = phone_live(phones, phone, now)
    if #held >= per_phone then return nil, 'phone-limit' end
  end
  local walk = n
  if rr then
    local at = (tonumber(redis.call('GET', KEYS[kr])) or 0) % total
    if n == total then
      start = at
    else
      -- A window names the numbers start .. start + n - 1 (mod total) of the group.
      local off = (at - start) % total
      if off >= n then return nil end
      walk = n - off
      start = off
    end
  elseif n < total then
    start = 0
  end
  local hold = string.format('%.0f', now + ttl) .. ' ' .. sid .. ' ' .. phone
  -- The first pass trusts counts that may include expired holds; the second purges them.
  for pass = 0, 1 do
    for k = 0, walk - 1 do
      local i = (start + k) % n
      local key = KEYS[kr + 2 + i]
      if pass == 1 then purge(key, now) end
      local field = nil
      local x = redis.call('HGET', key, 'x')
      local x_live = x and hold_exp(x) > now
      if x and not x_live then
        redis.call('HDEL', key, 'x')
      end
      if not x_live then
        if code_len == 0 then
          if redis.call('HLEN', key) == 0 or purge(key, now) == 0 then field = 'x' end
        elseif redis.call('HLEN', key) < cap then
          field = 'c' .. free_code(key, code_len, code_low, cap, cands, now)
        end
      end
      if field then
        redis.call('HSET', key, field, hold)
        if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl_arg) end
        if rr then
          local pos = i + 1
          if n < total then pos = (first + i + 1) % total end
          redis.call('SET', KEYS[kr], tostring(pos), 'PX', '604800000')
        end
        local number = string.sub(key, base_len + 1)
        if held then
          held[#held + 1] = phone_entry(string.format('%.0f', now + ttl), sid, number, field)
          redis.call('HSET', phones, phone, table.concat(held))
          if redis.call('PTTL', phones) < ttl then redis.call('PEXPIRE', phones, ttl_arg) end
          -- Phones that never reserve again would keep their (expired) entries: look at two
          -- others each time, as Redis samples keys for its own expiry.
          for _, other in ipairs(redis.call('HRANDFIELD', phones, 2)) do
            if other ~= phone then phone_live(phones, other, now) end
          end
        end
        local code = ''
        if code_len > 0 then code = string.sub(field, 2) end
        return {i, code, number}
      end
    end
  end
  return nil
end

-- The field of a service record that remembers one of its reservations.
local function res_field(number, code)
  if code == '' then return 'r' .. number end
  return 'r' .. number .. '\0' .. code
end

local function write_service(key, ttl, fv)
  redis.call('DEL', key)
  hset_all(key, fv)
  redis.call('PEXPIRE', key, ttl)
end

-- A user-data record: one hash field per key; '\0o' the owner, '\0k' the keys in order,
-- each followed by a NUL (keys never contain NUL).
local function write_data(key, has_owner, owner, ttl, fv)
  redis.call('DEL', key)
  local order = {}
  for j = 1, #fv, 2 do order[#order + 1] = fv[j] .. '\0' end
  local all = {'\0k', table.concat(order)}
  if has_owner then
    all[3] = '\0o'
    all[4] = owner
  end
  for j = 1, #fv do all[#all + 1] = fv[j] end
  hset_all(key, all)
  redis.call('PEXPIRE', key, ttl)
end

-- may_access: an owned item only by its owner, an unowned one by anybody.
local function may_access(owner, has_req, req)
  if not owner then return true end
  return has_req and owner == req
end

local function read_pairs()
  local fv = {}
  for j = 1, 2 * tonumber(arg()) do fv[j] = arg() end
  return fv
end
"#;

/// Creates a service and its user data, and reserves a number when asked: all or nothing.
/// KEYS: service, data, then (with a reservation) the group's round-robin key and number keys.
/// ARGV: service ttl, service pairs; data ttl, has owner, owner, data pairs; reserve flag and
/// the reservation's arguments (see `reserve`). Returns `{}` (no reservation) or the
/// reservation; else nothing is written and it returns nil (the numbers given had no room) or
/// 'phone-limit'.
pub const CREATE: &str = r#"
local now = now_ms()
local svc_ttl = arg()
local sf = read_pairs()
local data_ttl = arg()
local has_owner = arg() == '1'
local owner = arg()
local df = read_pairs()
local res = {}
if arg() == '1' then
  local why
  res, why = reserve(3, now)
  if not res then return why or false end
  sf[#sf + 1] = res_field(res[3], res[2])
  sf[#sf + 1] = '1'
end
write_service(KEYS[1], svc_ttl, sf)
write_data(KEYS[2], has_owner, owner, data_ttl, df)
return res
"#;

/// Reserves only (Redis Cluster, where the service lives in another slot).
/// KEYS: round-robin key, per-phone index, number keys. ARGV: the reservation's arguments.
/// Returns what `reserve` does.
pub const RESERVE: &str = r#"
local r, why = reserve(1, now_ms())
if not r then return why or false end
return r
"#;

/// Writes a service record. KEYS: service. ARGV: ttl, pairs.
pub const WRITE_SERVICE: &str = r#"
local ttl = arg()
write_service(KEYS[1], ttl, read_pairs())
return 1
"#;

/// Writes a user-data record. KEYS: data. ARGV: mode (`n` new, `c` create or replace own),
/// has owner, owner, ttl, pairs. Returns 0 when the mode refused.
pub const PUT_DATA: &str = r#"
local mode = arg()
local has_owner = arg() == '1'
local owner = arg()
local ttl = arg()
local fv = read_pairs()
if mode == 'c' and redis.call('EXISTS', KEYS[1]) == 1 then
  local o = redis.call('HGET', KEYS[1], '\0o')
  if not (o and has_owner and o == owner) then return 0 end
end
write_data(KEYS[1], has_owner, owner, ttl, fv)
return 1
"#;

/// Merges fields into a record the requester may use; restarts its TTL.
/// KEYS: data. ARGV: has requester, requester, ttl, pairs. Returns 0 when missing / not theirs.
pub const MERGE_DATA: &str = r#"
local has_req = arg() == '1'
local req = arg()
local ttl = arg()
local fv = read_pairs()
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
if not may_access(redis.call('HGET', key, '\0o'), has_req, req) then return 0 end
local added = {}
for j = 1, #fv, 2 do
  if redis.call('HEXISTS', key, fv[j]) == 0 then added[#added + 1] = fv[j] .. '\0' end
end
if #added > 0 then
  redis.call('HSET', key, '\0k', (redis.call('HGET', key, '\0k') or '') .. table.concat(added))
end
hset_all(key, fv)
redis.call('PEXPIRE', key, ttl)
return 1
"#;

/// Deletes a record the requester may use. KEYS: data. ARGV: has requester, requester.
pub const DELETE_DATA: &str = r#"
local has_req = arg() == '1'
local req = arg()
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if not may_access(redis.call('HGET', KEYS[1], '\0o'), has_req, req) then return 0 end
redis.call('DEL', KEYS[1])
return 1
"#;

/// Deletes one key of a record the requester may use (per-service storage), and drops it from
/// the record's key order. KEYS: data. ARGV: has requester, requester, key. Returns 0 when the
/// record or the key is missing (or not theirs).
pub const DELETE_KEY: &str = r#"
local has_req = arg() == '1'
local req = arg()
local k = arg()
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if not may_access(redis.call('HGET', KEYS[1], '\0o'), has_req, req) then return 0 end
if redis.call('HDEL', KEYS[1], k) == 0 then return 0 end
local kept = {}
for name in string.gmatch(redis.call('HGET', KEYS[1], '\0k') or '', '([^%z]*)%z') do
  if name ~= k then kept[#kept + 1] = name .. '\0' end
end
redis.call('HSET', KEYS[1], '\0k', table.concat(kept))
return 1
"#;

/// Sets the ORS session of a live service. KEYS: service. ARGV: encoded session.
pub const SET_ORS: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'o', ARGV[1])
return 1
"#;

/// Adds a reservation field to a live service. KEYS: service. ARGV: number, code or ''.
pub const ATTACH: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], res_field(ARGV[1], ARGV[2]), '1')
return 1
"#;

/// Removes a service the requester may use, and its status entry; returns the record's
/// fields (to release its reservations and delete its data) or nil.
/// KEYS: service, status. ARGV: has requester, requester.
pub const DELETE_SERVICE: &str = r#"
local has_req = arg() == '1'
local req = arg()
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then return false end
local owner = nil
for j = 1, #rec, 2 do
  if rec[j] == 'u' then owner = rec[j + 1] end
end
if not may_access(owner, has_req, req) then return false end
redis.call('DEL', KEYS[1], KEYS[2])
return rec
"#;

/// Finds the live hold a call matches and releases it, returning its service id; or counts
/// the failure with the number and returns nil; or, when the number's failure window is full,
/// tries nothing and returns the window's remaining milliseconds (an integer); or, for a call
/// without a code on a number with several live coded holds, releases and counts nothing and
/// returns 'ambiguous' (contract 5.3: without a code, the number's only live hold matches,
/// unless the service requires a code).
/// KEYS: number, its group's per-phone index, its failure count. ARGV: code or '', phone given
/// (1/0), phone, the number, the failures allowed in a window (0: no limit), code required
/// (1/0). A hold made without a phone matches whatever phone the call names.
/// A failure opens the window on a number with live holds: it lasts as long as the number key
/// (which expires with its latest hold); a number without holds has nothing to guess.
pub const MATCH: &str = r#"
local now = now_ms()
local key = KEYS[1]
local fkey = KEYS[3]
local code = arg()
local has_phone = arg() == '1'
local phone = arg()
local number = arg()
local max_failed = tonumber(arg())
local require_code = arg() == '1'
if max_failed > 0 and (tonumber(redis.call('GET', fkey)) or 0) >= max_failed then
  local left = redis.call('PTTL', fkey)
  if left > 0 then return left end
  -- A count without an expiry cannot come from the script below; never lock for ever.
  redis.call('DEL', fkey)
end
local function fail()
  if max_failed == 0 then return false end
  local left = redis.call('PTTL', key)
  if left > 0 and redis.call('INCR', fkey) == 1 then
    redis.call('PEXPIRE', fkey, left)
  end
  return false
end
local function phone_ok(v)
  if not has_phone then return true end
  local p = hold_phone(v)
  return p == '' or p == phone
end
local x = redis.call('HGET', key, 'x')
if x and hold_exp(x) > now then
  if not phone_ok(x) then return fail() end
  redis.call('HDEL', key, 'x')
  phone_drop(KEYS[2], x, number, 'x')
  return hold_sid(x)
end
if code == '' then
  if require_code then return fail() end
  -- Stops at the second live coded hold: a busy number costs no more than a quiet one.
  local all = redis.call('HGETALL', key)
  local found = nil
  for j = 1, #all, 2 do
    if string.sub(all[j], 1, 1) == 'c' and hold_exp(all[j + 1]) > now then
      if found then return 'ambiguous' end
      found = string.sub(all[j], 2)
    end
  end
  if not found then return fail() end
  code = found
end
local f = 'c' .. code
local v = redis.call('HGET', key, f)
if not v or hold_exp(v) <= now or not phone_ok(v) then return fail() end
redis.call('HDEL', key, f)
phone_drop(KEYS[2], v, number, f)
return hold_sid(v)
"#;

/// Releases a hold if the service still holds it. KEYS: number, its group's per-phone index.
/// ARGV: code or '', service id, the number.
pub const RELEASE: &str = r#"
local f = 'x'
if ARGV[1] ~= '' then f = 'c' .. ARGV[1] end
local v = redis.call('HGET', KEYS[1], f)
if v and hold_sid(v) == ARGV[2] then
  redis.call('HDEL', KEYS[1], f)
  phone_drop(KEYS[2], v, ARGV[3], f)
  return 1
end
return 0
"#;

/// Counts the live holds of some numbers of one group, for the metrics gauges; purges the
/// expired ones as it goes (as a reservation would), so the next count reads only holds made
/// since. KEYS: number keys. Returns, per number, 1/0 for a live exclusive hold and the count
/// of live coded holds.
pub const USAGE: &str = r#"
local now = now_ms()
local out = {}
for i = 1, #KEYS do
  local live = purge(KEYS[i], now)
  local x = redis.call('HEXISTS', KEYS[i], 'x')
  out[#out + 1] = x
  out[#out + 1] = live - x
end
return out
"#;
