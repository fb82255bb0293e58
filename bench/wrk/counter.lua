-- wrk script of the chain load bench (bench/chain_load.sh): POSTs
-- /resource/counter with the bearer token in $BENCH_TOKEN, keeps a histogram
-- of the statuses and every counter value each thread saw, and at the end
-- prints one machine-readable "BENCH ..." line and writes the values, one a
-- line, to $BENCH_VALUES (when set). The nginx ceiling runs the same script,
-- so the client does the same work per response in both.
local token = os.getenv("BENCH_TOKEN") or ""
local values_file = os.getenv("BENCH_VALUES")
local threads = {}

wrk.method = "POST"
local path = os.getenv("BENCH_PATH") or ""
if path ~= "" then
    wrk.path = path
end
if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end
local body = os.getenv("BENCH_BODY") or ""
if body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
else
    -- as libcurl sends an empty POST (wrk would send no length at all)
    wrk.headers["Content-Length"] = "0"
end

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
    values = {}
    nvalues = 0
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if status >= 200 and status < 300 and body then
        local v = body:match('"counter"%s*:%s*(%d+)')
        if v then
            nvalues = nvalues + 1
            values[nvalues] = tonumber(v)
        end
    end
end

function done(summary, latency, requests)
    local hist = {}
    local f = nil
    local nv = 0
    if values_file and values_file ~= "" then
        f = io.open(values_file, "w")
    end
    for _, t in ipairs(threads) do
        for s, n in pairs(t:get("statuses") or {}) do
            hist[s] = (hist[s] or 0) + n
        end
        local vs = t:get("values") or {}
        local n = t:get("nvalues") or 0
        nv = nv + n
        if f then
            for i = 1, n do
                f:write(string.format("%d\n", vs[i]))
            end
        end
    end
    if f then
        f:close()
    end
    local parts = {}
    for s, n in pairs(hist) do
        table.insert(parts, string.format("%d:%d", s, n))
    end
    table.sort(parts)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
        "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d values=%d statuses=%s\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        latency.max, e.connect, e.read, e.write, e.timeout, e.status, nv, table.concat(parts, ",")))
end
