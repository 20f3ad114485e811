-- The sweeper's walk over open interactions goes by start: only those that started before the
-- idle cutoff can be idle, so it reads those and no others (it used to read every open
-- interaction each sweep). Replaces the index of open interactions by id (same size, same
-- appends); the dashboard's open visits of a date range use it too.
DROP INDEX IF EXISTS interactions_open_by_id;
CREATE INDEX interactions_open_by_start ON interactions (started_at, id) WHERE open;
