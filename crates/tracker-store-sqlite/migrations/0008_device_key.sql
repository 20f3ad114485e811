-- Settings the tracker keeps with its data. `device_key` signs the device ids it issues
-- (SC_ANALYTICS_GLOBAL_COOKIE): one key per database, so that every server on it (and every
-- restart) accepts the same cookies. 32 bytes from SQLite's generator, seeded by the OS.
CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO settings (name, value) VALUES ('device_key', randomblob(32));
