-- Append-only, hash-chained log: hash = H(prev_hash || canonical entry).
CREATE TABLE entries (
    sequence      INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    occurred_at   TEXT NOT NULL,
    recorded_at   TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    payload       TEXT NOT NULL,
    prev_hash     BLOB NOT NULL,
    hash          BLOB NOT NULL
);
CREATE INDEX entries_actor ON entries (actor, sequence);
CREATE INDEX entries_resource ON entries (resource_type, resource_id, sequence);

-- Signed chain heads.
CREATE TABLE checkpoints (
    sequence   INTEGER PRIMARY KEY REFERENCES entries(sequence),
    hash       BLOB NOT NULL,
    signature  BLOB NOT NULL,
    key_id     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
