-- The chain as audit.proto defines it. Version 1's tables never held a row (the service was a
-- stub), so they are replaced rather than altered.
DROP TABLE checkpoints;
DROP TABLE entries;

-- One row per AuditEntry. Times are integer nanoseconds since the Unix epoch (UTC), so the
-- hashed protobuf Timestamp comes back exactly (a TIMESTAMPTZ would round to microseconds).
CREATE TABLE entries (
    sequence        BIGINT PRIMARY KEY,
    entry_id        TEXT NOT NULL UNIQUE,
    occurred_at_ns  BIGINT NOT NULL,
    recorded_at_ns  BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    outcome         BIGINT NOT NULL,
    source_service  TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    details         TEXT NOT NULL,
    prev_hash       BYTEA NOT NULL,
    hash            BYTEA NOT NULL
);
CREATE INDEX entries_actor ON entries (actor, sequence);
CREATE INDEX entries_resource ON entries (resource, sequence);
CREATE INDEX entries_action ON entries (action, sequence);
CREATE INDEX entries_occurred ON entries (occurred_at_ns, sequence);

-- The head of the chain: one row every Append locks first (its UPDATE takes the row lock, like
-- SELECT … FOR UPDATE), so appends are serialized by the database across replicas.
CREATE TABLE chain_head (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    sequence BIGINT NOT NULL,
    hash     BYTEA NOT NULL
);
INSERT INTO chain_head (id, sequence, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Append-only. The service's role may own the table (and owners bypass revoked privileges),
-- so a trigger is what refuses UPDATE, DELETE and TRUNCATE on every deployment.
CREATE FUNCTION entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only';
END;
$$;
CREATE TRIGGER entries_no_change BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_append_only();
