-- Auth's own outbox table (0005) predates the shared one (ironmesh-outbox, migration 6). Its
-- undelivered rows (only `auth.user.deleted` was ever written there, once per user) move over as
-- version 1 of their aggregate, pending for `audit` — the subscriber of every event in the
-- default configuration — and the old table goes.
INSERT INTO outbox_events (id, event_type, source, aggregate_type, aggregate_id, aggregate_version,
                           occurred_at, actor, content_type, payload, traceparent, tracestate, request_id)
SELECT id, event_type, source, aggregate_type, aggregate_id, 1, occurred_at, actor, content_type,
       payload, COALESCE(traceparent, ''), '', COALESCE(request_id, '')
FROM outbox WHERE published_at IS NULL ORDER BY occurred_at, id;

INSERT INTO outbox_aggregate_versions (aggregate_type, aggregate_id, version)
SELECT aggregate_type, aggregate_id, 1 FROM outbox_events;

INSERT INTO outbox_deliveries (event_seq, subscriber, aggregate_type, aggregate_id, aggregate_version,
                               state, attempts, next_attempt_at, last_error, updated_at)
SELECT seq, 'audit', aggregate_type, aggregate_id, aggregate_version, 'pending', 0, occurred_at, '', occurred_at
FROM outbox_events;

DROP TABLE outbox;
