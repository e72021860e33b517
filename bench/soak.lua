-- wrk script for bench/soak: mixed traffic on ONE connection per wrk thread (run it with
-- -c equal to -t), so that request() and response() alternate and each thread can follow its
-- own little session: a response's ids feed the next requests.
--
-- One round, in order:
--   1 create    POST /genesys/1/service/request-interaction, urlencoded, with a code
--   2 match     POST /genesys/1/service/match-interaction with the number and code of 1
--   3 create_mp the same create as multipart with a 2,048-byte file
--   4 put       POST /genesys/1/storage/5 (two fields, TTL 5 s)
--   5 get       GET  /genesys/1/storage/{id of 4}
--   6 ors       POST /genesys/1/service/request-inbound-soak (ORS start on ors-sim)
--   7 status    POST /genesys/1/service/{id of 6}/status  (twice: fetch, then cached)
--   8 status
--   9 pass      GET  /static/soak.html (passed through to the web tier, ors-sim's echo)
-- A step whose input is missing (its earlier step failed) is skipped.
--
-- Environment: SOAK_DELAY_MS, pause before each request on a connection (rate limit).
-- done() prints `SOAKJSON {...}` and exits non-zero when any answer was not a 200 or any
-- socket error occurred.

local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "0")
local form = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Host"] = "127.0.0.1" }
local plain = { ["Host"] = "127.0.0.1" }

local boundary = "----gmsSoak7MA4YWxkTrZu0gW"
local function multipart_body()
  local bytes, x = {}, 12345
  for i = 1, 2048 do
    x = (1103515245 * x + 12345) % 2147483648
    bytes[i] = string.char(math.floor(x / 65536) % 256)
  end
  local file = table.concat(bytes)
  local parts = {}
  for _, kv in ipairs({ { "_phone_number", "5551234" }, { "_provide_code", "true" },
                        { "first_name", "Soak" }, { "subject", "multipart" } }) do
    parts[#parts + 1] = "--" .. boundary .. '\r\nContent-Disposition: form-data; name="'
      .. kv[1] .. '"\r\n\r\n' .. kv[2] .. "\r\n"
  end
  parts[#parts + 1] = "--" .. boundary
    .. '\r\nContent-Disposition: form-data; name="picture"; filename="p.jpg"\r\n'
    .. "Content-Type: image/jpeg\r\n\r\n" .. file .. "\r\n--" .. boundary .. "--\r\n"
  return table.concat(parts)
end
local mp_headers = { ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
                     ["Host"] = "127.0.0.1" }
local mp_body = multipart_body()

-- Per-thread state (each wrk thread runs its own copy of this script).
local STEPS = { "create", "match", "create_mp", "put", "get", "ors", "status", "status", "pass" }
step = 0          -- index of the step whose request went out last
n = 0             -- rounds begun
number, code, data_id, ors_id = nil, nil, nil, nil
ok = {}           -- step name -> 200s
bad = {}          -- step name -> other statuses
sample = nil      -- the first bad answer, cut short

local function needs(name)
  if name == "match" then return number and code end
  if name == "get" then return data_id end
  if name == "status" then return ors_id end
  return true
end

local function build(name)
  if name == "create" then
    n = n + 1
    return wrk.format("POST", "/genesys/1/service/request-interaction", form,
      "_phone_number=5551234&_provide_code=true&first_name=Soak&n=" .. n)
  elseif name == "match" then
    return wrk.format("POST", "/genesys/1/service/match-interaction", form,
      "_access_number=" .. number .. "&_access_code=" .. code)
  elseif name == "create_mp" then
    return wrk.format("POST", "/genesys/1/service/request-interaction", mp_headers, mp_body)
  elseif name == "put" then
    return wrk.format("POST", "/genesys/1/storage/5", form, "a=1&b=soak")
  elseif name == "get" then
    return wrk.format("GET", "/genesys/1/storage/" .. data_id, plain)
  elseif name == "ors" then
    return wrk.format("POST", "/genesys/1/service/request-inbound-soak", form,
      "_phone_number=5551234")
  elseif name == "status" then
    return wrk.format("POST", "/genesys/1/service/" .. ors_id .. "/status", plain, "")
  else
    return wrk.format("GET", "/static/soak.html", plain)
  end
end

function request()
  for _ = 1, #STEPS do
    step = step % #STEPS + 1
    local name = STEPS[step]
    if needs(name) then
      return build(name)
    end
  end
  return build("pass")
end

function delay()
  return delay_ms
end

function response(status, headers, body)
  local name = STEPS[step]
  if status == 200 then
    ok[name] = (ok[name] or 0) + 1
  else
    bad[name] = (bad[name] or 0) + 1
    if sample == nil then sample = name .. " " .. status .. " " .. string.sub(body or "", 1, 160) end
  end
  -- What later steps need; a failed step clears it so they are skipped.
  local good = status == 200
  if name == "create" then
    number = good and body:match('"_access_number":"([^"]+)"') or nil
    code = good and body:match('"_access_code":"([^"]+)"') or nil
  elseif name == "match" then
    number, code = nil, nil
  elseif name == "put" then
    data_id = good and body:match('"id":"([^"]+)"') or nil
  elseif name == "ors" then
    ors_id = good and body:match('"_id":"([^"]+)"') or nil
  end
end

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
  local oks, bads, first = {}, {}, nil
  local ok_total, bad_total = 0, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("ok") or {}) do oks[k] = (oks[k] or 0) + v; ok_total = ok_total + v end
    for k, v in pairs(t:get("bad") or {}) do bads[k] = (bads[k] or 0) + v; bad_total = bad_total + v end
    first = first or t:get("sample")
  end
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local by_step = {}
  for _, name in ipairs({ "create", "match", "create_mp", "put", "get", "ors", "status", "pass" }) do
    by_step[#by_step + 1] = string.format('"%s":[%d,%d]', name, oks[name] or 0, bads[name] or 0)
  end
  io.write(string.format(
    'SOAKJSON {"requests":%d,"duration_s":%.1f,"rps":%.1f,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"ok":%d,"bad":%d,"sock_errors":%d,"steps":{%s},"sample":%s}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max, ok_total, bad_total, sock,
    table.concat(by_step, ","), json_str(first)))
  io.stdout:flush()
  if bad_total > 0 or sock > 0 or ok_total == 0 then
    io.stderr:write(string.format("soak FAILED: %d non-200 answers, %d socket errors; first: %s\n",
      bad_total, sock, tostring(first)))
    os.exit(1)
  end
end
