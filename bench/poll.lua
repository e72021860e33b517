-- Polls `status` of the services listed in $POLL_IDS (one id per line), cycling through them,
-- with a fixed delay per connection so the request rate is set by the command line:
-- rate = connections * 1000 / POLL_DELAY_MS. Counts non-200 replies and fails loudly on any.
local ids = {}
for line in io.lines(os.getenv("POLL_IDS")) do ids[#ids + 1] = line end
local delay_ms = tonumber(os.getenv("POLL_DELAY_MS") or "10")
local prefix = os.getenv("POLL_PREFIX") or "/genesys/1"
local i = 0
local bad = 0

function delay()
  return delay_ms
end

function request()
  i = i % #ids + 1
  return wrk.format("POST", prefix .. "/service/" .. ids[i] .. "/status", {["Content-Length"] = "0"}, "")
end

function response(status)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary)
  io.write(string.format("polls %d non200 %d errors %d\n", summary.requests, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
