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
