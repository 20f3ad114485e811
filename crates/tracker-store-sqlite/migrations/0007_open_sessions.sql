-- Open interactions by session: a session that is not in memory (evicted under load, or from
-- before a restart) is resumed from the store on its next request. Partial, so it holds only
-- the open ones: an entry is added when a visit opens and removed when it closes.
CREATE INDEX interactions_open_by_session ON interactions (session_id) WHERE open = 1;
