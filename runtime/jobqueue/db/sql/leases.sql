-- name: lease
-- See db/functions/lease.sql: fairness, quotas, priority, FIFO.
-- $5 is the state the jobs get: 'running' (started now) or 'leased'.
SELECT * FROM jobqueue_lease($1, $2, $3, $4, $5::job_status);

-- name: start
-- leased -> running, fenced by the lease token: for a caller that leased
-- ahead of its free slots (prefetch).
UPDATE jobs SET status = 'running', started_at = now(), updated_at = now()
  FROM unnest($1::uuid[], $2::uuid[]) AS s(id, token)
 WHERE jobs.id = s.id AND jobs.lease_token = s.token AND jobs.status = 'leased'
RETURNING jobs.id;

-- name: heartbeat
-- Extend every lease a worker still holds; ids missing from the result are
-- leases it has lost.
UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3)
  FROM unnest($1::uuid[], $2::uuid[]) AS h(id, token)
 WHERE jobs.id = h.id AND jobs.lease_token = h.token
   AND jobs.status IN ('leased', 'running')
RETURNING jobs.id;

-- name: ack
-- Results travel as JSON text: asyncpg reads a list inside a jsonb[]
-- parameter as one more array dimension ([1, 2] was stored as 1, [] as
-- NULL, and a ragged list failed the whole batch).
UPDATE jobs
   SET status = 'succeeded', result = a.result::jsonb, finished_at = now(), updated_at = now(),
       lease_token = NULL, lease_expires_at = NULL
  FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS a(id, token, result)
 WHERE jobs.id = a.id AND jobs.lease_token = a.token
   AND jobs.status IN ('leased', 'running')
RETURNING jobs.id, jobs.tenant_id, jobs.status, jobs.attempt;

-- name: fail
-- A batch of failed attempts: each retries after its backoff from the
-- database clock, or goes to the DLQ when its attempts are exhausted or its
-- error is permanent. A max_attempts that is not NULL is the handler's own
-- (@handler(retry=...)): it replaces the job's from here on, so the reaper
-- and readers agree.
UPDATE jobs
   SET status = CASE WHEN f.permanent OR jobs.attempt >= coalesce(f.max_attempts, jobs.max_attempts)
                     THEN 'dlq'::job_status ELSE 'queued'::job_status END,
       scheduled_at = CASE WHEN f.permanent
                                OR jobs.attempt >= coalesce(f.max_attempts, jobs.max_attempts)
                           THEN jobs.scheduled_at
                           ELSE now() + make_interval(secs => f.retry_in) END,
       finished_at = CASE WHEN f.permanent
                               OR jobs.attempt >= coalesce(f.max_attempts, jobs.max_attempts)
                          THEN now() END,
       max_attempts = coalesce(f.max_attempts, jobs.max_attempts),
       last_error = f.error,
       -- keep the last 20 errors
       errors = CASE WHEN jsonb_array_length(jobs.errors) >= 20 THEN jobs.errors - 0
                     ELSE jobs.errors END
                || jsonb_build_array(jsonb_build_object(
                       'attempt', jobs.attempt, 'error', f.error, 'at', now(),
                       'worker', jobs.lease_owner)),
       lease_token = NULL, lease_expires_at = NULL, updated_at = now()
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::double precision[], $5::boolean[],
              $6::integer[])
       AS f(id, token, error, retry_in, permanent, max_attempts)
 WHERE jobs.id = f.id AND jobs.lease_token = f.token
   AND jobs.status IN ('leased', 'running')
RETURNING jobs.id, jobs.tenant_id, jobs.status, jobs.attempt;

-- name: release
-- Graceful stop: back to the queue without burning the attempt.
UPDATE jobs
   SET status = 'queued', attempt = greatest(attempt - 1, 0),
       lease_token = NULL, lease_expires_at = NULL, started_at = NULL, updated_at = now()
  FROM unnest($1::uuid[], $2::uuid[]) AS r(id, token)
 WHERE jobs.id = r.id AND jobs.lease_token = r.token
   AND jobs.status IN ('leased', 'running')
RETURNING jobs.id;

-- name: snooze
-- ctx.snooze(): back to the queue at now() + $3 seconds without burning the
-- attempt, fenced by the lease token. Not a failure: no error is recorded.
UPDATE jobs
   SET status = 'queued', attempt = greatest(attempt - 1, 0),
       scheduled_at = now() + make_interval(secs => $3::double precision),
       lease_token = NULL, lease_expires_at = NULL, started_at = NULL, updated_at = now()
 WHERE id = $1 AND lease_token = $2 AND status IN ('leased', 'running')
RETURNING id, tenant_id, status, attempt;

-- name: progress
-- The latest ctx.progress() of each held job, fenced by its token, and one
-- notification for watchers: [job id, tenant id, status, queue, progress,
-- note] per job (six items, where a state change has four).
WITH upd AS (
    UPDATE jobs SET progress = p.fraction, progress_note = p.note
      FROM unnest($1::uuid[], $2::uuid[], $3::double precision[], $4::text[])
           AS p(id, token, fraction, note)
     WHERE jobs.id = p.id AND jobs.lease_token = p.token
       AND jobs.status IN ('leased', 'running')
    RETURNING jobs.id, jobs.tenant_id, jobs.status, jobs.queue, jobs.progress,
              jobs.progress_note
),
sent AS (
    SELECT jobqueue_notify_chunked('jobqueue_events', ARRAY(
               SELECT jsonb_build_array(u.id, u.tenant_id, u.status, u.queue, u.progress,
                                        u.progress_note)::text
                 FROM upd u)) AS done
)
SELECT u.id FROM upd u, sent;
