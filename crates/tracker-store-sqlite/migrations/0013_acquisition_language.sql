-- Where a visit came from, worked out when it opens: its channel (direct, organic_search,
-- paid_search, social, email, referral, campaign), its source (utm_source, else the referrer's
-- host) and the landing URL's UTM tags. NULL on visits stored before: readers work them out
-- from landing_url and referrer.
ALTER TABLE interactions ADD COLUMN channel TEXT;
ALTER TABLE interactions ADD COLUMN source TEXT;
ALTER TABLE interactions ADD COLUMN utm_source TEXT;
ALTER TABLE interactions ADD COLUMN utm_medium TEXT;
ALTER TABLE interactions ADD COLUMN utm_campaign TEXT;
ALTER TABLE interactions ADD COLUMN utm_term TEXT;
ALTER TABLE interactions ADD COLUMN utm_content TEXT;
-- The visit's language: its first page view's, else the browser's first Accept-Language.
ALTER TABLE interactions ADD COLUMN language TEXT;
