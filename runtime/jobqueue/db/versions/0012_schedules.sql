-- jobqueue schema, version 12: schedules (cron).
--
-- A tenant's schedule fires a job from its template at each fire time of a
-- cron expression in a time zone (jobqueue.cron). The elected reaper fires
-- it: one statement per fire time, compare-and-set on next_fire_at, the job
-- keyed by (schedule, fire time), so two reapers never fire a time twice and
-- a reaper killed mid-way leaves the next one exactly where it stopped.
-- owner is NULL for schedules made through the API or CLI, and names the
-- JobQueue ('namespace/name') that declares the others; only the operator
-- changes those. The job's request_fingerprint stays NULL: no client
-- request made it.
CREATE TABLE schedules (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    cron          text NOT NULL CHECK (length(cron) BETWEEN 1 AND 200),
    timezone      text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
    queue         text NOT NULL CHECK (length(queue) BETWEEN 1 AND 63),
    type          text NOT NULL CHECK (length(type) BETWEEN 1 AND 200),
    payload       jsonb NOT NULL DEFAULT '{}',
    priority      smallint NOT NULL DEFAULT 1 CHECK (priority BETWEEN 0 AND 3),
    max_attempts  integer CHECK (max_attempts BETWEEN 1 AND 1000),
    overlap       text NOT NULL DEFAULT 'allow' CHECK (overlap IN ('allow', 'skip')),
    missed        text NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip', 'run_once')),
    owner         text CHECK (length(owner) BETWEEN 1 AND 317),
    next_fire_at  timestamptz NOT NULL,
    last_fire_at  timestamptz,
    last_job_id   uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedules_name UNIQUE (tenant_id, name)
) WITH (fillfactor = 70);
CREATE INDEX schedules_due ON schedules (next_fire_at);
CREATE INDEX schedules_owner ON schedules (owner) WHERE owner IS NOT NULL;
