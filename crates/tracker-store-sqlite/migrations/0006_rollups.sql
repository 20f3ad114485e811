-- Daily roll-ups of closed visits per site, for the dashboard, and the goals, campaigns and
-- sites of each contact, for search (see `rollup.rs`). A closed interaction never changes again, so
-- the writer adds it once, when it closes; readers add the open ones as they stand. Filled
-- from the visits already stored by the migration's hook. `site` is '' for visits without one.
CREATE TABLE rollup_visits (
    day              INTEGER NOT NULL, -- days since 1970-01-01 (UTC) of the visit's start
    site             TEXT NOT NULL,
    visits           INTEGER NOT NULL,
    page_views       INTEGER NOT NULL,
    bounces          INTEGER NOT NULL,
    engagement_value INTEGER NOT NULL,
    conversions      INTEGER NOT NULL,
    PRIMARY KEY (day, site)
) WITHOUT ROWID;

-- Goals and campaigns: the visits that reached each.
CREATE TABLE rollup_definitions (
    day           INTEGER NOT NULL,
    site          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    definition_id BLOB NOT NULL,
    name          TEXT NOT NULL,
    visits        INTEGER NOT NULL,
    PRIMARY KEY (day, site, kind, definition_id)
) WITHOUT ROWID;

-- Outcomes per currency ('' for none): how many, and the exact sum of their money (decimal
-- text, NULL when none carried any).
CREATE TABLE rollup_outcomes (
    day            INTEGER NOT NULL,
    site           TEXT NOT NULL,
    definition_id  BLOB NOT NULL,
    currency       TEXT NOT NULL,
    name           TEXT NOT NULL,
    count          INTEGER NOT NULL,
    monetary_value TEXT,
    PRIMARY KEY (day, site, definition_id, currency)
) WITHOUT ROWID;

CREATE TABLE rollup_pages (
    day        INTEGER NOT NULL,
    site       TEXT NOT NULL,
    url        TEXT NOT NULL,
    page_views INTEGER NOT NULL,
    PRIMARY KEY (day, site, url)
) WITHOUT ROWID;

-- What contact search filters on, per contact, from its closed visits: the goals and
-- campaigns it reached (`value` is the definition's 16-byte id) and the sites it visited
-- (`value` is the site name, text).
CREATE TABLE contact_facets (
    facet      TEXT NOT NULL, -- 'goal', 'campaign' or 'site'
    value      BLOB NOT NULL, -- no affinity: blobs and text stay as given
    contact_id BLOB NOT NULL,
    PRIMARY KEY (facet, value, contact_id)
) WITHOUT ROWID;

-- One row the readiness probe (`/readyz`) rewrites and commits: whether the store accepts
-- writes right now.
CREATE TABLE readiness (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL
);
