-- jobqueue schema, version 13: execution limits (docs/design.md, invariant 14)
-- and priority classes across tenants (invariant 15). Their functions are
-- in functions/: limits.sql, lease_limited.sql, lease_tenants.sql and lease.sql.
--
-- A queue may have limits, each on one key: the whole queue, the tenant,
-- or the text at a JSON path of the payload ('' where there is none). A
-- limit holds a rate (rate_count per rate_period_seconds, plus rate_burst
-- jobs a quiet key may start at once; GCRA on the database clock, as the
-- API's limiter), a cap on the key's active jobs (leased or running), or
-- both. They are enforced inside the lease, so they hold across every
-- worker, and a key at its limit only has its own jobs skipped.
--
-- - queues.limited says whether a queue has limits. jobqueue_lease reads it
--   with the clock it already reads and hands a limited queue to
--   jobqueue_lease_limited: a queue without limits pays one column.
-- - Leasers of one limited queue take turns on a transaction-scoped
--   advisory lock on the queue (PgBouncer-safe). Writers of its limits
--   take it too, so a lease sees one set of limits throughout, and each
--   lease reads the keys' state after the lock: exact under any number of
--   workers. Lock order: the queue, then tenant_taken rows (as every
--   other leaser), so no deadlock.
-- - A key's rate state is a row of limit_rates (its theoretical arrival
--   time, tat). A lease may start c more jobs of the key while
--   max(tat, now) + c * T <= now + (burst + 1) * T, T = period / count,
--   and moves tat by c * T rounded up to the microsecond. Then every
--   half-open window of one period holds at most count + burst starts of
--   the key (started_at, or leased_at for a prefetch): whatever order the
--   leases' now() come in, tat grows by T per job, so the jobs started in
--   [a, a + period) push tat past a + n * T while the last of them saw
--   tat <= its now + (burst + 1) * T < a + period + (burst + 1) * T.
-- - A key's active jobs are counted from the jobs themselves: a limited
--   queue's lease marks its jobs limited, and only active marked jobs
--   enter jobs_limited_active, so queues without limits write nothing to
--   it. The first limit of a queue marks the queue's jobs active then.
--
-- Priority between tenants: version 6 ordered only a tenant's own jobs by
-- priority and let the fair share alone pick tenants, so one tenant's low
-- job went before another's critical one. Now a ready job has a class
-- (jobqueue_job_class: its priority, raised one per minute of waiting, at
-- most critical); leases serve classes in order and the fair share within
-- one. With several candidates the slots are shared out over the classes
-- and tags of the tenants' first ready jobs, read from the ready index (it
-- counted the same entries before); one candidate still reads nothing.

ALTER TABLE queues ADD COLUMN limited boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS limited boolean;

-- IF NOT EXISTS: on a large live table, build it CONCURRENTLY first
-- (docs/operations.md).
CREATE INDEX IF NOT EXISTS jobs_limited_active ON jobs (queue)
    WHERE limited AND status IN ('leased', 'running');

-- owner: NULL through the API, else the declaring JobQueue
-- ('namespace/name'); only the operator changes those. fresh: what a key
-- without state may take (a full burst, or the cap).
CREATE TABLE queue_limits (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue               text NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    name                text NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    per                 text NOT NULL CHECK (per IN ('queue', 'tenant', 'data')),
    path                text[] CHECK (cardinality(path) BETWEEN 1 AND 16),
    rate_count          integer CHECK (rate_count BETWEEN 1 AND 1000000),
    rate_period_seconds double precision
                        CHECK (rate_period_seconds >= 0.001 AND rate_period_seconds <= 86400),
    rate_burst          integer NOT NULL DEFAULT 0 CHECK (rate_burst BETWEEN 0 AND 1000000),
    max_concurrent      integer CHECK (max_concurrent BETWEEN 1 AND 1000000),
    fresh               integer GENERATED ALWAYS AS (
                            least(max_concurrent,
                                  CASE WHEN rate_count IS NOT NULL THEN rate_burst + 1 END))
                        STORED,
    owner               text CHECK (length(owner) BETWEEN 1 AND 317),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT queue_limits_name UNIQUE (queue, name),
    CONSTRAINT queue_limits_path CHECK ((per = 'data') = (path IS NOT NULL)),
    CONSTRAINT queue_limits_rate CHECK ((rate_count IS NULL) = (rate_period_seconds IS NULL)),
    CONSTRAINT queue_limits_some CHECK (rate_count IS NOT NULL OR max_concurrent IS NOT NULL)
);
CREATE INDEX queue_limits_owner ON queue_limits (owner) WHERE owner IS NOT NULL;

CREATE TABLE limit_rates (
    limit_id bigint NOT NULL REFERENCES queue_limits (id) ON DELETE CASCADE,
    key      text NOT NULL,
    tat      timestamptz NOT NULL,
    PRIMARY KEY (limit_id, key)
) WITH (fillfactor = 50);
