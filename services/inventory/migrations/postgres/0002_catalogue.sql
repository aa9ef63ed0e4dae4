-- The tables of 0001 were made for the stub, which never wrote a row (every RPC answered
-- UNIMPLEMENTED), so they are replaced whole rather than altered column by column.
DROP TABLE reservation_lines;
DROP TABLE reservations;
DROP TABLE stock_adjustments;
DROP TABLE stock;
DROP TABLE products;

-- Catalogue. Money is integer minor units plus an ISO 4217 currency code. `revision` grows by
-- one with every update: the version caches compare, so an older row never replaces a newer.
CREATE TABLE products (
    id          TEXT PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
    currency    TEXT NOT NULL,
    active      BOOLEAN NOT NULL DEFAULT FALSE,
    revision    BIGINT NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- Stock per product, made with the product. The invariant 0 <= reserved <= on_hand is the
-- database's to enforce: every change is one conditional UPDATE, never a read and a write.
CREATE TABLE stock (
    product_id TEXT PRIMARY KEY REFERENCES products(id),
    on_hand    BIGINT NOT NULL DEFAULT 0,
    reserved   BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT stock_levels CHECK (reserved >= 0 AND reserved <= on_hand)
);

-- The adjustment ledger: who changed on_hand, when, why, by how much, and the levels after (an
-- idempotent AdjustStock repeat answers with those).
CREATE TABLE stock_adjustments (
    id             TEXT PRIMARY KEY,
    product_id     TEXT NOT NULL REFERENCES products(id),
    delta          BIGINT NOT NULL,
    reason         TEXT NOT NULL,
    note           TEXT NOT NULL DEFAULT '',
    actor          TEXT NOT NULL,
    adjusted_at    TIMESTAMPTZ NOT NULL,
    on_hand_after  BIGINT NOT NULL,
    reserved_after BIGINT NOT NULL
);
CREATE INDEX stock_adjustments_product ON stock_adjustments (product_id, adjusted_at);

-- Units held for one order until committed, released or expired.
CREATE TABLE reservations (
    id             TEXT PRIMARY KEY,
    order_id       TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('HELD', 'COMMITTED', 'RELEASED', 'EXPIRED')),
    expires_at     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    release_reason TEXT NOT NULL DEFAULT ''
);
-- What the sweeper scans: HELD reservations by expiry.
CREATE INDEX reservations_held_expiry ON reservations (expires_at) WHERE status = 'HELD';

-- A reservation's lines in request order; sku copied (it never changes) so reads need no join.
CREATE TABLE reservation_lines (
    reservation_id TEXT NOT NULL REFERENCES reservations(id),
    line_no        INTEGER NOT NULL,
    product_id     TEXT NOT NULL REFERENCES products(id),
    sku            TEXT NOT NULL,
    quantity       BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, line_no),
    UNIQUE (reservation_id, product_id)
);
