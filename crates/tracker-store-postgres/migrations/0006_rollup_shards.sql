-- Each day's roll-up rows of a site are hot: every closing visit adds to them, and one row per
-- key made the writers' transactions wait for each other on its lock (held until the holder
-- committed). A key now has up to 64 rows, one per shard; each writer adds to its own and
-- readers sum a key's rows.
ALTER TABLE rollup_visits ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE rollup_visits DROP CONSTRAINT rollup_visits_pkey;
ALTER TABLE rollup_visits ADD PRIMARY KEY (day, site, shard);

ALTER TABLE rollup_definitions ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE rollup_definitions DROP CONSTRAINT rollup_definitions_pkey;
ALTER TABLE rollup_definitions ADD PRIMARY KEY (day, site, kind, definition_id, shard);

ALTER TABLE rollup_outcomes ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE rollup_outcomes DROP CONSTRAINT rollup_outcomes_pkey;
ALTER TABLE rollup_outcomes ADD PRIMARY KEY (day, site, definition_id, currency, shard);

ALTER TABLE rollup_pages ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE rollup_pages DROP CONSTRAINT rollup_pages_pkey;
ALTER TABLE rollup_pages ADD PRIMARY KEY (day, site, url, shard);
