-- Execution limits (docs/design.md, invariant 14): a job's keys, the room
-- each key has, and the writes of a queue's limits.

-- A job's key under a limit, as the text both the room map and limit_rates
-- use: [limit id, key].
CREATE OR REPLACE FUNCTION jobqueue_limit_key(
    p_limit bigint, p_per text, p_path text[], p_tenant text, p_payload jsonb
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_array(p_limit, CASE p_per WHEN 'tenant' THEN p_tenant
                                                 WHEN 'data' THEN coalesce(p_payload #>> p_path, '')
                                                 ELSE '' END)::text
$$;

-- What each key of the queue with state may still take now: a jsonb object
-- {"[limit id, key]": n}; a key missing from it may take its limit's
-- `fresh`. Read after the queue's lock, so exact.
CREATE OR REPLACE FUNCTION jobqueue_limit_room(p_queue text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(s.k, s.room), '{}')
      FROM (SELECT p.k, least(min(p.room), min(p.fresh))::integer AS room
              FROM (SELECT jobqueue_limit_key(l.id, l.per, l.path, j.tenant_id, j.payload) AS k,
                           l.max_concurrent - count(*) AS room, l.fresh
                      FROM jobs j
                      JOIN queue_limits l ON l.queue = p_queue AND l.max_concurrent IS NOT NULL
                     WHERE j.queue = p_queue AND j.limited AND j.status IN ('leased', 'running')
                     GROUP BY 1, l.max_concurrent, l.fresh
                    UNION ALL
                    SELECT jsonb_build_array(l.id, r.key)::text,
                           floor(l.rate_burst + 1
                                 - extract(epoch FROM greatest(r.tat, now()) - now())
                                   * l.rate_count / l.rate_period_seconds::numeric),
                           l.fresh
                      FROM limit_rates r
                      JOIN queue_limits l ON l.id = r.limit_id
                     WHERE l.queue = p_queue AND l.rate_count IS NOT NULL) p
             GROUP BY p.k) s
$$;

-- Every key of the job, [limit id, key] texts in limit id order, with
-- what each may take when it has no state.
CREATE OR REPLACE FUNCTION jobqueue_limit_keys(p_queue text, p_tenant text, p_payload jsonb,
                                    OUT keys text[], OUT fresh integer[])
LANGUAGE sql STABLE AS $$
    SELECT array_agg(jobqueue_limit_key(l.id, l.per, l.path, p_tenant, p_payload) ORDER BY l.id),
           array_agg(l.fresh ORDER BY l.id)
      FROM queue_limits l WHERE l.queue = p_queue
$$;

-- Whether every key of the job may take one more, by the room map.
CREATE OR REPLACE FUNCTION jobqueue_limits_allow(p_queue text, p_room jsonb, p_tenant text, p_payload jsonb)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM queue_limits l
         WHERE l.queue = p_queue
           AND coalesce((p_room ->> jobqueue_limit_key(l.id, l.per, l.path, p_tenant, p_payload))
                          ::integer, l.fresh) <= 0)
$$;

-- Create or replace one of a queue's limits, under the queue's lease lock
-- (a lease in flight finishes with the limits it began with). No row when
-- the name belongs to another owner. The queue's first limit marks its
-- active jobs, so its caps count them.
CREATE OR REPLACE FUNCTION jobqueue_limit_put(
    p_queue text, p_name text, p_per text, p_path text[], p_rate_count integer,
    p_rate_period double precision, p_rate_burst integer, p_max_concurrent integer,
    p_owner text
) RETURNS TABLE (limit_id bigint, created boolean)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('jobqueue_limits/' || p_queue, 0));
    INSERT INTO queues (name) VALUES (p_queue) ON CONFLICT DO NOTHING;
    RETURN QUERY
    INSERT INTO queue_limits AS l (queue, name, per, path, rate_count, rate_period_seconds,
                                   rate_burst, max_concurrent, owner)
    VALUES (p_queue, p_name, p_per, p_path, p_rate_count, p_rate_period, p_rate_burst,
            p_max_concurrent, p_owner)
    ON CONFLICT (queue, name) DO UPDATE
       SET per = excluded.per, path = excluded.path, rate_count = excluded.rate_count,
           rate_period_seconds = excluded.rate_period_seconds,
           rate_burst = excluded.rate_burst, max_concurrent = excluded.max_concurrent,
           updated_at = now()
     WHERE l.owner IS NOT DISTINCT FROM excluded.owner
    RETURNING l.id, (l.xmax = 0);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF NOT (SELECT q.limited FROM queues q WHERE q.name = p_queue) THEN
        UPDATE jobs SET limited = true
         WHERE queue = p_queue AND status IN ('leased', 'running') AND limited IS NOT TRUE;
        UPDATE queues SET limited = true WHERE name = p_queue;
    END IF;
END;
$$;

-- Delete one of `p_owner`'s limits (NULL: the API's); false when there is
-- none of that owner. The queue's last limit gone, it is leased as before.
CREATE OR REPLACE FUNCTION jobqueue_limit_delete(p_queue text, p_name text, p_owner text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('jobqueue_limits/' || p_queue, 0));
    DELETE FROM queue_limits
     WHERE queue = p_queue AND name = p_name AND owner IS NOT DISTINCT FROM p_owner;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE queues SET limited = false
     WHERE name = p_queue AND NOT EXISTS (SELECT 1 FROM queue_limits l WHERE l.queue = p_queue);
    RETURN true;
END;
$$;
