-- Contacts merged into another when an identifier they were given was already the other's:
-- old links (a contact's id in a URL, a bookmarked Profile page) still find the survivor.
CREATE TABLE contact_merges (
    merged_id   BLOB PRIMARY KEY,
    survivor_id BLOB NOT NULL,
    merged_at   INTEGER NOT NULL
) WITHOUT ROWID;
-- Merges and erasure move or delete a contact's facets.
CREATE INDEX contact_facets_by_contact ON contact_facets (contact_id);
