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

-- Version 8's function, its ON CONFLICT naming the partial index.
CREATE OR REPLACE FUNCTION jobqueue_submit_unique(
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

-- The jobs table's one statement trigger: the active counters (version 6),
-- then the notifications.
CREATE OR REPLACE FUNCTION jobqueue_jobs_changed() RETURNS trigger
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
