-- jobqueue schema, version 8: unique jobs.
--
-- A job submitted with `unique` carries a digest of its tenant-independent
-- identity (type, queue, selected payload keys: jobqueue.unique); another
-- submission with the same digest is a duplicate while a job with it is in
-- one of the given states and younger than the given period. Jobs without
-- `unique` leave the column NULL and never enter the index, so ordinary
-- submission pays nothing for it.
ALTER TABLE jobs ADD COLUMN unique_key text;
CREATE INDEX jobs_unique ON jobs (tenant_id, unique_key, created_at DESC)
    WHERE unique_key IS NOT NULL;

-- Submit one unique job, or return the job it duplicates: see schema.sql.
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
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING *;
    IF FOUND THEN
        RETURN;
    END IF;
    -- The key was taken by a submission without `unique` that committed
    -- after our first look; this statement's fresh snapshot sees it.
    RETURN QUERY SELECT * FROM jobs j WHERE j.tenant_id = p_tenant AND j.idempotency_key = p_key;
END;
$$;
