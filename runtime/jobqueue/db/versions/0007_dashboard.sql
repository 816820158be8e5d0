-- jobqueue schema, version 7, for the dashboard: indexes for listing jobs
-- by status, queue and type at any depth of history (db/sql/listing.sql),
-- and the operator's count of each queue's workers.
--
-- Each holds the listing order after (tenant_id, filter), so a page of a
-- filtered view is read in order from its index and a deep page starts at
-- its cursor. On a large live table, build them first with CREATE INDEX
-- CONCURRENTLY under these names (docs/operations.md, "Upgrading"): this
-- file then finds them and does not lock the table to build them again.
CREATE INDEX IF NOT EXISTS jobs_tenant_status_recent
    ON jobs (tenant_id, status, created_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS jobs_tenant_queue_recent
    ON jobs (tenant_id, queue, created_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS jobs_tenant_type_recent
    ON jobs (tenant_id, type, created_at DESC, seq DESC);

-- The operator's count of each queue's worker pods, shown by the dashboard
-- (GET /v1/overview). Apart from `queues`, whose row leasers lock: a
-- report every status interval must not wait for them, nor they for it.
CREATE TABLE IF NOT EXISTS queue_replicas (
    queue          text PRIMARY KEY CHECK (length(queue) BETWEEN 1 AND 63),
    replicas       integer NOT NULL CHECK (replicas >= 0),
    ready_replicas integer NOT NULL CHECK (ready_replicas >= 0),
    max_replicas   integer NOT NULL CHECK (max_replicas >= 0),
    reported_at    timestamptz NOT NULL DEFAULT now()
);
