-- wrk script for one benchmark scenario: the same request on every connection, and a strict
-- tally of the answers. Configured by environment variables (set by bench/run):
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_PATH    request path (default /)
--   BENCH_BODY    file holding the request body (optional; POST without one sends an empty body)
--   BENCH_CTYPE   Content-Type of the body (optional)
--   A body holding `{n}` gets a fresh number there in every request (1, 2, ...; per wrk
--   thread), e.g. a distinct customer number per callback create; other bodies are sent as they
--   are, without a Lua call per request.
-- done() prints one line `BENCHJSON {...}` (throughput, latency percentiles, counts) and exits
-- non-zero, with a message on stderr, when any answer was not a 200 or any socket error occurred.

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body_file = os.getenv("BENCH_BODY")
local ctype = os.getenv("BENCH_CTYPE")

wrk.method = method
wrk.path = path
wrk.headers["Host"] = "127.0.0.1"
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"), "cannot open BENCH_BODY " .. body_file)
  wrk.body = f:read("*a")
  f:close()
elseif method == "POST" then
  wrk.body = ""
end
if ctype and ctype ~= "" then
  wrk.headers["Content-Type"] = ctype
end

if string.find(wrk.body or "", "{n}", 1, true) then
  local template = wrk.body
  local counter = 0
  function request()
    counter = counter + 1
    local body = string.gsub(template, "{n}", tostring(counter))
    return wrk.format(nil, nil, nil, body)
  end
end

-- Per-thread state (each wrk thread runs its own copy of this script).
ok = 0
bad = 0
bad_status = {}   -- status -> count
bad_sample = nil  -- the first non-200 body, cut short

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    bad = bad + 1
    bad_status[status] = (bad_status[status] or 0) + 1
    if bad_sample == nil then bad_sample = string.sub(body or "", 1, 200) end
  end
end

-- Main state: the threads, to read their tallies in done().
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local function json_str(s)
  s = tostring(s or "")
  s = s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local ok_total, bad_total, statuses, sample = 0, 0, {}, nil
  for _, t in ipairs(threads) do
    ok_total = ok_total + (t:get("ok") or 0)
    bad_total = bad_total + (t:get("bad") or 0)
    local bs = t:get("bad_status") or {}
    for s, n in pairs(bs) do statuses[s] = (statuses[s] or 0) + n end
    sample = sample or t:get("bad_sample")
  end
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  local parts = {}
  for s, n in pairs(statuses) do table.insert(parts, string.format('"%d":%d', s, n)) end
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_s":%.6f,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"ok":%d,"non200":%d,"non200_status":{%s},"sock_errors":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"bytes":%d,"sample":%s}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    ok_total, bad_total, table.concat(parts, ","), sock,
    e.connect, e.read, e.write, e.timeout, summary.bytes, json_str(sample)))
  io.stdout:flush()
  if bad_total > 0 or sock > 0 or ok_total == 0 then
    local msg = string.format("FAILED: %s %s: %d non-200 answers (%s), %d socket errors " ..
      "(connect %d, read %d, write %d, timeout %d), %d 200s; first bad body: %s",
      method, path, bad_total, table.concat(parts, ","), sock,
      e.connect, e.read, e.write, e.timeout, ok_total, tostring(sample))
    io.stderr:write(msg .. "\n")
    io.stderr:flush()
    os.exit(1)
  end
end
