-- wrk script for the memory measurement: exactly BENCH_N service creates, then stop.
-- Environment (set by bench/run):
--   BENCH_N       how many creates (required)
--   BENCH_PATH    create path, e.g. /genesys/1/service/request-interaction-live
--   BENCH_BODY    file holding the urlencoded create body
--   BENCH_FILLER  path of a GET that creates nothing (the health endpoint), sent once the N
--                 creates are out, so that no create beyond N is ever sent
--   BENCH_DONE_FILE  created when the N creates are answered: wrk's main thread sleeps for the
--                 whole -d duration whatever its threads do, so bench/run then sends it SIGINT
--   BENCH_EXPECT  what a create's 200 body holds (default "_access_code"; scheduled callbacks:
--                 "SCHEDULED")
--   BENCH_T0, BENCH_STEP, BENCH_SLOTS  (optional) the body is a template: create i (0, 1, ...)
--                 gets i in place of `{n}` and, in place of `{t}`, the UTC time
--                 BENCH_T0 + (i % BENCH_SLOTS) * BENCH_STEP seconds (e.g. 100,000 scheduled
--                 callbacks spread over the buckets of a service, each with its own number)
-- Run with ONE wrk thread (-t1): the counters are that thread's. A create answer is a 200
-- whose body holds BENCH_EXPECT; done() prints `BENCHJSON {...}` and exits non-zero unless
-- exactly N creates got a 200 and nothing failed.

local n = tonumber(os.getenv("BENCH_N") or "")
assert(n and n > 0, "BENCH_N must be a positive number")
local path = os.getenv("BENCH_PATH")
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = f:read("*a")
f:close()
local filler_path = os.getenv("BENCH_FILLER") or "/"
local done_file = os.getenv("BENCH_DONE_FILE")

local expect = os.getenv("BENCH_EXPECT") or "_access_code"
local t0 = tonumber(os.getenv("BENCH_T0") or "")
local step = tonumber(os.getenv("BENCH_STEP") or "0")
local slots = tonumber(os.getenv("BENCH_SLOTS") or "1")
local head = {["Host"] = "127.0.0.1", ["Content-Type"] = "application/x-www-form-urlencoded"}
local fixed = wrk.format("POST", path, head, body)

-- Create i's request: the fixed one, or the template filled in.
local function create_req(i)
  if not t0 then return fixed end
  local at = os.date("!%Y-%m-%dT%H:%M:%S.000Z", t0 + (i % slots) * step)
  local b = string.gsub(string.gsub(body, "{n}", tostring(i)), "{t}", at)
  return wrk.format("POST", path, head, b)
end
local filler = wrk.format("GET", filler_path, {["Host"] = "127.0.0.1"})

sent = 0       -- creates sent
created = 0    -- creates answered 200 with a code
bad = 0        -- answers other than 200
other_ok = 0   -- 200s that were not creates (filler)
bad_status = {}
bad_sample = nil
finished = false

-- wrk 4 calls request() once on the first thread's script before any connection exists, to
-- check the request (and count pipelined ones); that call sends nothing, so it is not counted.
verify_call = true

function request()
  if verify_call then
    verify_call = false
    return fixed
  end
  if sent < n then
    sent = sent + 1
    return create_req(sent - 1)
  end
  return filler
end

function response(status, headers, body)
  if status == 200 then
    if string.find(body, expect, 1, true) then
      created = created + 1
    else
      other_ok = other_ok + 1
    end
  else
    bad = bad + 1
    bad_status[status] = (bad_status[status] or 0) + 1
    if bad_sample == nil then bad_sample = string.sub(body or "", 1, 200) end
  end
  if created + bad >= n and not finished then
    finished = true
    if done_file then
      local f = io.open(done_file, "w")
      if f then f:close() end
    end
    wrk.thread:stop()
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  assert(#threads == 1, "run create_n.lua with -t1")
  local t = threads[1]
  local c, b, s, o = t:get("created"), t:get("bad"), t:get("sent"), t:get("other_ok")
  local secs = summary.duration / 1e6
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  io.write(string.format('BENCHJSON {"n":%d,"sent":%d,"created":%d,"non200":%d,"filler_ok":%d,' ..
    '"sock_errors":%d,"duration_s":%.3f,"create_rps":%.1f}\n', n, s, c, b, o, sock, secs, c / secs))
  io.stdout:flush()
  if c ~= n or b > 0 or sock > 0 then
    local parts = {}
    for st, k in pairs(t:get("bad_status") or {}) do table.insert(parts, st .. "x" .. k) end
    io.stderr:write(string.format("FAILED: %d of %d creates answered 200 (%d sent), %d non-200 (%s), " ..
      "%d socket errors; first bad body: %s\n", c, n, s, b, table.concat(parts, ","), sock,
      tostring(t:get("bad_sample"))))
    io.stderr:flush()
    os.exit(1)
  end
end
