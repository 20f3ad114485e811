-- Contacts, their devices and identifiers; interactions (open ones are stored as they grow) and
-- their events. Times are epoch milliseconds (UTC); ids are lowercase hyphenated GUIDs, device ids
-- 32 hex digits as in SC_ANALYTICS_GLOBAL_COOKIE.
CREATE TABLE contacts (
    id               TEXT PRIMARY KEY,
    created_at       INTEGER NOT NULL,
    -- Moved when an interaction opens or closes (not on every event, to keep writes cheap).
    last_activity    INTEGER NOT NULL,
    engagement_value INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX contacts_by_activity ON contacts (last_activity);

CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
CREATE INDEX devices_by_contact ON devices (contact_id);

CREATE TABLE identifiers (
    source     TEXT NOT NULL,
    identifier TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    PRIMARY KEY (source, identifier)
);
CREATE INDEX identifiers_by_contact ON identifiers (contact_id);

CREATE TABLE interactions (
    id                TEXT PRIMARY KEY,
    contact_id        TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    session_id        TEXT NOT NULL,
    open              INTEGER NOT NULL,
    started_at        INTEGER NOT NULL,
    last_activity     INTEGER NOT NULL,
    ended_at          INTEGER,
    close_reason      TEXT,
    site_name         TEXT,
    campaign_id       TEXT,
    campaign_name     TEXT,
    campaign_points   INTEGER,
    user_agent        TEXT,
    engagement_value  INTEGER NOT NULL,
    page_view_count   INTEGER NOT NULL,
    event_count       INTEGER NOT NULL,
    current_page_view TEXT
);
CREATE INDEX interactions_by_contact ON interactions (contact_id, started_at);
CREATE INDEX interactions_open ON interactions (open) WHERE open = 1;

CREATE TABLE events (
    interaction_id  TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    id              TEXT NOT NULL,
    kind            TEXT NOT NULL,
    definition_id   TEXT,
    definition_name TEXT,
    points          INTEGER NOT NULL,
    timestamp       INTEGER NOT NULL,
    page_view_id    TEXT,
    page_id         TEXT,
    url             TEXT,
    language        TEXT,
    item_version    INTEGER,
    referrer        TEXT,
    monetary_value  TEXT,
    currency_code   TEXT,
    data            TEXT,
    data_key        TEXT,
    text            TEXT,
    value           REAL,
    custom          TEXT
);
CREATE UNIQUE INDEX events_by_interaction ON events (interaction_id, seq);
