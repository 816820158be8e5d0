-- What the dashboard shows beside the listing: finished jobs per minute,
-- workers holding jobs, tenants with their usage and rate-limit state, and
-- queues with their defaults. Each reads a partial index or a small table,
-- never the whole history.

-- name: throughput
-- Jobs finished per queue, minute and outcome over the last $2 minutes
-- (the current one included), from the finished-jobs index.
SELECT queue, date_trunc('minute', finished_at) AS minute, status, count(*) AS jobs
  FROM jobs
 WHERE status IN ('succeeded', 'dlq', 'cancelled')
   AND finished_at >= date_trunc('minute', now()) - make_interval(mins => $2 - 1)
   AND ($1::text IS NULL OR tenant_id = $1)
 GROUP BY queue, minute, status
 ORDER BY queue, minute, status;

-- name: clock
SELECT date_trunc('minute', now()) AS minute, now() AS now;

-- name: workers
-- Workers holding a lease per queue: the ones that are working now. An
-- idle worker holds nothing and is not seen here.
SELECT queue, count(DISTINCT lease_owner) AS workers
  FROM jobs
 WHERE status IN ('leased', 'running')
   AND ($1::text IS NULL OR tenant_id = $1)
 GROUP BY queue;

-- name: tenants
-- Every tenant with its quotas and the state of its request budget: the
-- tokens left now (GCRA: burst less the debt the theoretical arrival time
-- runs ahead of now, in emission intervals).
SELECT t.*,
       greatest(0, t.rate_burst - ceil(greatest(0, extract(epoch FROM r.tat - now()))
                                      * t.rate_per_minute / 60.0))::integer AS rate_tokens
  FROM tenants t LEFT JOIN rate_limits r ON r.tenant_id = t.id
 ORDER BY t.id;

-- name: queues
-- Queues that have a row: made by the first lease or by the operator.
SELECT q.name, q.default_max_attempts, q.created_at, r.replicas, r.ready_replicas,
       r.max_replicas, r.reported_at
  FROM queues q LEFT JOIN queue_replicas r ON r.queue = q.name
 ORDER BY q.name;

-- name: replicas
SELECT queue, replicas, ready_replicas, max_replicas, reported_at
  FROM queue_replicas
 WHERE reported_at > now() - make_interval(secs => $1);

-- name: report_replicas
-- The operator's count of a queue's worker pods, for the dashboard. A
-- table of its own: the queues row is the one leasers lock.
INSERT INTO queue_replicas (queue, replicas, ready_replicas, max_replicas, reported_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (queue) DO UPDATE
   SET replicas = excluded.replicas, ready_replicas = excluded.ready_replicas,
       max_replicas = excluded.max_replicas, reported_at = now();
