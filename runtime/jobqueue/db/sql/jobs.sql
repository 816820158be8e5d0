-- name: submit
-- Insert one job, or find the one already submitted with this key.
-- ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to
-- commit; the fallback SELECT may then still miss it (its snapshot is older),
-- so the caller retries once on an empty result.
-- A NULL max_attempts ($6) takes the queue's default, else 5
-- (queues.FALLBACK_MAX_ATTEMPTS), fixed for the job from here on.
WITH ins AS (
    INSERT INTO jobs (tenant_id, queue, type, payload, priority, max_attempts,
                      timeout_seconds, idempotency_key, request_fingerprint,
                      scheduled_at, trace_context)
    VALUES ($1, $2, $3, $4::jsonb, $5,
            coalesce($6::integer,
                     (SELECT q.default_max_attempts FROM queues q WHERE q.name = $2), 5),
            $7, $8, $9, coalesce($10, now()), $11::jsonb)
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
)
SELECT true AS inserted, * FROM ins
UNION ALL
SELECT false AS inserted, j.* FROM jobs j
 WHERE j.tenant_id = $1 AND j.idempotency_key = $8 AND NOT EXISTS (SELECT 1 FROM ins);

-- name: submit_many
-- One statement for a whole batch. Rows whose key already exists come back
-- through find_by_keys. Returns, in input order, only what the database
-- chose for each inserted row (rows.inserted builds the job from the
-- request): decoding whole rows back cost more than the insert.
-- Payloads travel as JSON text: asyncpg would read a list payload inside a
-- jsonb[] parameter as one more array dimension. A NULL max_attempts takes
-- the queue's default, else 5, as in submit.
INSERT INTO jobs (tenant_id, queue, type, payload, priority, max_attempts,
                  timeout_seconds, idempotency_key, request_fingerprint,
                  scheduled_at, trace_context)
SELECT $1, b.queue, b.type, b.payload::jsonb, b.priority,
       coalesce(b.max_attempts, q.default_max_attempts, 5), b.timeout_seconds,
       b.idempotency_key, b.fingerprint, coalesce(b.scheduled_at, now()), b.trace_context
  FROM unnest($2::text[], $3::text[], $4::text[], $5::smallint[], $6::integer[],
              $7::integer[], $8::text[], $9::text[], $10::timestamptz[], $11::jsonb[])
       WITH ORDINALITY AS b(queue, type, payload, priority, max_attempts, timeout_seconds,
                            idempotency_key, fingerprint, scheduled_at, trace_context, ord)
  LEFT JOIN queues q ON q.name = b.queue
 ORDER BY b.ord
ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id, seq, idempotency_key, request_fingerprint, max_attempts, scheduled_at,
          created_at, updated_at;

-- name: find_by_keys
SELECT * FROM jobs WHERE tenant_id = $1 AND idempotency_key = ANY($2::text[]);

-- name: backlog_at_least
-- True when the tenant already has $2 or more queued jobs. Stops counting
-- at the limit, so a deep backlog costs at most $2 index entries.
SELECT count(*) >= $2 AS full
  FROM (SELECT 1 FROM jobs WHERE tenant_id = $1 AND status = 'queued' LIMIT $2) q;

-- name: get
-- The hot table alone: one primary-key probe for the jobs clients poll.
SELECT * FROM jobs WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2);

-- name: get_anywhere
-- Not in the hot table: finished past the archive window (history), or
-- moving between the two since the first look; jobs_all reads both in one
-- snapshot, so a job is found wherever it is now.
SELECT * FROM jobs_all WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2);

-- name: cancel
-- The jobs $1 (one, or a bulk call's batch: bulk.sql) of tenant $2 (NULL:
-- any) that are queued, leased or running; a worker holding one loses its
-- lease.
UPDATE jobs
   SET status = 'cancelled', lease_token = NULL, lease_expires_at = NULL,
       finished_at = now(), updated_at = now()
 WHERE id = ANY ($1::uuid[]) AND ($2::text IS NULL OR tenant_id = $2)
   AND status IN ('queued', 'leased', 'running')
RETURNING *;

-- name: retry
-- The jobs $1 of tenant $2, as cancel, from dlq or cancelled only. Without
-- a reset ($3) each gets one more attempt.
UPDATE jobs
   SET status = 'queued', scheduled_at = now(), finished_at = NULL, result = NULL,
       attempt = CASE WHEN $3::boolean THEN 0 ELSE least(attempt, max_attempts - 1) END,
       updated_at = now()
 WHERE id = ANY ($1::uuid[]) AND ($2::text IS NULL OR tenant_id = $2)
   AND status IN ('dlq', 'cancelled')
RETURNING *;

-- name: submit_unique
-- A job with `unique`: see db/functions/submit_unique.sql.
SELECT * FROM jobqueue_submit_unique($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11,
                                     $12::jsonb, $13, $14, $15::job_status[]);
