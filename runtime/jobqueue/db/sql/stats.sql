-- name: depth
-- Unfinished jobs by tenant, queue and status, plus the DLQ; each branch
-- reads a partial index, never the finished history.
SELECT tenant_id, queue, status, count(*) AS jobs,
       extract(epoch FROM now() - min(scheduled_at) FILTER (
           WHERE status = 'queued' AND scheduled_at <= now())) AS oldest_ready_age
  FROM jobs
 WHERE status IN ('queued', 'leased', 'running', 'dlq')
   AND ($1::text IS NULL OR tenant_id = $1)
   AND ($2::text IS NULL OR queue = $2)
 GROUP BY tenant_id, queue, status
 ORDER BY tenant_id, queue, status;

-- name: unfinished_in_queue
-- Queued (ready or scheduled) plus leased and running jobs of one queue: the
-- number the worker autoscalers scale on. KEDA's postgresql trigger runs it
-- with the queue inlined (see `stats.autoscaler_query`).
SELECT count(*)::bigint AS jobs
  FROM jobs
 WHERE status IN ('queued', 'leased', 'running')
   AND queue = $1;
