-- Bulk retry and cancel of a filtered view, a bounded number of jobs per
-- statement. The filters are listing's ($1 tenant or NULL, $2 status, $3
-- queue, $4 type, $5 created at or after, $6 created before); each
-- statement changes at most $7 jobs, oldest first, skipping rows another
-- transaction holds (a worker acking one), and returns the changed jobs'
-- tenants. The SET lists are jobs.sql's `retry` and `cancel`: keep them
-- the same.

-- name: retry_matching
-- dlq|cancelled -> queued, now. $8 resets attempts; without it each job
-- gets one more attempt.
WITH picked AS (
    SELECT j.id FROM jobs j
     WHERE ($1::text IS NULL OR j.tenant_id = $1)
       AND j.status IN ('dlq', 'cancelled')
       AND ($2::job_status IS NULL OR j.status = $2)
       AND ($3::text IS NULL OR j.queue = $3)
       AND ($4::text IS NULL OR j.type = $4)
       AND j.created_at >= coalesce($5::timestamptz, '-infinity')
       AND j.created_at < coalesce($6::timestamptz, 'infinity')
     ORDER BY j.created_at, j.seq
     LIMIT $7
       FOR UPDATE SKIP LOCKED
)
UPDATE jobs
   SET status = 'queued', scheduled_at = now(), finished_at = NULL, result = NULL,
       attempt = CASE WHEN $8::boolean THEN 0 ELSE least(attempt, max_attempts - 1) END,
       updated_at = now()
  FROM picked
 WHERE jobs.id = picked.id AND jobs.status IN ('dlq', 'cancelled')
RETURNING jobs.tenant_id;

-- name: cancel_matching
-- queued|leased|running -> cancelled; a worker holding one loses its lease.
WITH picked AS (
    SELECT j.id FROM jobs j
     WHERE ($1::text IS NULL OR j.tenant_id = $1)
       AND j.status IN ('queued', 'leased', 'running')
       AND ($2::job_status IS NULL OR j.status = $2)
       AND ($3::text IS NULL OR j.queue = $3)
       AND ($4::text IS NULL OR j.type = $4)
       AND j.created_at >= coalesce($5::timestamptz, '-infinity')
       AND j.created_at < coalesce($6::timestamptz, 'infinity')
     ORDER BY j.created_at, j.seq
     LIMIT $7
       FOR UPDATE SKIP LOCKED
)
UPDATE jobs
   SET status = 'cancelled', lease_token = NULL, lease_expires_at = NULL,
       finished_at = now(), updated_at = now()
  FROM picked
 WHERE jobs.id = picked.id AND jobs.status IN ('queued', 'leased', 'running')
RETURNING jobs.tenant_id;

-- name: any_retryable
SELECT EXISTS (
    SELECT 1 FROM jobs j
     WHERE ($1::text IS NULL OR j.tenant_id = $1)
       AND j.status IN ('dlq', 'cancelled')
       AND ($2::job_status IS NULL OR j.status = $2)
       AND ($3::text IS NULL OR j.queue = $3)
       AND ($4::text IS NULL OR j.type = $4)
       AND j.created_at >= coalesce($5::timestamptz, '-infinity')
       AND j.created_at < coalesce($6::timestamptz, 'infinity'));

-- name: any_cancellable
SELECT EXISTS (
    SELECT 1 FROM jobs j
     WHERE ($1::text IS NULL OR j.tenant_id = $1)
       AND j.status IN ('queued', 'leased', 'running')
       AND ($2::job_status IS NULL OR j.status = $2)
       AND ($3::text IS NULL OR j.queue = $3)
       AND ($4::text IS NULL OR j.type = $4)
       AND j.created_at >= coalesce($5::timestamptz, '-infinity')
       AND j.created_at < coalesce($6::timestamptz, 'infinity'));
