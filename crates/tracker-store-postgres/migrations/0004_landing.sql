-- Where a visit landed and where it came from: the URL and referrer of the first page view of
-- its first request, written with the interaction's row (traffic sources read them).
ALTER TABLE interactions ADD COLUMN landing_url text;
ALTER TABLE interactions ADD COLUMN referrer text;
