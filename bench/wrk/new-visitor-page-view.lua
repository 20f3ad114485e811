-- Issue #23's measure: every request a new visitor's page view (no cookies: a contact, a
-- device and an interaction each), from a browser (a robot's would not be stored).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
wrk.body = '[{"pageId":"{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}","url":"/"}]'
function response(status, headers, body)
  if status ~= 200 then
    print("status " .. status .. " " .. body)
  end
end
