-- The experience database on PostgreSQL: the same model as the embedded SQLite store.
--
-- Laid out for sharding (Citus, distribution column `contact_id`): every table that grows with
-- traffic carries `contact_id` (on `contacts` it is `id`) and has it first in its primary key,
-- and a tracking request touches the rows of one contact only. `devices` is the exception that maps a cookie to its
-- contact: it is keyed (and would be distributed) by the device id. The roll-ups are small
-- (days x sites x definitions) and would be reference tables. See docs/scale-out.md.
--
-- Times are epoch milliseconds (UTC) as in SQLite; ids are native uuids; money is exact
-- decimal text on events and `numeric` in the roll-ups (summed by PostgreSQL, atomically).

CREATE TABLE settings (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE contacts (
    id               uuid PRIMARY KEY,
    created_at       bigint NOT NULL,
    last_activity    bigint NOT NULL,
    engagement_value bigint NOT NULL DEFAULT 0
);
CREATE INDEX contacts_by_recency ON contacts (last_activity, id);

CREATE TABLE devices (
    id         uuid PRIMARY KEY,
    contact_id uuid NOT NULL,
    first_seen bigint NOT NULL,
    last_seen  bigint NOT NULL
);
CREATE INDEX devices_by_contact ON devices (contact_id);

CREATE TABLE identifiers (
    source     text NOT NULL,
    identifier text NOT NULL,
    contact_id uuid NOT NULL,
    PRIMARY KEY (source, identifier)
);
CREATE INDEX identifiers_by_contact ON identifiers (contact_id);
CREATE INDEX identifiers_by_text ON identifiers (identifier);

CREATE TABLE interactions (
    contact_id        uuid NOT NULL,
    id                uuid NOT NULL,
    device_id         uuid NOT NULL,
    session_id        uuid NOT NULL,
    open              boolean NOT NULL,
    started_at        bigint NOT NULL,
    last_activity     bigint NOT NULL,
    ended_at          bigint,
    close_reason      text,
    site_name         text,
    campaign_id       uuid,
    campaign_name     text,
    campaign_points   bigint,
    user_agent        text,
    engagement_value  bigint NOT NULL,
    page_view_count   bigint NOT NULL,
    event_count       bigint NOT NULL,
    current_page_view uuid,
    browser           text,
    browser_version   text,
    os                text,
    device_type       text,
    ip                text,
    PRIMARY KEY (contact_id, id)
);
CREATE INDEX interactions_by_contact ON interactions (contact_id, started_at, id);
-- Resuming a session that is not in memory, and the sweeper's walk: open ones only.
CREATE INDEX interactions_open_by_session ON interactions (session_id) WHERE open;
CREATE INDEX interactions_open_by_id ON interactions (id) WHERE open;

CREATE TABLE events (
    contact_id      uuid NOT NULL,
    interaction_id  uuid NOT NULL,
    seq             bigint NOT NULL,
    id              uuid NOT NULL,
    kind            text NOT NULL,
    definition_id   uuid,
    definition_name text,
    points          bigint NOT NULL,
    timestamp       bigint NOT NULL,
    page_view_id    uuid,
    page_id         uuid,
    url             text,
    language        text,
    item_version    bigint,
    referrer        text,
    monetary_value  text,
    currency_code   text,
    data            text,
    data_key        text,
    text            text,
    value           double precision,
    custom          text,
    PRIMARY KEY (contact_id, interaction_id, seq)
);

-- Daily roll-ups of closed visits (see tracker_core::rollup).
CREATE TABLE rollup_visits (
    day              bigint NOT NULL,
    site             text NOT NULL,
    visits           bigint NOT NULL,
    page_views       bigint NOT NULL,
    bounces          bigint NOT NULL,
    engagement_value bigint NOT NULL,
    conversions      bigint NOT NULL,
    PRIMARY KEY (day, site)
);
CREATE TABLE rollup_definitions (
    day           bigint NOT NULL,
    site          text NOT NULL,
    kind          text NOT NULL,
    definition_id uuid NOT NULL,
    name          text NOT NULL,
    visits        bigint NOT NULL,
    PRIMARY KEY (day, site, kind, definition_id)
);
CREATE TABLE rollup_outcomes (
    day            bigint NOT NULL,
    site           text NOT NULL,
    definition_id  uuid NOT NULL,
    currency       text NOT NULL,
    name           text NOT NULL,
    count          bigint NOT NULL,
    monetary_value numeric,
    PRIMARY KEY (day, site, definition_id, currency)
);
CREATE TABLE rollup_pages (
    day        bigint NOT NULL,
    site       text NOT NULL,
    url        text NOT NULL,
    page_views bigint NOT NULL,
    PRIMARY KEY (day, site, url)
);
-- One row per contact and goal, campaign or site of its closed visits (contact search).
CREATE TABLE contact_facets (
    contact_id uuid NOT NULL,
    facet      text NOT NULL,
    value      text NOT NULL,
    PRIMARY KEY (contact_id, facet, value)
);
CREATE INDEX contact_facets_by_value ON contact_facets (facet, value);

-- The readiness probe's write: one row, rewritten each time.
CREATE TABLE readiness (
    id         integer PRIMARY KEY,
    checked_at bigint NOT NULL
);
