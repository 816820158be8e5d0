-- jobqueue schema, version 11: notifications off the hot path, and one
-- index fewer for jobs without an idempotency key.
--
-- - Idle workers wait on `jobqueue_ready`: one notification per statement
--   that made jobs queued, naming their queues (a JSON array of names), so
--   a batch of 1,000 jobs is one short payload and leases and acks, which
--   never make a job queued, send nothing to workers. A statement that
--   cancels held jobs adds ["cancelled", job id] for each, so the worker
--   holding one stops its handler at once (version 9 read these from the
--   per-job events).
-- - Per-job events (`jobqueue_events`, for WebSocket watchers) are sent
--   only while an API process has registered a listener in
--   event_watchers (it renews its row while its LISTEN connection lives).
--   A worker-only deployment, or one with no API up, pays nothing for them;
--   before, every lease and ack built a JSON array of its rows and NOTIFY
--   took its global lock at every commit (about 10% of server statement
--   time in a drain).
-- - The idempotency key's unique index covers only rows that have a key:
--   every non-HOT update (lease, ack) inserted an entry for each keyless
--   job too.

CREATE TABLE event_watchers (
    name       text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

ALTER TABLE jobs DROP CONSTRAINT jobs_idempotency;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- jobqueue_submit_unique's ON CONFLICT names the partial index now, and the
-- jobs table's trigger function sends the notifications above: both in
-- db/functions/.
