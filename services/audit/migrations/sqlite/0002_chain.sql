-- The chain as audit.proto defines it. Version 1's tables never held a row (the service was a
-- stub), so they are replaced rather than altered.
DROP TABLE checkpoints;
DROP TABLE entries;

-- One row per AuditEntry. Times are integer nanoseconds since the Unix epoch (UTC), so the
-- hashed protobuf Timestamp comes back exactly (a TIMESTAMPTZ would round to microseconds).
CREATE TABLE entries (
    sequence        INTEGER PRIMARY KEY,
    entry_id        TEXT NOT NULL UNIQUE,
    occurred_at_ns  INTEGER NOT NULL,
    recorded_at_ns  INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    outcome         INTEGER NOT NULL,
    source_service  TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    details         TEXT NOT NULL,
    prev_hash       BLOB NOT NULL,
    hash            BLOB NOT NULL
);
CREATE INDEX entries_actor ON entries (actor, sequence);
CREATE INDEX entries_resource ON entries (resource, sequence);
CREATE INDEX entries_action ON entries (action, sequence);
CREATE INDEX entries_occurred ON entries (occurred_at_ns, sequence);

-- The head of the chain: one row every Append locks first, so appends are serialized by the
-- database (across processes and replicas), never by a lock in one process.
CREATE TABLE chain_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    sequence INTEGER NOT NULL,
    hash     BLOB NOT NULL
);
INSERT INTO chain_head (id, sequence, hash) VALUES (1, 0, zeroblob(32));

-- Append-only: the service never changes or removes an entry, and neither may anyone else
-- through this database without dropping the triggers first (which VerifyChain then catches).
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;
