-- ironmesh-outbox: the transactional outbox (DESIGN.md §1). Included by each producing service in
-- its own migrations (`(ironmesh_outbox::schema::OUTBOX)`); frozen once released.

-- One row per event, the columns of ironmesh.events.v1.Event. `seq` is the producer's outbox order.
CREATE TABLE outbox_events (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    event_type        TEXT NOT NULL,
    source            TEXT NOT NULL,
    aggregate_type    TEXT NOT NULL,
    aggregate_id      TEXT NOT NULL,
    aggregate_version BIGINT NOT NULL,
    occurred_at       TIMESTAMPTZ NOT NULL,
    actor             TEXT NOT NULL,
    content_type      TEXT NOT NULL,
    payload           BYTEA NOT NULL,
    traceparent       TEXT NOT NULL DEFAULT '',
    tracestate        TEXT NOT NULL DEFAULT '',
    request_id        TEXT NOT NULL DEFAULT '',
    UNIQUE (aggregate_type, aggregate_id, aggregate_version)
);
CREATE INDEX outbox_events_occurred ON outbox_events (occurred_at);

-- The last version handed out per aggregate; never purged, so versions keep counting.
CREATE TABLE outbox_aggregate_versions (
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    version        BIGINT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Delivery state of one (event, subscriber) pair. The aggregate columns are copied from the event
-- so the relay can keep per-aggregate order with one index. `dead` rows are the dead letters.
CREATE TABLE outbox_deliveries (
    event_seq         BIGINT NOT NULL REFERENCES outbox_events (seq) ON DELETE CASCADE,
    subscriber        TEXT NOT NULL,
    aggregate_type    TEXT NOT NULL,
    aggregate_id      TEXT NOT NULL,
    aggregate_version BIGINT NOT NULL,
    state             TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ NOT NULL,
    lease_owner       TEXT,
    lease_until       TIMESTAMPTZ,
    last_error        TEXT NOT NULL DEFAULT '',
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscriber, event_seq)
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (subscriber, next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_deliveries_order ON outbox_deliveries (subscriber, aggregate_type, aggregate_id, aggregate_version) WHERE state = 'pending';
CREATE INDEX outbox_deliveries_dead ON outbox_deliveries (subscriber, event_seq) WHERE state = 'dead';
CREATE INDEX outbox_deliveries_event ON outbox_deliveries (event_seq);
