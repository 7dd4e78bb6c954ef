-- Workbench users can be disabled (they cannot sign in; their sessions end).
ALTER TABLE users ADD COLUMN disabled_at_ms BIGINT;
