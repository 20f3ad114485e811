-- Returning visitors: each thread keeps up to 200 visitors' cookies and cycles through them.
local cookies = {}
local n = 0
local i = 0
local body = '[{"pageId":"{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}","url":"/"},{"eventId":"Download"},{"goalId":"Register"}]'
function request()
  i = i + 1
  local headers = { ["Content-Type"] = "application/json" }
  if n >= 200 then
    headers["Cookie"] = cookies[(i % n) + 1]
  end
  return wrk.format("POST", nil, headers, body)
end
function response(status, headers, body)
  if status ~= 200 then
    print("status " .. status .. " " .. body)
  end
  if n < 200 and headers["Set-Cookie"] then
    -- wrk joins repeated headers; keep the name=value pairs only.
    local c = {}
    for pair in string.gmatch(headers["Set-Cookie"], "([%w%._]+=[^;,]+)") do
      if pair:match("^SC_ANALYTICS") or pair:match("^ASP") then table.insert(c, pair) end
    end
    n = n + 1
    cookies[n] = table.concat(c, "; ")
  end
end
