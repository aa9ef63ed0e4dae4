-- Notifications (the in-app inbox), customers' webhook endpoints and the delivery rows of the
-- EMAIL and WEBHOOK channels. Ids are UUIDv7, so `ORDER BY id` is creation order. Times a
-- query compares are integer milliseconds since the epoch; times only shown are TEXT (UTC).
-- The stub tables of migration 1 never held a row (every RPC answered UNIMPLEMENTED).
DROP TABLE deliveries;
DROP TABLE webhook_endpoints;
DROP TABLE notifications;

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    recipient_id    TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    data            TEXT NOT NULL,   -- JSON object of strings
    channels        TEXT NOT NULL,   -- contract names, comma-separated
    source_event_id TEXT NOT NULL,
    read_at         TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX notifications_by_recipient ON notifications (recipient_id, id);
CREATE INDEX notifications_unread ON notifications (recipient_id, id) WHERE read_at IS NULL;

CREATE TABLE webhook_endpoints (
    id                  TEXT PRIMARY KEY,
    owner_id            TEXT NOT NULL,
    url                 TEXT NOT NULL,
    description         TEXT NOT NULL,
    event_types         TEXT NOT NULL,   -- patterns, comma-separated; empty = all
    secret              BLOB NOT NULL,   -- sealed (ironmesh-sealing)
    previous_secret     BLOB,            -- sealed; signs too until previous_expires_ms
    previous_expires_ms INTEGER,
    secret_rotated_at   TEXT NOT NULL,
    disabled_at         TEXT,            -- the receiver answered 410 Gone
    created_at          TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_by_owner ON webhook_endpoints (owner_id, id);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,   -- also the webhook-id
    notification_id  TEXT NOT NULL,
    recipient_id     TEXT NOT NULL,
    channel          TEXT NOT NULL,      -- EMAIL | WEBHOOK
    endpoint_id      TEXT NOT NULL,      -- '' for email
    event_type       TEXT NOT NULL,
    state            TEXT NOT NULL,      -- PENDING | DELIVERED | FAILED
    attempts         INTEGER NOT NULL,
    last_status_code INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    next_attempt_ms  INTEGER,            -- set while PENDING
    lease_until_ms   INTEGER NOT NULL,   -- a replica's claim; 0 = unclaimed
    delivered_at     TEXT,
    created_at       TEXT NOT NULL,
    created_ms       INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_ms) WHERE state = 'PENDING';
CREATE INDEX deliveries_by_recipient ON deliveries (recipient_id, id);
CREATE INDEX deliveries_by_notification ON deliveries (notification_id, id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);

-- Users whose data was erased (auth.user.deleted): a late event about them makes nothing.
CREATE TABLE erased_users (
    user_id   TEXT PRIMARY KEY,
    erased_at TEXT NOT NULL
);
