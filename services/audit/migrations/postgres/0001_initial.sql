-- Append-only, hash-chained log: hash = H(prev_hash || canonical entry).
CREATE TABLE entries (
    sequence      BIGINT PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    occurred_at   TIMESTAMPTZ NOT NULL,
    recorded_at   TIMESTAMPTZ NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    payload       TEXT NOT NULL,
    prev_hash     BYTEA NOT NULL,
    hash          BYTEA NOT NULL
);
CREATE INDEX entries_actor ON entries (actor, sequence);
CREATE INDEX entries_resource ON entries (resource_type, resource_id, sequence);

-- Signed chain heads.
CREATE TABLE checkpoints (
    sequence   BIGINT PRIMARY KEY REFERENCES entries(sequence),
    hash       BYTEA NOT NULL,
    signature  BYTEA NOT NULL,
    key_id     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
