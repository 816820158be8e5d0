-- jobqueue schema, version 1: the tables. Its functions and triggers (the
-- jobs table's notifications, jobqueue_lease) were defined here too; they
-- now live, in their current form only, in db/functions/.
--
-- The jobs table is the hot table: every lease, heartbeat and completion
-- updates it. fillfactor leaves room for HOT updates, and autovacuum is
-- tuned so dead rows from a busy queue are cleared within seconds, not
-- after 20% of the table has churned (the default).

CREATE TYPE job_status AS ENUM (
    'queued', 'leased', 'running', 'succeeded', 'dlq', 'cancelled'
);

CREATE TABLE tenants (
    id              text PRIMARY KEY
                    CHECK (id ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    enabled         boolean NOT NULL DEFAULT true,
    max_concurrent  integer NOT NULL DEFAULT 100 CHECK (max_concurrent > 0),
    rate_per_minute integer NOT NULL DEFAULT 6000 CHECK (rate_per_minute > 0),
    rate_burst      integer NOT NULL DEFAULT 1000 CHECK (rate_burst > 0),
    weight          integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000),
    max_queued      integer NOT NULL DEFAULT 1000000 CHECK (max_queued > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- API keys are random 256-bit tokens, so a SHA-256 digest is enough: there
-- is nothing to brute-force that a slow hash would protect.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT 'default',
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id) WHERE revoked_at IS NULL;

-- GCRA state: the theoretical arrival time of the next request. One row per
-- tenant, so the limit holds across any number of API replicas.
CREATE TABLE rate_limits (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    tat       timestamptz NOT NULL
) WITH (fillfactor = 50);

-- Start-time fair queueing between tenants of one queue: the queue's virtual
-- clock and each tenant's finish tag. Leasing locks the queue row, which
-- also serialises leasers of one queue so tenant quotas hold under races.
CREATE TABLE queues (
    name        text PRIMARY KEY,
    vclock      double precision NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);

CREATE TABLE fair_share (
    queue       text NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    finish_tag  double precision NOT NULL,
    PRIMARY KEY (queue, tenant_id)
) WITH (fillfactor = 50);

CREATE TABLE jobs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- FIFO tie-break: uuids carry no order, and a batch shares one now().
    seq                 bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id           text NOT NULL REFERENCES tenants (id),
    queue               text NOT NULL CHECK (length(queue) BETWEEN 1 AND 63),
    type                text NOT NULL CHECK (length(type) BETWEEN 1 AND 200),
    payload             jsonb NOT NULL DEFAULT '{}',
    status              job_status NOT NULL DEFAULT 'queued',
    -- 0 low, 1 normal, 2 high, 3 critical
    priority            smallint NOT NULL DEFAULT 1 CHECK (priority BETWEEN 0 AND 3),
    attempt             integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts        integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
    timeout_seconds     integer NOT NULL DEFAULT 300 CHECK (timeout_seconds BETWEEN 1 AND 86400),
    idempotency_key     text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_fingerprint text,
    lease_owner         text,
    lease_token         uuid,
    lease_expires_at    timestamptz,
    scheduled_at        timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    leased_at           timestamptz,
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    last_error          text,
    errors              jsonb NOT NULL DEFAULT '[]',
    result              jsonb,
    trace_context       jsonb,
    CONSTRAINT jobs_idempotency UNIQUE (tenant_id, idempotency_key),
    CONSTRAINT jobs_lease_consistent CHECK (
        (status IN ('leased', 'running')) = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL)
    )
) WITH (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);

-- The lease path reads only this index: queued jobs, in the order they are
-- served. Finished jobs never enter it, so history does not slow leasing.
CREATE INDEX jobs_ready ON jobs (tenant_id, queue, priority DESC, scheduled_at, seq)
    WHERE status = 'queued';
-- Both small: bounded by the total concurrency of the workers.
CREATE INDEX jobs_active_tenant ON jobs (tenant_id) WHERE status IN ('leased', 'running');
CREATE INDEX jobs_active_expiry ON jobs (lease_expires_at) WHERE status IN ('leased', 'running');
CREATE INDEX jobs_dlq ON jobs (tenant_id, queue) WHERE status = 'dlq';
CREATE INDEX jobs_finished ON jobs (finished_at)
    WHERE status IN ('succeeded', 'dlq', 'cancelled');
CREATE INDEX jobs_tenant_recent ON jobs (tenant_id, created_at DESC, seq DESC);

-- Leader election without session state (PgBouncer-safe): a row with an
-- expiry that only its holder may extend.
CREATE TABLE leaders (
    name         text PRIMARY KEY,
    holder       text NOT NULL,
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    renewed_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    transitions  integer NOT NULL DEFAULT 0
);
