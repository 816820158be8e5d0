-- A ready job's class between tenants (invariant 15): its priority (0 low
-- .. 3 critical), one higher for each minute it has waited ready since
-- scheduled_at, at most critical. Tenants are served class by class, and
-- by weight within one, so a tenant that marks everything critical delays
-- the others' jobs by three minutes at most before they compete with it
-- as equals.
CREATE OR REPLACE FUNCTION jobqueue_job_class(p_priority smallint, p_scheduled_at timestamptz)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT least(3, p_priority + CASE WHEN p_scheduled_at <= now() - interval '3 minutes' THEN 3
                                      WHEN p_scheduled_at <= now() - interval '2 minutes' THEN 2
                                      WHEN p_scheduled_at <= now() - interval '1 minute' THEN 1
                                      ELSE 0 END)
$$;

-- Steps 1 and 2 of a lease (jobqueue_lease, jobqueue_lease_limited): the
-- candidate tenants, in id order, their taken rows locked. Enabled, with a
-- free slot and a ready job in p_queue (with limits, p_room not NULL: one
-- whose keys all have room), the p_limit whose next such job has the
-- highest class, then the smallest start tags. NULL: none.
CREATE OR REPLACE FUNCTION jobqueue_lease_tenants(
    p_queue text, p_limit integer, p_clock double precision, p_room jsonb
) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    v_tenants text[];
BEGIN
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
              -- A scalar probe, not EXISTS: the planner may turn EXISTS
              -- into a semi-join that hashes every queued row when its
              -- statistics say the table is small. The ORDER BY is the
              -- index's: without it, a LIMIT over rows it believes common
              -- invites a seq scan.
             CROSS JOIN LATERAL (
                   SELECT (SELECT jobqueue_job_class(j.priority, j.scheduled_at) FROM jobs j
                            WHERE j.tenant_id = e.id AND j.queue = p_queue
                              AND j.status = 'queued' AND j.scheduled_at <= now()
                              AND (p_room IS NULL
                                   OR jobqueue_limits_allow(p_queue, p_room, j.tenant_id,
                                                            j.payload))
                            ORDER BY j.priority DESC, j.scheduled_at, j.seq
                            LIMIT 1) AS cls) h
             WHERE e.enabled
               AND e.max_concurrent > tk.n - fr.n
               AND h.cls IS NOT NULL
             -- The start tag by key lookup: a join here was planned as a
             -- nested loop over every fair_share row per tenant.
             ORDER BY h.cls DESC,
                      greatest(coalesce((SELECT f.finish_tag FROM fair_share f
                                          WHERE f.queue = p_queue
                                            AND f.tenant_id = e.id), 0),
                               p_clock),
                      e.id
             LIMIT p_limit) c;
    IF v_tenants IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM tenant_taken tk WHERE tk.tenant_id = ANY (v_tenants)
      ORDER BY tk.tenant_id FOR UPDATE;
    RETURN v_tenants;
END;
$$;
