-- ironmesh-outbox: the consumer inbox (DESIGN.md §1). Included by each consuming service in its own
-- migrations (`(ironmesh_outbox::schema::INBOX)`); frozen once released.

-- Ids of events whose effect this consumer has applied, written in the effect's transaction.
CREATE TABLE inbox (
    event_id    TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX inbox_received ON inbox (received_at);
