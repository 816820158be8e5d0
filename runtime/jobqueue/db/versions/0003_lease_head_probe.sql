-- jobqueue schema, version 3: the lease's tenant probe reads one index entry.
--
-- Version 1 asked EXISTS (a queued job of this tenant here). With stale
-- statistics (a burst lands before autovacuum's next ANALYZE) the planner
-- turned that into a hash semi-join over every queued row of the queue:
-- 25-33 ms a lease at 60,000 queued instead of 4-5 ms. A scalar subquery
-- with LIMIT 1 cannot be flattened, so each tenant costs one probe of the
-- head of jobs_ready whatever the statistics say.
--
-- CREATE OR REPLACE keeps the function's oid, so sessions holding a cached
-- plan of `SELECT * FROM jobqueue_lease(...)` go on working.
CREATE OR REPLACE FUNCTION jobqueue_lease(
    p_queue text, p_worker text, p_limit integer, p_lease_seconds double precision
) RETURNS SETOF jobs
LANGUAGE plpgsql AS $$
DECLARE
    v_clock double precision;
    v_tenants text[];
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    SELECT q.vclock INTO v_clock FROM queues q WHERE q.name = p_queue FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO queues (name) VALUES (p_queue) ON CONFLICT DO NOTHING;
        SELECT q.vclock INTO v_clock FROM queues q WHERE q.name = p_queue FOR UPDATE;
    END IF;

    SELECT array_agg(l.id) INTO v_tenants
      FROM (SELECT t.id FROM tenants t
             WHERE t.enabled
               -- A scalar probe, not EXISTS: the planner may turn EXISTS
               -- into a semi-join that hashes every queued row when its
               -- statistics say the table is small (version 3).
               AND (SELECT true FROM jobs j
                     WHERE j.tenant_id = t.id AND j.queue = p_queue
                       AND j.status = 'queued' AND j.scheduled_at <= now()
                     LIMIT 1)
             ORDER BY t.id
               FOR UPDATE OF t) l;
    IF v_tenants IS NULL THEN
        RETURN;
    END IF;

    RETURN QUERY
    WITH cand AS (
        SELECT t.id AS tenant_id,
               t.weight::double precision AS weight,
               t.max_concurrent - (SELECT count(*) FROM jobs a
                                    WHERE a.tenant_id = t.id
                                      AND a.status IN ('leased', 'running')) AS free,
               greatest(coalesce(f.finish_tag, 0), v_clock) AS start_tag
          FROM tenants t
          LEFT JOIN fair_share f ON f.queue = p_queue AND f.tenant_id = t.id
         WHERE t.id = ANY (v_tenants)
    ),
    picks AS (
        SELECT j.id, c.tenant_id, c.weight,
               c.start_tag + (row_number() OVER (
                   PARTITION BY c.tenant_id
                   ORDER BY j.priority DESC, j.scheduled_at, j.seq) - 1) / c.weight AS tag
          FROM cand c
         CROSS JOIN LATERAL (
               SELECT r.id, r.priority, r.scheduled_at, r.seq
                 FROM jobs r
                WHERE r.tenant_id = c.tenant_id AND r.queue = p_queue
                  AND r.status = 'queued' AND r.scheduled_at <= now()
                ORDER BY r.priority DESC, r.scheduled_at, r.seq
                LIMIT least(c.free, p_limit)
                  FOR UPDATE SKIP LOCKED) j
         WHERE c.free > 0
    ),
    chosen AS (
        SELECT * FROM picks ORDER BY tag, tenant_id LIMIT p_limit
    ),
    done AS (
        UPDATE jobs
           SET status = 'leased',
               attempt = jobs.attempt + 1,
               lease_owner = p_worker,
               lease_token = gen_random_uuid(),
               lease_expires_at = now() + make_interval(secs => p_lease_seconds),
               leased_at = now(),
               updated_at = now()
          FROM chosen
         WHERE jobs.id = chosen.id
        RETURNING jobs.*
    ),
    finish AS (
        INSERT INTO fair_share AS f (queue, tenant_id, finish_tag)
        SELECT p_queue, c.tenant_id, max(c.tag) + 1 / min(c.weight)
          FROM chosen c GROUP BY c.tenant_id
        ON CONFLICT (queue, tenant_id) DO UPDATE SET finish_tag = excluded.finish_tag
    ),
    clock AS (
        UPDATE queues SET vclock = (SELECT max(tag) FROM chosen)
         WHERE name = p_queue AND EXISTS (SELECT 1 FROM chosen)
    )
    SELECT * FROM done;
END;
$$;
