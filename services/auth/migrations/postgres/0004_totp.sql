-- TOTP: when enrollment started (confirmation must follow soon), and the last time step used
-- (a code is accepted once).
ALTER TABLE users ADD COLUMN totp_pending_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
