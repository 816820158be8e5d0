-- jobqueue schema, version 6: a lease that starts its jobs, counts quotas
-- instead of recomputing them, and lets leasers of one queue run in parallel.
--
-- Version 5 cost 0.045 ms of server time per job and serialised every
-- leaser of a queue on its queues row (with 2 worker processes, leases
-- waited 468 ms on that lock in a 2.2 s drain). Per lease it counted each
-- candidate tenant's active jobs from an index whose dead entries grow with
-- every job finished since the last vacuum, and a separate `start`
-- statement rewrote every row once more (27% of statement time and WAL).
--
-- Now:
-- - A lease for free slots sets `running` at once (started_at from the
--   database clock): one statement, one row version. `leased` stays for a
--   caller that prefetches (p_status => 'leased', then `start`).
-- - Each tenant's active jobs (leased or running, all queues) are two
--   counters kept by the jobs table's statement trigger: tenant_taken
--   grows when jobs become active, tenant_freed when they stop being
--   active; active = taken - freed. Only leasers write taken, and they lock
--   the tenant's taken row before they read both, so max_concurrent holds
--   exactly; a completion that commits meanwhile only adds to freed, so it
--   can make a lease cautious, never generous. Completions never wait for
--   leasers (they write the other row).
-- - Leasers lock only the taken rows of the tenants they serve: leasers of
--   one queue that serve different tenants run in parallel, and the
--   queue's virtual clock is advanced by whoever finds its row free (SKIP
--   LOCKED; monotone, so a skipped advance is made up by the next lease).
-- - Disabling a tenant or lowering its max_concurrent locks its taken row
--   (trigger on tenants), so a lease waiting on it reads the new values.
-- - jobs_active_tenant is gone: nothing counts active jobs by tenant now.

CREATE TABLE tenant_taken (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    n         bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);

CREATE TABLE tenant_freed (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    n         bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);

INSERT INTO tenant_taken (tenant_id, n)
SELECT t.id, (SELECT count(*) FROM jobs j
               WHERE j.tenant_id = t.id AND j.status IN ('leased', 'running'))
  FROM tenants t;
INSERT INTO tenant_freed (tenant_id) SELECT id FROM tenants;

DROP INDEX jobs_active_tenant;

-- Version 1's events trigger and version 5's lease give way to the jobs
-- table's one statement trigger (jobqueue_jobs_changed), the tenants'
-- counter triggers and a lease with another signature, all in
-- db/functions/. IF EXISTS: a database created since functions moved there
-- never had the old ones.
DROP TRIGGER IF EXISTS jobs_events_insert ON jobs;
DROP TRIGGER IF EXISTS jobs_events_update ON jobs;
DROP FUNCTION IF EXISTS jobqueue_notify_events();
DROP FUNCTION IF EXISTS jobqueue_lease(text, text, integer, double precision);
