-- jobqueue schema, version 7: indexes for listing jobs by status, queue and
-- type at any depth of history (db/sql/listing.sql).
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
