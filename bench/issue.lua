-- wrk script: POST one fixed body (JSON unless BENCH_CTYPE says otherwise) to every request and
-- count answers that are not the expected status. Used by bench/issuance.sh against both kyso
-- and `cfssl serve`, and by bench/ocsp.sh (DER OCSP requests) against kyso and `openssl ocsp`.
--
-- Environment:
--   BENCH_BODY    file holding the body (required)
--   BENCH_CTYPE   its Content-Type (default application/json)
--   BENCH_PATH    request path (default /api/v1/certificates)
--   BENCH_TOKEN   bearer token; no Authorization header when unset
--   BENCH_EXPECT  the status that counts as success (default 201)
--   BENCH_MIN_BYTES  an answer with the expected status but a shorter body counts as bad, under
--                 status "<code>-short" (default 0: any body). For protocols that carry their
--                 errors in a 200, such as OCSP's tryLater.
--   BENCH_LIMIT   stop once this many expected answers arrived, split evenly across threads
--                 (BENCH_THREADS must equal wrk's -t; default: no limit, run for wrk's -d).
--                 Answers to requests already in flight still arrive, so a few more may come.
--
-- At the end it prints one machine-readable line:
--   BENCH requests=N ok=N bad=N errors=N duration_s=S ok_per_s=R statuses=CODE:N,...

local body_file = os.getenv("BENCH_BODY") or error("BENCH_BODY is not set")
local f = assert(io.open(body_file, "rb"))
local body = f:read("*a")
f:close()

local expect = tonumber(os.getenv("BENCH_EXPECT") or "201")
local path = os.getenv("BENCH_PATH") or "/api/v1/certificates"
local token = os.getenv("BENCH_TOKEN")
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local min_bytes = tonumber(os.getenv("BENCH_MIN_BYTES") or "0")
local ctype = os.getenv("BENCH_CTYPE")
if not ctype or ctype == "" then
  ctype = "application/json"
end

wrk.method = "POST"
wrk.path = path
wrk.body = body
wrk.headers["Content-Type"] = ctype
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- Every thread has its own Lua state; keep their handles to add up the counters in done().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- The thread's share of BENCH_LIMIT, set in init() once the thread count is known.
quota = 0

function init(args)
  if limit > 0 then
    -- wrk gives each thread the same script; the thread count is its -t option.
    quota = math.ceil(limit / tonumber(os.getenv("BENCH_THREADS") or "1"))
  end
end

-- Per-thread counters (globals of the thread's Lua state, read back with thread:get).
ok = 0
bad = 0
by_status = {}

function response(status, headers, resp_body)
  if status == expect and (min_bytes == 0 or #(resp_body or "") >= min_bytes) then
    ok = ok + 1
    if quota > 0 and ok >= quota then
      wrk.thread:stop()
    end
  else
    bad = bad + 1
    local key = (status == expect) and (status .. "-short") or status
    by_status[key] = (by_status[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad, statuses = 0, 0, {}
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("bad")
    for code, n in pairs(t:get("by_status")) do
      statuses[code] = (statuses[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(statuses) do
    table.insert(parts, code .. ":" .. n)
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d ok=%d bad=%d errors=%d duration_s=%.3f ok_per_s=%.1f"
      .. " p50_ms=%.2f p99_ms=%.2f statuses=%s\n",
    summary.requests, total_ok, total_bad, errors, secs, total_ok / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    (#parts > 0) and table.concat(parts, ",") or "none"))
end
