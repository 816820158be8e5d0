-- jobqueue schema, version 14: finished jobs leave the hot table for a
-- history partitioned by finish day, and retention drops whole days; a
-- schedule's last skipped fire time and why.
--
-- The elected reaper moves jobs finished longer ago than its archive
-- window from `jobs` into `jobs_history` (one DELETE ... RETURNING feeding
-- an INSERT per batch, db/sql/history.sql), and drops the day partitions
-- that lie wholly past retention: no row of history is ever deleted, so
-- history leaves no dead rows and no vacuum debt. Partitions are created
-- ahead by the reaper (jobqueue_history_ensure, functions/history.sql),
-- none here: the days depend on when it runs. No foreign key to tenants: tenants are never
-- deleted, jobs' own key checked each row before it moved, and a key on a
-- partitioned table would make every partition drop lock `tenants`.
-- jobs_history has jobs' columns in jobs' order (LIKE), so `SELECT *` of
-- either fits the other and the view `jobs_all`; a column added to jobs
-- must be added to jobs_history and the view made again.
CREATE TABLE jobs_history (LIKE jobs) PARTITION BY RANGE (finished_at);
ALTER TABLE jobs_history ALTER COLUMN finished_at SET NOT NULL;

-- Reads by id (GET /v1/jobs/{id}, retry) and the listing's four orders.
CREATE INDEX jobs_history_id ON jobs_history (id);
CREATE INDEX jobs_history_tenant_recent ON jobs_history (tenant_id, created_at DESC, seq DESC);
CREATE INDEX jobs_history_tenant_status_recent
    ON jobs_history (tenant_id, status, created_at DESC, seq DESC);
CREATE INDEX jobs_history_tenant_queue_recent
    ON jobs_history (tenant_id, queue, created_at DESC, seq DESC);
CREATE INDEX jobs_history_tenant_type_recent
    ON jobs_history (tenant_id, type, created_at DESC, seq DESC);

-- Every job a reader may see, wherever it is now. A job is in exactly one
-- of the two (it moves in one statement), and one statement reads both
-- in one snapshot. The planner flattens the UNION ALL, so an ordered,
-- limited read merges ordered index scans of jobs and each partition.
CREATE VIEW jobs_all AS
    SELECT * FROM jobs
    UNION ALL
    SELECT * FROM jobs_history;

-- A fire time a schedule did not fire, and why (db/sql/schedules.sql
-- `fire`): overlap (the last fire's job unfinished), backlog_full (the
-- tenant's max_queued reached), tenant_disabled.
ALTER TABLE schedules
    ADD COLUMN last_skipped_at timestamptz,
    ADD COLUMN last_skip_reason text
        CHECK (last_skip_reason IN ('overlap', 'backlog_full', 'tenant_disabled'));
