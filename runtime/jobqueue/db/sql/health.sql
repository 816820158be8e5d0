-- name: ping
-- Reachable, and migrated: a server without our tables is not ready.
SELECT to_regclass('jobs') IS NOT NULL AS migrated;
