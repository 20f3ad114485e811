-- Contacts erased on request (the right to erasure): only the random id and when. Everything
-- else of the contact is deleted; the roll-ups keep its visits' counts. On Citus: distributed
-- by `id`, colocated with `contacts`.
CREATE TABLE erased_contacts (
    id        uuid PRIMARY KEY,
    erased_at bigint NOT NULL
);
