-- Signed checkpoints, retention anchors and the Ed25519 key that signs them.

-- Audit's signing keys. The private key is only ever stored sealed (ironmesh-sealing envelope);
-- `generation` makes creating the first key race-free across replicas (INSERT … ON CONFLICT
-- DO NOTHING on generation 1, then everyone reads the newest).
CREATE TABLE signing_keys (
    generation         INTEGER PRIMARY KEY,
    key_id             TEXT NOT NULL UNIQUE,
    public_key         BLOB NOT NULL,
    sealed_private_key BLOB NOT NULL,
    created_at_ns      INTEGER NOT NULL
);

-- Signed heads (GetCheckpoint and the periodic signer), one per head sequence.
CREATE TABLE checkpoints (
    sequence     INTEGER PRIMARY KEY,
    hash         BLOB NOT NULL,
    signed_at_ns INTEGER NOT NULL,
    key_id       TEXT NOT NULL,
    signature    BLOB NOT NULL
);

-- Retention anchors: entries up to `sequence` were purged; the retained chain continues from
-- `hash`. The highest one is where the chain starts.
CREATE TABLE anchors (
    sequence     INTEGER PRIMARY KEY,
    hash         BLOB NOT NULL,
    signed_at_ns INTEGER NOT NULL,
    key_id       TEXT NOT NULL,
    signature    BLOB NOT NULL
);

-- Deleting an entry is refused unless a retention anchor covers it: the one path that removes
-- entries is retention, which records (and signs) the anchor in the same transaction first.
-- Anyone inserting a fake anchor to open the gate leaves an anchor whose signature does not
-- verify, which VerifyChain reports.
DROP TRIGGER entries_no_delete;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
WHEN OLD.sequence > (SELECT COALESCE(MAX(sequence), 0) FROM anchors)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only (retention removes them only below a signed anchor)');
END;

CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
-- Retention drops checkpoints of purged entries only.
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
WHEN OLD.sequence >= (SELECT COALESCE(MAX(sequence), 0) FROM anchors)
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
CREATE TRIGGER anchors_no_update BEFORE UPDATE ON anchors
BEGIN
    SELECT RAISE(ABORT, 'audit anchors are append-only');
END;
CREATE TRIGGER anchors_no_delete BEFORE DELETE ON anchors
BEGIN
    SELECT RAISE(ABORT, 'audit anchors are append-only');
END;
CREATE TRIGGER signing_keys_no_update BEFORE UPDATE ON signing_keys
BEGIN
    SELECT RAISE(ABORT, 'audit signing keys are append-only');
END;
CREATE TRIGGER signing_keys_no_delete BEFORE DELETE ON signing_keys
BEGIN
    SELECT RAISE(ABORT, 'audit signing keys are append-only');
END;
