-- What accounts and sessions need beyond the initial schema.
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_login_at TIMESTAMPTZ;
ALTER TABLE refresh_tokens ADD COLUMN label TEXT NOT NULL DEFAULT '';
CREATE INDEX signing_keys_created ON signing_keys (created_at);
