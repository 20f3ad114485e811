-- What each interaction records about its client: the parsed user agent and the anonymised IP
-- address (issue: robots and visitor identification).
ALTER TABLE interactions ADD COLUMN browser TEXT;
ALTER TABLE interactions ADD COLUMN browser_version TEXT;
ALTER TABLE interactions ADD COLUMN os TEXT;
ALTER TABLE interactions ADD COLUMN device_type TEXT;
ALTER TABLE interactions ADD COLUMN ip TEXT;
