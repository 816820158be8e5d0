-- name: enqueue
-- One job inserted on the caller's own connection, inside the caller's
-- transaction (db/enqueue.py). Values travel as text and are cast here, so
-- the statement works on a plain asyncpg connection without jobqueue's
-- json codecs. Otherwise jobs.submit: the queue's default max_attempts,
-- and the job already submitted with this key, if any.
WITH ins AS (
    INSERT INTO jobs (tenant_id, queue, type, payload, priority, max_attempts,
                      timeout_seconds, idempotency_key, request_fingerprint, scheduled_at)
    VALUES ($1, $2, $3, $4::text::jsonb, $5,
            coalesce($6::integer,
                     (SELECT q.default_max_attempts FROM queues q WHERE q.name = $2), 5),
            $7, $8, $9, coalesce($10::timestamptz, now()))
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, request_fingerprint
)
SELECT true AS inserted, id, request_fingerprint FROM ins
UNION ALL
SELECT false AS inserted, j.id, j.request_fingerprint FROM jobs j
 WHERE j.tenant_id = $1 AND j.idempotency_key = $8 AND NOT EXISTS (SELECT 1 FROM ins);
