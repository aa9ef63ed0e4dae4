-- Customer credentials, envelope-encrypted (see the `credentials` docs of the store): one row
-- per (request, kind); `ciphertext` is the material sealed by the row's own data key and
-- `wrapped_key` that data key sealed by the key-encryption key `key_id`, both bound to
-- "request_id|kind". The key-encryption keys themselves are sealed by the master keyring,
-- newest `seq` is current; nothing here is plaintext but the names of the entries.
CREATE TABLE provisioning_credential_keys (
    seq        BIGINT PRIMARY KEY,
    key_id     TEXT NOT NULL UNIQUE,
    sealed_key BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE provisioning_credentials (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    field_names TEXT NOT NULL,   -- JSON array of the material's entry names, sorted
    key_id      TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (request_id, kind)
);
CREATE INDEX provisioning_credentials_key ON provisioning_credentials (key_id);

-- The kinds stored for a request, comma-separated and sorted (kinds are [a-z0-9_]), kept in
-- the same transaction as the credential rows so every read of a request shows them.
ALTER TABLE provisioning_requests ADD COLUMN credential_kinds TEXT NOT NULL DEFAULT '';
