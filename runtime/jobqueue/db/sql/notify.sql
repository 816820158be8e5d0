-- name: watch
-- A connection that LISTENs for per-job events says so: the jobs trigger
-- sends them only while some watcher's row is unexpired. Renewed by every
-- probe of the connection; a process that dies without a word is
-- forgotten when the row expires ($1 seconds).
INSERT INTO event_watchers (name, expires_at)
VALUES ('backend ' || pg_backend_pid(), now() + make_interval(secs => $1))
ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at;

-- name: unwatch
DELETE FROM event_watchers WHERE name = 'backend ' || pg_backend_pid();
