-- Signed checkpoints, retention anchors and the Ed25519 key that signs them.

-- Audit's signing keys. The private key is only ever stored sealed (ironmesh-sealing envelope);
-- `generation` makes creating the first key race-free across replicas (INSERT … ON CONFLICT
-- DO NOTHING on generation 1, then everyone reads the newest).
CREATE TABLE signing_keys (
    generation         BIGINT PRIMARY KEY,
    key_id             TEXT NOT NULL UNIQUE,
    public_key         BYTEA NOT NULL,
    sealed_private_key BYTEA NOT NULL,
    created_at_ns      BIGINT NOT NULL
);

-- Signed heads (GetCheckpoint and the periodic signer), one per head sequence.
CREATE TABLE checkpoints (
    sequence     BIGINT PRIMARY KEY,
    hash         BYTEA NOT NULL,
    signed_at_ns BIGINT NOT NULL,
    key_id       TEXT NOT NULL,
    signature    BYTEA NOT NULL
);

-- Retention anchors: entries up to `sequence` were purged; the retained chain continues from
-- `hash`. The highest one is where the chain starts.
CREATE TABLE anchors (
    sequence     BIGINT PRIMARY KEY,
    hash         BYTEA NOT NULL,
    signed_at_ns BIGINT NOT NULL,
    key_id       TEXT NOT NULL,
    signature    BYTEA NOT NULL
);

-- Deleting an entry is refused unless a retention anchor covers it: the one path that removes
-- entries is retention, which records (and signs) the anchor in the same transaction first.
-- Anyone inserting a fake anchor to open the gate leaves an anchor whose signature does not
-- verify, which VerifyChain reports. UPDATE and TRUNCATE stay refused.
CREATE OR REPLACE FUNCTION entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.sequence <= (SELECT COALESCE(MAX(sequence), 0) FROM anchors) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only (retention removes them only below a signed anchor)';
END;
$$;

-- Retention drops checkpoints of purged entries only.
CREATE FUNCTION checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.sequence < (SELECT COALESCE(MAX(sequence), 0) FROM anchors) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit checkpoints are append-only';
END;
$$;
CREATE TRIGGER checkpoints_no_change BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION checkpoints_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION checkpoints_append_only();

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit % are append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER anchors_no_change BEFORE UPDATE OR DELETE ON anchors
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER anchors_no_truncate BEFORE TRUNCATE ON anchors
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER signing_keys_no_change BEFORE UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER signing_keys_no_truncate BEFORE TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
