-- Transactional outbox (DESIGN.md §1): events written in the same transaction as the change they
-- describe, delivered later by the relay (outbox issue). Columns mirror ironmesh.events.v1.Event.
CREATE TABLE outbox (
    id             TEXT PRIMARY KEY,
    event_type     TEXT NOT NULL,
    source         TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    occurred_at    TEXT NOT NULL,
    actor          TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    payload        BLOB NOT NULL,
    request_id     TEXT,
    traceparent    TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    published_at   TEXT
);
CREATE INDEX outbox_unpublished ON outbox (published_at, occurred_at);
