-- Contacts merged into another when an identifier they were given was already the other's:
-- old links still find the survivor. On Citus: distributed by `merged_id`.
CREATE TABLE contact_merges (
    merged_id   uuid PRIMARY KEY,
    survivor_id uuid NOT NULL,
    merged_at   bigint NOT NULL
);
