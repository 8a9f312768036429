-- wrk script for bench/run.py: one connection per thread, one scenario per run.
-- Environment: BENCH_SCENARIO (floor | cycle | get | miss | create), BENCH_SESSIONS
-- ("sid:fence,sid:fence,..." one per thread), BENCH_KEY (API key), BENCH_BODY_FILE (the
-- create body), BENCH_LIMIT (requests per thread, then the thread stops and prints DONE).
-- The scenarios mirror bench/loadgen.py; keep the two in step.

local scenario = os.getenv("BENCH_SCENARIO") or "floor"
local key = os.getenv("BENCH_KEY") or "vsk_test_default"
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  local index = 0
  for entry in string.gmatch(os.getenv("BENCH_SESSIONS") or "", "[^,]+") do
    index = index + 1
    if index == counter then
      local sid, fence = string.match(entry, "([^:]+):(%d+)")
      thread:set("sid", sid)
      thread:set("fence", fence)
    end
  end
  thread:set("id", counter)
  table.insert(threads, thread)
end

local api = "/api/v1/replay/sessions"
local json_headers = {}
local get_headers = {}
local step = 0
local prep, receipts_todo = nil, {}
local done_count = 0
bad, statuses = 0, "" -- globals: done() reads them with thread:get
local create_body = nil
local base, fence_token

function init(args)
  json_headers["Content-Type"] = "application/json"
  json_headers["Authorization"] = "Bearer " .. key
  get_headers["Authorization"] = "Bearer " .. key
  base = api .. "/" .. (sid or "none")
  fence_token = fence or "1"
  local path = os.getenv("BENCH_BODY_FILE")
  if path and path ~= "" then
    local file = assert(io.open(path, "rb"))
    create_body = file:read("*a")
    file:close()
  end
end

local function preflight_body()
  return '{"fence_token":' .. fence_token .. ',"request":{"model":"bench-model",'
    .. '"tools":["verify_customer","lookup_order","issue_refund"]}}'
end

local function proposal_body()
  return '{"prepared_request_id":"' .. prep .. '","fence_token":' .. fence_token
    .. ',"response":{"tool_calls":['
    .. '{"id":"c1","name":"verify_customer","arguments":{"customer_id":"cus_42"}},'
    .. '{"id":"c2","name":"lookup_order","arguments":{"order_id":"ord_7"}}]},'
    .. '"usage":{"input_tokens":120,"output_tokens":30}}'
end

local function receipt_body(pending_id, output)
  return '{"pending_call_id":"' .. pending_id .. '","fence_token":' .. fence_token
    .. ',"outcome":"success","output":' .. output
    .. ',"evidence":{"kind":"local_transaction","acknowledged":true}}'
end

local outputs = { '{"verified":true}', '{"status":"shipped","total":120}' }

function request()
  if scenario == "floor" then
    return wrk.format("POST", "/echo", json_headers, '{"fence_token":1}')
  elseif scenario == "get" then
    return wrk.format("GET", base, get_headers, nil)
  elseif scenario == "miss" then
    return wrk.format("GET", api .. "/sess_0000000000000000", get_headers, nil)
  elseif scenario == "create" then
    return wrk.format("POST", api, json_headers, create_body)
  end
  if #receipts_todo > 0 then
    local item = receipts_todo[1]
    return wrk.format("POST", base .. "/receipts", json_headers, receipt_body(item[1], item[2]))
  elseif step == 1 then
    return wrk.format("POST", base .. "/proposals", json_headers, proposal_body())
  end
  return wrk.format("POST", base .. "/preflight", json_headers, preflight_body())
end

local function unexpected(status, body)
  bad = bad + 1
  if #statuses < 400 then
    statuses = statuses .. status .. " " .. string.sub(body or "", 1, 160) .. "\n"
  end
end

local function cycle_response(status, body)
  if #receipts_todo > 0 then
    table.remove(receipts_todo, 1)
    if status ~= 200 then unexpected(status, body) end
    return
  end
  if step == 0 then
    if status == 200 then
      prep = string.match(body, '"prepared_request_id":"([^"]+)"')
      step = 1
    else
      unexpected(status, body)
      -- recover: receipt whatever a cut-short earlier run left pending
      for pending_id in string.gmatch(body, '"(pc_%x+)"') do
        table.insert(receipts_todo, { pending_id, "null" })
      end
    end
  else
    step = 0
    if status ~= 200 then
      unexpected(status, body)
      return
    end
    local index = 0
    for pending_id in string.gmatch(body, '"pending_call_id":"([^"]+)"') do
      index = index + 1
      table.insert(receipts_todo, { pending_id, outputs[index] or "null" })
    end
    if index ~= 2 then unexpected(status, body) end
  end
end

function response(status, headers, body)
  if scenario == "cycle" then
    cycle_response(status, body)
  elseif scenario == "create" then
    if status ~= 201 then unexpected(status, body) end
  elseif scenario == "miss" then
    if status ~= 404 then unexpected(status, body) end
  elseif status ~= 200 then
    unexpected(status, body)
  end
  done_count = done_count + 1
  if limit > 0 and done_count == limit then
    io.stdout:write("DONE\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local unexpected_total, samples = 0, ""
  for _, thread in ipairs(threads) do
    unexpected_total = unexpected_total + (thread:get("bad") or 0)
    local text = thread:get("statuses") or ""
    if #samples < 1000 then samples = samples .. text end
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,'
      .. '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,'
      .. '"unexpected":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout, unexpected_total,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
  io.write("BENCH_SAMPLES_BEGIN\n" .. samples .. "BENCH_SAMPLES_END\n")
end
