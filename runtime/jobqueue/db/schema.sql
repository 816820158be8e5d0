-- The whole current schema in one file, for reading and for the test that
-- the migrations produce exactly this. Keep it in step with versions/.
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

-- Failure budgets of POST /auth/token (GCRA as above), per client address
-- ('addr:…') and per tenant id named ('tenant:…', existing or not). A row
-- whose tat has passed is a full budget; later failures delete a few.
CREATE TABLE auth_failures (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL
) WITH (fillfactor = 50);
CREATE INDEX auth_failures_tat ON auth_failures (tat);

-- Start-time fair queueing between tenants of one queue: the queue's virtual
-- clock and each tenant's finish tag. A lease advances the clock when it
-- finds the row free (SKIP LOCKED): leasers of one queue never wait on it.
-- The row also holds the queue's defaults for submission.
CREATE TABLE queues (
    name        text PRIMARY KEY,
    vclock      double precision NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- For jobs submitted without max_attempts; NULL means 5. (version 2)
    default_max_attempts integer CHECK (default_max_attempts BETWEEN 1 AND 1000)
) WITH (fillfactor = 50);

-- The operator's count of each queue's worker pods, for the dashboard
-- (version 7). Apart from `queues`, whose row leasers lock.
CREATE TABLE queue_replicas (
    queue          text PRIMARY KEY CHECK (length(queue) BETWEEN 1 AND 63),
    replicas       integer NOT NULL CHECK (replicas >= 0),
    ready_replicas integer NOT NULL CHECK (ready_replicas >= 0),
    max_replicas   integer NOT NULL CHECK (max_replicas >= 0),
    reported_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE fair_share (
    queue       text NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    finish_tag  double precision NOT NULL,
    PRIMARY KEY (queue, tenant_id)
) WITH (fillfactor = 50);

-- Each tenant's active jobs (leased or running, in all queues) is
-- tenant_taken.n - tenant_freed.n. The jobs table's statement trigger adds
-- jobs that become active to taken and jobs that stop being active to
-- freed; leases lock the taken rows of the tenants they serve, so quotas
-- hold exactly while completions (which write freed) never wait for them.
-- Two rows, not two columns, for exactly that reason. Read them, never
-- write them: only the trigger does (docs/design.md, "Counters").
CREATE TABLE tenant_taken (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    n         bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);

CREATE TABLE tenant_freed (
    tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    n         bigint NOT NULL DEFAULT 0
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
    -- The latest ctx.progress(fraction, note) of any attempt. (version 9)
    progress            double precision CHECK (progress BETWEEN 0 AND 1),
    progress_note       text CHECK (length(progress_note) <= 200),
    -- Set only for jobs submitted with `unique` (jobqueue.unique). (version 8)
    unique_key          text,
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

-- Submissions with a key are accepted once (docs/design.md, invariant 1);
-- keyless jobs have no entry, so their updates do not write one.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- The lease path reads only this index: queued jobs, in the order they are
-- served. Finished jobs never enter it, so history does not slow leasing.
CREATE INDEX jobs_ready ON jobs (tenant_id, queue, priority DESC, scheduled_at, seq)
    WHERE status = 'queued';
-- Small: bounded by the total concurrency of the workers.
CREATE INDEX jobs_active_expiry ON jobs (lease_expires_at) WHERE status IN ('leased', 'running');
CREATE INDEX jobs_dlq ON jobs (tenant_id, queue) WHERE status = 'dlq';
CREATE INDEX jobs_finished ON jobs (finished_at)
    WHERE status IN ('succeeded', 'dlq', 'cancelled');
CREATE INDEX jobs_tenant_recent ON jobs (tenant_id, created_at DESC, seq DESC);
-- Listing a filtered view newest first (version 7): each ends in the
-- listing order, so a page is read in order and a deep page from its cursor.
CREATE INDEX jobs_tenant_status_recent ON jobs (tenant_id, status, created_at DESC, seq DESC);
CREATE INDEX jobs_tenant_queue_recent ON jobs (tenant_id, queue, created_at DESC, seq DESC);
CREATE INDEX jobs_tenant_type_recent ON jobs (tenant_id, type, created_at DESC, seq DESC);
-- Unique jobs only: ordinary submissions leave unique_key NULL and never
-- enter it. (version 8)
CREATE INDEX jobs_unique ON jobs (tenant_id, unique_key, created_at DESC)
    WHERE unique_key IS NOT NULL;

-- Submit one unique job, or return the job it duplicates: a job of the
-- tenant with the same unique_key, in one of p_states, created within
-- p_period seconds (NULL: ever). The caller tells the outcomes apart by
-- the returned id (p_id: inserted; the same idempotency key: a replay;
-- otherwise: the duplicate).
--
-- 1. An idempotency key already used answers as plain submission does.
-- 2. A transaction-scoped advisory lock on (tenant, unique_key) serialises
--    submitters of the same identity (PgBouncer-safe, freed at commit);
--    others never wait.
-- 3. The duplicate check is a new statement: under READ COMMITTED its
--    snapshot is taken after the lock, so it sees the job of a submitter
--    we waited for. Only then insert. Callers must not use REPEATABLE READ
--    or SERIALIZABLE here (their snapshot would predate the lock).
CREATE FUNCTION jobqueue_submit_unique(
    p_id uuid, p_tenant text, p_queue text, p_type text, p_payload jsonb,
    p_priority smallint, p_max_attempts integer, p_timeout integer, p_key text,
    p_fingerprint text, p_run_at timestamptz, p_trace jsonb,
    p_unique_key text, p_period double precision, p_states job_status[]
) RETURNS SETOF jobs
LANGUAGE plpgsql AS $$
BEGIN
    IF p_key IS NOT NULL THEN
        RETURN QUERY SELECT * FROM jobs j WHERE j.tenant_id = p_tenant AND j.idempotency_key = p_key;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant || '/' || p_unique_key, 0));
    RETURN QUERY
    SELECT * FROM jobs j
     WHERE j.tenant_id = p_tenant AND j.unique_key = p_unique_key
       AND j.status = ANY (p_states)
       AND (p_period IS NULL OR j.created_at > now() - make_interval(secs => p_period))
     ORDER BY j.created_at DESC
     LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    INSERT INTO jobs (id, tenant_id, queue, type, payload, priority, max_attempts,
                      timeout_seconds, idempotency_key, request_fingerprint,
                      scheduled_at, trace_context, unique_key)
    VALUES (p_id, p_tenant, p_queue, p_type, p_payload, p_priority,
            coalesce(p_max_attempts,
                     (SELECT q.default_max_attempts FROM queues q WHERE q.name = p_queue), 5),
            p_timeout, p_key, p_fingerprint, coalesce(p_run_at, now()), p_trace, p_unique_key)
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *;
    IF FOUND THEN
        RETURN;
    END IF;
    -- The key was taken by a submission without `unique` that committed
    -- after our first look; this statement's fresh snapshot sees it.
    RETURN QUERY SELECT * FROM jobs j WHERE j.tenant_id = p_tenant AND j.idempotency_key = p_key;
END;
$$;

-- Schedules (version 12): a tenant's cron expression in a time zone and the
-- job it fires (jobqueue.cron, db/sql/schedules.sql). The elected reaper
-- fires one statement per fire time, compare-and-set on next_fire_at, the
-- job keyed by (schedule, fire time). owner: NULL through the API or CLI,
-- else the declaring JobQueue ('namespace/name'); only the operator changes
-- those.
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

-- Connections listening for per-job events (db/notify.py registers them);
-- the jobs trigger sends those events only while a row here is unexpired.
CREATE TABLE event_watchers (
    name       text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- Send `p_items` (JSON texts) on `p_channel` as JSON arrays, as few
-- notifications as fit: each payload is shorter than PostgreSQL's 8,000-byte
-- limit, measured in bytes (octet_length), since a payload that reaches it
-- aborts the statement that sent it.
--
-- One set-based pass, no loop over the items: with size = an item's bytes
-- plus 2 (its ", " or bracket) and cap = 7997 - the largest size, an item
-- goes to chunk (running total of sizes up to it - 1) / cap. The running
-- totals at the ends of a chunk's items differ by less than cap, so a
-- chunk holds less than cap + its first item's size <= 7997 bytes. Never
-- by row count: row sizes vary sixfold with the names. An item of 8,000
-- bytes alone could not be sent at all; the jobs table's checks bound the
-- trigger's items to about 500 (63-character tenant id and queue name,
-- each queue character at most 6 bytes as a JSON escape).
CREATE FUNCTION jobqueue_notify_chunked(p_channel text, p_items text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    FOR payload IN
        SELECT '[' || string_agg(c.item, ', ' ORDER BY c.n) || ']'
          FROM (SELECT s.item, s.n,
                       (sum(s.size) OVER (ORDER BY s.n) - 1)
                         / greatest(7997 - max(s.size) OVER (), 1) AS chunk
                  FROM (SELECT u.item, u.n, octet_length(u.item) + 2 AS size
                          FROM unnest(p_items) WITH ORDINALITY AS u (item, n)) s) c
         GROUP BY c.chunk
         ORDER BY c.chunk
    LOOP
        PERFORM pg_notify(p_channel, payload);
    END LOOP;
END;
$$;

-- Job state changes, one notification per statement rather than per row
-- (NOTIFY takes a global lock at commit), chunked by jobqueue_notify_chunked:
-- on `jobqueue_ready`, the names of the queues that got queued jobs (for
-- idle workers); on `jobqueue_events`, while someone watches, a JSON array
-- of [job id, tenant id, status, queue] (for WebSocket watchers).
-- The jobs table's one statement trigger: the active counters (version 6),
-- then the notifications.
CREATE FUNCTION jobqueue_jobs_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_ready text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        WITH d AS (
            SELECT s.tenant_id, sum(s.x) AS delta
              FROM (SELECT n.tenant_id, 1 AS x FROM new_rows n
                     WHERE n.status IN ('leased', 'running')
                    UNION ALL
                    SELECT o.tenant_id, -1 FROM old_rows o
                     WHERE o.status IN ('leased', 'running')) s
             GROUP BY s.tenant_id
            HAVING sum(s.x) <> 0
        ),
        taken AS (
            INSERT INTO tenant_taken AS c (tenant_id, n)
            SELECT d.tenant_id, d.delta FROM d WHERE d.delta > 0 ORDER BY d.tenant_id
            ON CONFLICT (tenant_id) DO UPDATE SET n = c.n + excluded.n
        )
        INSERT INTO tenant_freed AS c (tenant_id, n)
        SELECT d.tenant_id, -d.delta FROM d WHERE d.delta < 0 ORDER BY d.tenant_id
        ON CONFLICT (tenant_id) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO tenant_taken AS c (tenant_id, n)
        SELECT n.tenant_id, count(*) FROM new_rows n
         WHERE n.status IN ('leased', 'running')
         GROUP BY n.tenant_id ORDER BY n.tenant_id
        ON CONFLICT (tenant_id) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO tenant_freed AS c (tenant_id, n)
        SELECT o.tenant_id, count(*) FROM old_rows o
         WHERE o.status IN ('leased', 'running')
         GROUP BY o.tenant_id ORDER BY o.tenant_id
        ON CONFLICT (tenant_id) DO UPDATE SET n = c.n + excluded.n;
        RETURN NULL;
    END IF;

    IF current_setting('jobqueue.events', true) = 'off' THEN
        RETURN NULL;
    END IF;
    -- Workers: which queues got work. A queued row in an UPDATE was made
    -- queued by it (retry, release, a failure's retry, the reaper) or
    -- changed while queued: either way a lease attempt is all it costs.
    v_ready := ARRAY(SELECT DISTINCT to_json(n.queue)::text
                        FROM new_rows n WHERE n.status = 'queued');
    -- Workers: held jobs cancelled, so their handlers stop at once. The
    -- join only when a statement cancelled anything.
    IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM new_rows n WHERE n.status = 'cancelled') THEN
        v_ready := v_ready || ARRAY(
            SELECT json_build_array('cancelled', n.id)::text
              FROM new_rows n JOIN old_rows o ON o.id = n.id
             WHERE n.status = 'cancelled' AND o.status IN ('leased', 'running'));
    END IF;
    IF cardinality(v_ready) > 0 THEN
        PERFORM jobqueue_notify_chunked('jobqueue_ready', v_ready);
    END IF;
    -- Watchers: every status change, only while someone watches.
    IF NOT EXISTS (SELECT 1 FROM event_watchers w WHERE w.expires_at > now()) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM jobqueue_notify_chunked('jobqueue_events', ARRAY(
            SELECT jsonb_build_array(n.id, n.tenant_id, n.status, n.queue)::text
              FROM new_rows n));
    ELSE
        PERFORM jobqueue_notify_chunked('jobqueue_events', ARRAY(
            SELECT jsonb_build_array(n.id, n.tenant_id, n.status, n.queue)::text
              FROM new_rows n JOIN old_rows o ON o.id = n.id
             WHERE o.status IS DISTINCT FROM n.status));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_changed_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_jobs_changed();
CREATE TRIGGER jobs_changed_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_jobs_changed();
CREATE TRIGGER jobs_changed_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_jobs_changed();

-- Every tenant has its two counter rows from birth, so a lease can lock
-- them without creating them.
CREATE FUNCTION jobqueue_tenant_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenant_taken (tenant_id) VALUES (NEW.id);
    INSERT INTO tenant_freed (tenant_id) VALUES (NEW.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tenants_counters AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION jobqueue_tenant_created();

-- A lease waiting for this tenant's taken row reads the tenant again once
-- it has it: holding that row until this change commits makes a lease in
-- flight see the tenant disabled or its lower quota.
CREATE FUNCTION jobqueue_tenant_tightened() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM tenant_taken WHERE tenant_id = NEW.id FOR UPDATE;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tenants_tightened AFTER UPDATE ON tenants
    FOR EACH ROW
    WHEN (OLD.enabled AND NOT NEW.enabled OR NEW.max_concurrent < OLD.max_concurrent)
    EXECUTE FUNCTION jobqueue_tenant_tightened();

-- Lease up to p_limit ready jobs of one queue for one worker, in one call,
-- as p_status: 'running' (the worker starts them now) or 'leased' (it
-- prefetches; `start` makes them running later).
--
-- 1. Choose the candidate tenants, without locks: enabled, with ready work
--    in this queue and a free slot (taken - freed < max_concurrent), found
--    from the ready index (tenants with nothing queued cost nothing), and
--    among those the p_limit with the smallest start tags: no other tenant
--    could win a slot this round.
-- 2. Lock their taken rows, in id order (no deadlock between leasers).
--    Only leasers of the same tenants wait here; a leaser of other tenants
--    goes on.
-- 3. In a new statement (READ COMMITTED: a fresh snapshot, after the
--    locks) read each candidate's counters, quota and tag again; its room
--    is max_concurrent - (taken - freed), exact since nobody else can add
--    to taken now.
-- 4. Serve by start-time fair queueing (weights): share the p_limit slots
--    out on virtual tags first, without reading a job, then lock exactly
--    each tenant's share of its jobs (priority, then FIFO, skipping rows
--    another transaction holds). With one candidate the share is simply
--    min(room, p_limit): no tags to compare and no ready jobs to count.
-- 5. Write the jobs (the trigger adds them to taken), each tenant's finish
--    tag, and the queue's clock when its row is free.
--
-- Extension points: a new limit on what a tenant may take is one more
-- term in `room` (step 3) and, to keep candidates honest, in step 1.
CREATE FUNCTION jobqueue_lease(
    p_queue text, p_worker text, p_limit integer, p_lease_seconds double precision,
    p_status job_status DEFAULT 'running'
) RETURNS SETOF jobs
LANGUAGE plpgsql AS $$
DECLARE
    v_clock double precision;
    v_tenants text[];
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    IF p_status NOT IN ('leased', 'running') THEN
        RAISE EXCEPTION 'jobqueue_lease: p_status must be leased or running, not %', p_status;
    END IF;
    SELECT q.vclock INTO v_clock FROM queues q WHERE q.name = p_queue;
    IF NOT FOUND THEN
        INSERT INTO queues (name) VALUES (p_queue) ON CONFLICT DO NOTHING;
        v_clock := 0;
    END IF;

    -- 1. Candidates.
    SELECT array_agg(c.id ORDER BY c.id) INTO v_tenants
      FROM (SELECT e.id
              FROM (WITH RECURSIVE queued (id) AS (
                        -- Tenants with queued jobs in any queue, by a skip
                        -- scan of the ready index: one probe per such tenant.
                        (SELECT j.tenant_id FROM jobs j WHERE j.status = 'queued'
                          ORDER BY j.tenant_id LIMIT 1)
                        UNION ALL
                        SELECT (SELECT j.tenant_id FROM jobs j
                                 WHERE j.status = 'queued' AND j.tenant_id > q.id
                                 ORDER BY j.tenant_id LIMIT 1)
                          FROM queued q WHERE q.id IS NOT NULL)
                    SELECT id FROM queued WHERE id IS NOT NULL) w
              JOIN tenants e ON e.id = w.id
              JOIN tenant_taken tk ON tk.tenant_id = e.id
              JOIN tenant_freed fr ON fr.tenant_id = e.id
             WHERE e.enabled
               AND e.max_concurrent > tk.n - fr.n
               -- A scalar probe, not EXISTS: the planner may turn EXISTS
               -- into a semi-join that hashes every queued row when its
               -- statistics say the table is small. The ORDER BY is the
               -- index's: without it, a LIMIT over rows it believes common
               -- invites a seq scan.
               AND (SELECT true FROM jobs j
                     WHERE j.tenant_id = e.id AND j.queue = p_queue
                       AND j.status = 'queued' AND j.scheduled_at <= now()
                     ORDER BY j.priority DESC, j.scheduled_at, j.seq
                     LIMIT 1)
             -- The start tag by key lookup: a join here was planned as a
             -- nested loop over every fair_share row per tenant.
             ORDER BY greatest(coalesce((SELECT f.finish_tag FROM fair_share f
                                          WHERE f.queue = p_queue
                                            AND f.tenant_id = e.id), 0),
                               v_clock),
                      e.id
             LIMIT p_limit) c;
    IF v_tenants IS NULL THEN
        RETURN;
    END IF;

    -- 2. Lock.
    PERFORM 1 FROM tenant_taken tk WHERE tk.tenant_id = ANY (v_tenants)
      ORDER BY tk.tenant_id FOR UPDATE;

    -- 3.-5.
    RETURN QUERY
    WITH cand AS (
        SELECT t.id AS tenant_id,
               t.weight::double precision AS weight,
               greatest(coalesce(f.finish_tag, 0), v_clock) AS start_tag,
               least(t.max_concurrent - (tk.n - fr.n),
                     CASE WHEN cardinality(v_tenants) = 1 THEN p_limit
                          ELSE (SELECT count(*)
                                  FROM (SELECT 1 FROM jobs r
                                         WHERE r.tenant_id = t.id AND r.queue = p_queue
                                           AND r.status = 'queued'
                                           AND r.scheduled_at <= now()
                                         ORDER BY r.priority DESC, r.scheduled_at, r.seq
                                         LIMIT p_limit) ready) END) AS room
          FROM tenants t
          JOIN tenant_taken tk ON tk.tenant_id = t.id
          JOIN tenant_freed fr ON fr.tenant_id = t.id
          LEFT JOIN fair_share f ON f.queue = p_queue AND f.tenant_id = t.id
         -- enabled again: read after the lock, so a tenant disabled since
         -- it was chosen gets nothing this round.
         WHERE t.id = ANY (v_tenants) AND t.enabled
    ),
    slots AS (
        SELECT c.tenant_id, c.start_tag + k / c.weight AS tag
          FROM cand c
         CROSS JOIN LATERAL generate_series(0, c.room - 1) AS k
         ORDER BY tag, c.tenant_id
         LIMIT p_limit
    ),
    allot AS (
        SELECT c.tenant_id, c.weight, c.start_tag, count(*) AS n
          FROM slots s JOIN cand c USING (tenant_id)
         GROUP BY c.tenant_id, c.weight, c.start_tag
    ),
    picks AS (
        SELECT j.id, a.tenant_id, a.weight,
               a.start_tag + (row_number() OVER (
                   PARTITION BY a.tenant_id
                   ORDER BY j.priority DESC, j.scheduled_at, j.seq) - 1) / a.weight AS tag
          FROM allot a
         CROSS JOIN LATERAL (
               SELECT r.id, r.priority, r.scheduled_at, r.seq
                 FROM jobs r
                WHERE r.tenant_id = a.tenant_id AND r.queue = p_queue
                  AND r.status = 'queued' AND r.scheduled_at <= now()
                ORDER BY r.priority DESC, r.scheduled_at, r.seq
                LIMIT a.n
                  FOR UPDATE SKIP LOCKED) j
         -- Never more, and it tells the planner so: unbounded, it guessed
         -- thousands of picks and hashed the whole table to update ten.
         LIMIT p_limit
    ),
    done AS (
        UPDATE jobs
           SET status = p_status,
               attempt = jobs.attempt + 1,
               lease_owner = p_worker,
               lease_token = gen_random_uuid(),
               lease_expires_at = now() + make_interval(secs => p_lease_seconds),
               leased_at = now(),
               started_at = CASE WHEN p_status = 'running' THEN now() END,
               updated_at = now()
          FROM picks
         WHERE jobs.id = picks.id
        RETURNING jobs.*
    ),
    finish AS (
        INSERT INTO fair_share AS f (queue, tenant_id, finish_tag)
        SELECT p_queue, p.tenant_id, max(p.tag) + 1 / min(p.weight)
          FROM picks p GROUP BY p.tenant_id
        ON CONFLICT (queue, tenant_id) DO UPDATE SET finish_tag = excluded.finish_tag
    ),
    clock AS (
        UPDATE queues q SET vclock = m.tag
          FROM (SELECT max(tag) AS tag FROM picks) m
         WHERE q.name = p_queue AND m.tag > q.vclock
           AND q.name IN (SELECT l.name FROM queues l WHERE l.name = p_queue
                             FOR NO KEY UPDATE SKIP LOCKED)
    )
    SELECT * FROM done;
END;
$$;
