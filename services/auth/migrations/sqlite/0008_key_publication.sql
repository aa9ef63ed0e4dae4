-- A new signing key is published before it signs (see keys.rs): when it starts signing.
-- Keys made before this column existed signed from their creation (NULL reads as created_at).
ALTER TABLE signing_keys ADD COLUMN signs_from TEXT;
