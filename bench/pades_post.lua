-- wrk: POST the PDF named by $PDF as application/pdf with the SAD in X-Kyso-Sad (bench/pades_floor.sh).
local f = io.open(os.getenv("PDF"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/pdf"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["X-Kyso-Sad"] = os.getenv("SAD")
local bad = 0
response = function(status, headers, body) if status ~= 201 then bad = bad + 1 end end
done = function(summary, latency, requests)
  io.write(string.format("requests=%d non201=%d rate=%.1f/s p50=%.2fms\n", summary.requests, bad, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000))
end
