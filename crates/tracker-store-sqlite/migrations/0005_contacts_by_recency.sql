-- The contact list walks contacts by last activity (then id, for stable pages) instead of
-- computing every contact's activity from its interactions and sorting them all.
DROP INDEX IF EXISTS contacts_by_activity;
CREATE INDEX contacts_by_recency ON contacts (last_activity, id);
