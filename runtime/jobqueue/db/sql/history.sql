-- History: finished jobs move from `jobs` to the day partitions of
-- `jobs_history`, and retention drops whole partitions (migration 0014,
-- functions/history.sql). Only the elected reaper runs these, never the
-- hot path.
--
-- Days are UTC. The oldest day kept is the day that holds now() minus
-- retention ($1 seconds): its partition ends after that instant, so it
-- stays until the next day's pass; older days are dropped.

-- name: ensure
-- Partitions for every day a job waiting in `jobs` may go to (from its
-- oldest finish day, but not before the oldest day kept) and $2 days
-- ahead; returns how many were made (0 on almost every pass: a catalog
-- lookup per day). The oldest finish comes from jobs_finished's first entry.
SELECT jobqueue_history_ensure(
           greatest(((now() - make_interval(secs => $1)) AT TIME ZONE 'UTC')::date,
                    least((SELECT (min(finished_at) AT TIME ZONE 'UTC')::date FROM jobs
                            WHERE status IN ('succeeded', 'dlq', 'cancelled')),
                          (now() AT TIME ZONE 'UTC')::date)),
           (now() AT TIME ZONE 'UTC')::date + $2::integer) AS made;

-- name: archive
-- Up to $3 jobs finished more than $2 seconds ago, oldest first, leave
-- `jobs` in one statement; those still within retention ($1) go to
-- history, those past it (left over from before this version, or a
-- reaper that did not run for longer than retention) are gone. SKIP
-- LOCKED passes over a job someone is retrying now; the DELETE re-checks
-- the status on the row it locks. Returns (moved, kept).
WITH picked AS (
    SELECT id FROM jobs
     WHERE status IN ('succeeded', 'dlq', 'cancelled')
       AND finished_at < now() - make_interval(secs => $2)
     ORDER BY finished_at
     LIMIT $3
       FOR UPDATE SKIP LOCKED
),
moved AS (
    DELETE FROM jobs USING picked
     WHERE jobs.id = picked.id AND jobs.status IN ('succeeded', 'dlq', 'cancelled')
    RETURNING jobs.*
),
kept AS (
    INSERT INTO jobs_history
    SELECT * FROM moved
     WHERE moved.finished_at >= ((now() - make_interval(secs => $1)) AT TIME ZONE 'UTC')::date
                                    ::timestamp AT TIME ZONE 'UTC'
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM kept) AS kept;

-- name: drop_expired
-- The day partitions wholly older than retention ($1 seconds), dropped;
-- $2 ms the most each waits for its lock (jobqueue_history_drop).
SELECT part FROM jobqueue_history_drop(now() - make_interval(secs => $1), $2) AS part;

-- name: partitions
-- The history's day partitions, oldest first, with their rows (estimates
-- from the statistics: counting them exactly would read them).
SELECT c.relname AS name, greatest(c.reltuples, 0)::bigint AS rows_estimate
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'jobs_history'::regclass
 ORDER BY c.relname;

-- name: retry_archived
-- dlq|cancelled -> queued for the jobs $1 of tenant $2 already in history:
-- they move back to `jobs` in one statement, with their id, seq and
-- creation time (so they keep their place in listings), as jobs.sql's
-- `retry` sets them. A key another job took meanwhile makes the INSERT
-- fail, and the DELETE with it.
WITH back AS (
    DELETE FROM jobs_history h
     WHERE h.id = ANY ($1::uuid[]) AND ($2::text IS NULL OR h.tenant_id = $2)
       AND h.status IN ('dlq', 'cancelled')
    RETURNING h.*
)
INSERT INTO jobs (id, seq, tenant_id, queue, type, payload, status, priority, attempt,
                  max_attempts, timeout_seconds, idempotency_key, request_fingerprint,
                  scheduled_at, created_at, leased_at, started_at, finished_at, updated_at,
                  last_error, errors, result, trace_context, progress, progress_note,
                  unique_key, limited)
OVERRIDING SYSTEM VALUE
SELECT b.id, b.seq, b.tenant_id, b.queue, b.type, b.payload, 'queued', b.priority,
       CASE WHEN $3::boolean THEN 0 ELSE least(b.attempt, b.max_attempts - 1) END,
       b.max_attempts, b.timeout_seconds, b.idempotency_key, b.request_fingerprint,
       now(), b.created_at, b.leased_at, b.started_at, NULL, now(),
       b.last_error, b.errors, NULL, b.trace_context, b.progress, b.progress_note,
       b.unique_key, b.limited
  FROM back b
RETURNING *;
