-- http_inject.lua - wrk script for `scripts/bench.sh http` (a): POST
-- /api/inject/v1 requests of 1 recipient each, with a personalised ~5 KB
-- template (text + html bodies with merge fields), over keep-alive.
-- Env: HTTP_TOKEN (bearer token). Each request has its own recipient and values.
local token = os.getenv("HTTP_TOKEN") or ""
local counter = 0
local thread_id = 0

local para = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod " ..
             "tempor incididunt ut labore et dolore magna aliqua. "
local text = "Hello {{ first | default: \"friend\" }},\n\n" .. string.rep(para .. "\n", 14) ..
             "Your code is {{ code }}.\n"
local html = "<p>Hello {{ first | default: \"friend\" }},</p>\n" ..
             string.rep("<p>" .. para .. "</p>\n", 14) .. "<p>Your code is {{ code }}.</p>\n"

local function jstr(s)
   return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n') .. '"'
end

local prefix = '{"envelope_sender":"bench@src.test","content":{"subject":' ..
   jstr("Hi {{ first }}") .. ',"from":{"email":"bench@src.test","name":"Bench"},' ..
   '"text_body":' .. jstr(text) .. ',"html_body":' .. jstr(html) .. '},"recipients":[{"email":"'

function setup(thread)
   thread:set("thread_id", thread_id)
   thread_id = thread_id + 1
end

function request()
   counter = counter + 1
   local body = prefix .. "u" .. thread_id .. "-" .. counter .. "@dst.test" ..
      '","substitutions":{"first":"User ' .. counter .. '","code":"' .. thread_id .. "-" ..
      counter .. '"}}]}'
   return wrk.format("POST", "/api/inject/v1", { ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json" }, body)
end

local bad = 0
function response(status, headers, body)
   if status ~= 200 or not body:find('"success_count":1', 1, true) then
      bad = bad + 1
      if bad <= 3 then io.stderr:write("bad response " .. status .. ": " .. body .. "\n") end
   end
end

function done(summary, latency, requests)
   io.write(string.format("wrk_summary requests=%d errors_status=%d p50_us=%d p99_us=%d\n",
      summary.requests, summary.errors.status, latency:percentile(50),
      latency:percentile(99)))
end
