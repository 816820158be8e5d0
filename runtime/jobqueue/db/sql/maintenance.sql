-- name: reap_expired
-- Expired leases go back to the queue, or to the DLQ when that was the last
-- attempt: a lease that expires counts as a failed attempt. Compare-and-set:
-- the outer WHERE is re-checked on the newest row version, so a job acked
-- after the CTE read it is left alone.
WITH expired AS (
    SELECT id FROM jobs
     WHERE status IN ('leased', 'running') AND lease_expires_at < now()
     ORDER BY lease_expires_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
UPDATE jobs
   SET status = CASE WHEN jobs.attempt >= jobs.max_attempts THEN 'dlq'::job_status
                     ELSE 'queued'::job_status END,
       finished_at = CASE WHEN jobs.attempt >= jobs.max_attempts THEN now() END,
       last_error = 'lease expired (worker ' || coalesce(jobs.lease_owner, '?') || ')',
       errors = CASE WHEN jsonb_array_length(jobs.errors) >= 20 THEN jobs.errors - 0
                     ELSE jobs.errors END
                || jsonb_build_array(jsonb_build_object(
                       'attempt', jobs.attempt, 'error', 'lease expired', 'at', now(),
                       'worker', jobs.lease_owner)),
       lease_token = NULL, lease_expires_at = NULL, updated_at = now()
  FROM expired
 WHERE jobs.id = expired.id
   AND jobs.status IN ('leased', 'running') AND jobs.lease_expires_at < now()
RETURNING jobs.id, jobs.tenant_id, jobs.status, jobs.attempt;
