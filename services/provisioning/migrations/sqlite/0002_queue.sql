-- The onboarding queue: requests (served by tier, then FIFO by id — UUIDv7, so submission
-- order), one job row per claim (its lease and fencing token), and dead letters. Times a query
-- compares are integer milliseconds since the epoch; times only shown are TEXT (UTC).
-- The stub tables of migration 1 never held a row (every RPC answered UNIMPLEMENTED).
DROP TABLE webhook_receipts;
DROP TABLE dead_letters;
DROP TABLE credentials;
DROP TABLE jobs;
DROP TABLE requests;

CREATE TABLE provisioning_requests (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    plan            TEXT NOT NULL,
    tier            INTEGER NOT NULL,   -- 1 STANDARD, 2 EXPEDITED, 3 CRITICAL
    state           TEXT NOT NULL,      -- QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED
    attempts        INTEGER NOT NULL,
    max_attempts    INTEGER NOT NULL,
    last_error      TEXT NOT NULL,
    result          TEXT NOT NULL,      -- JSON object of strings
    idempotency_key TEXT NOT NULL,
    not_before_ms   INTEGER NOT NULL,    -- claimable from (0: at once)
    job_id          TEXT,               -- the live lease while RUNNING
    progress        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT
);
CREATE INDEX provisioning_queue ON provisioning_requests (tier DESC, id) WHERE state = 'QUEUED';
CREATE INDEX provisioning_by_customer ON provisioning_requests (customer_id, id);
CREATE INDEX provisioning_by_state ON provisioning_requests (state, id);

CREATE TABLE provisioning_jobs (
    id               TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    lease_token      TEXT NOT NULL,
    worker_id        TEXT NOT NULL,
    lease_ms         INTEGER NOT NULL,   -- the lease length last asked for
    lease_expires_ms INTEGER NOT NULL,
    outcome          TEXT,              -- NULL while live; SUCCEEDED, REQUEUED, FAILED, LAPSED, CANCELLED
    dead_letter_id   TEXT,
    claimed_ms       INTEGER NOT NULL,
    finished_at      TEXT
);
CREATE INDEX provisioning_jobs_live ON provisioning_jobs (lease_expires_ms) WHERE outcome IS NULL;
CREATE INDEX provisioning_jobs_claimed ON provisioning_jobs (claimed_ms);
CREATE INDEX provisioning_jobs_request ON provisioning_jobs (request_id);

CREATE TABLE provisioning_dead_letters (
    id               TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    dead_lettered_at TEXT NOT NULL,
    replayed_at      TEXT,
    replayed_by      TEXT NOT NULL
);
CREATE INDEX provisioning_dead_letters_request ON provisioning_dead_letters (request_id);

-- Inbound webhook ids already processed, per source (replay protection shared by every
-- replica), kept a day: longer than any accepted timestamp's tolerance.
CREATE TABLE provisioning_webhook_receipts (
    source      TEXT NOT NULL,
    webhook_id  TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (source, webhook_id)
);
CREATE INDEX provisioning_webhook_receipts_age ON provisioning_webhook_receipts (received_at);
