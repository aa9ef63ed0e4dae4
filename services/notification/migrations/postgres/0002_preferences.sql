-- Channel preferences per user (the stub's `preferences` table never held a row). Channels are
-- the contract's names, comma-separated; `overrides` holds one `pattern<TAB>channels` per line
-- (patterns never contain a tab or a newline: the service checks them).
DROP TABLE preferences;
CREATE TABLE notification_preferences (
    user_id          TEXT PRIMARY KEY,
    default_channels TEXT NOT NULL,
    overrides        TEXT NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
