-- Onboarding requests, served by priority tier then submission order.
CREATE TABLE requests (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    plan         TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    submitted_at TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX requests_queue ON requests (status, priority, submitted_at);
CREATE INDEX requests_customer ON requests (customer_id, submitted_at);

-- Work items leased by workers; an expired lease makes the job claimable again.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (status, lease_expires_at);

-- Customer credentials, envelope-encrypted (AES-256-GCM) with the key id that sealed them.
CREATE TABLE credentials (
    request_id TEXT PRIMARY KEY REFERENCES requests(id) ON DELETE CASCADE,
    key_id     TEXT NOT NULL,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Jobs that exhausted their attempts, kept for inspection and replay.
CREATE TABLE dead_letters (
    id          TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    replayed_at TIMESTAMPTZ
);

-- Inbound webhook ids seen recently (replay protection).
CREATE TABLE webhook_receipts (
    webhook_id  TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
