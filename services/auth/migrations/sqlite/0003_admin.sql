-- Administrative locks: why, and until when (NULL = until unlocked).
ALTER TABLE users ADD COLUMN locked_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN locked_until TEXT;
