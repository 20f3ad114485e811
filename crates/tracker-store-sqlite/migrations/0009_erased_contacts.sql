-- Contacts erased on request (the right to erasure): only the random id and when. Everything
-- else of the contact is deleted; the roll-ups keep its visits' counts.
CREATE TABLE erased_contacts (
    id        BLOB PRIMARY KEY,
    erased_at INTEGER NOT NULL
) WITHOUT ROWID;
