-- New visitors: no cookies, so every request opens a contact, a device and an interaction.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '[{"pageId":"{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}","url":"/"},{"eventId":"Download"},{"goalId":"Register"}]'
