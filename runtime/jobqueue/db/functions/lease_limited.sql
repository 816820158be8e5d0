-- The lease of a queue with limits: the same contract as jobqueue_lease
-- (quotas, weighted fairness between tenants, priority then FIFO within
-- one), and no key beyond its limits (invariant 14).
--
-- 1. Take the queue's turn (the advisory lock), drop a few rate rows long
--    paid off (a missing row is a full budget), and read every key's room.
-- 2. Candidates: enabled tenants with a free slot and a ready job whose
--    keys all have room, the p_limit whose next such job has the highest
--    class, then the smallest start tags; lock their taken rows in id order.
-- 3. Rounds: share the slots still free out by class and virtual tag of
--    the tenants' ready jobs whose keys have room (as jobqueue_lease
--    does), lock each tenant's share of those jobs, and take them in
--    (class, tag) order while every key of the job
--    still has room, counting each taken job against its keys. A job whose
--    key ran out during the round is passed over, and the next round
--    fetches past it; a tenant that had fewer such jobs than its share is
--    done. Every round takes a job or finishes a tenant, so they end.
-- 4. One statement writes the jobs (marked limited), the tenants' finish
--    tags, the clock and the keys' rate state.
CREATE OR REPLACE FUNCTION jobqueue_lease_limited(
    p_queue text, p_worker text, p_limit integer, p_lease_seconds double precision,
    p_status job_status
) RETURNS SETOF jobs
LANGUAGE plpgsql AS $$
DECLARE
    v_clock double precision;
    v_room jsonb;
    v_tenants text[];
    v_done text[] := '{}';     -- tenants with nothing more to give
    v_ids uuid[] := '{}';      -- taken jobs, in the order taken
    v_of text[] := '{}';       -- their tenants
    v_taken text[] := '{}';    -- every key of every taken job
    v_allot jsonb;             -- this round's share of each tenant
    v_fetched jsonb;           -- and how many of its jobs the round found
    v_progress boolean;
    v_ok boolean;
    v_round integer := 0;
    v_job record;
BEGIN
    -- 1.
    PERFORM pg_advisory_xact_lock(hashtextextended('jobqueue_limits/' || p_queue, 0));
    SELECT q.vclock INTO v_clock FROM queues q WHERE q.name = p_queue;
    DELETE FROM limit_rates s
     USING (SELECT r.limit_id, r.key FROM limit_rates r
              JOIN queue_limits l ON l.id = r.limit_id
             WHERE l.queue = p_queue AND r.tat < now() - interval '1 minute'
             LIMIT 16) old
     WHERE s.limit_id = old.limit_id AND s.key = old.key;
    v_room := jobqueue_limit_room(p_queue);

    -- 2.
    v_tenants := jobqueue_lease_tenants(p_queue, p_limit, v_clock, v_room);
    IF v_tenants IS NULL THEN
        RETURN;
    END IF;

    -- 3.
    LOOP
        v_round := v_round + 1;
        v_progress := false;
        v_allot := '{}';
        v_fetched := '{}';
        FOR v_job IN
            WITH cand AS (
                SELECT t.id AS tenant_id, t.weight::double precision AS weight,
                       greatest(coalesce(f.finish_tag, 0), v_clock)
                         + g.got / t.weight::double precision AS start_tag,
                       least(t.max_concurrent - (tk.n - fr.n) - g.got,
                             p_limit - cardinality(v_ids)) AS room
                  FROM tenants t
                  JOIN tenant_taken tk ON tk.tenant_id = t.id
                  JOIN tenant_freed fr ON fr.tenant_id = t.id
                  LEFT JOIN fair_share f ON f.queue = p_queue AND f.tenant_id = t.id
                 CROSS JOIN LATERAL (SELECT count(*) AS got FROM unnest(v_of) o
                                      WHERE o = t.id) g
                 WHERE t.id = ANY (v_tenants) AND t.id <> ALL (v_done) AND t.enabled
            ),
            slots AS (
                SELECT c.tenant_id, c.start_tag + (r.k - 1) / c.weight AS tag, r.cls
                  FROM cand c
                 CROSS JOIN LATERAL (
                       SELECT jobqueue_job_class(x.priority, x.scheduled_at) AS cls,
                              row_number() OVER (
                                  ORDER BY x.priority DESC, x.scheduled_at, x.seq) AS k
                         FROM (SELECT x.priority, x.scheduled_at, x.seq FROM jobs x
                                WHERE x.tenant_id = c.tenant_id AND x.queue = p_queue
                                  AND x.status = 'queued' AND x.scheduled_at <= now()
                                  AND x.id <> ALL (v_ids)
                                  AND jobqueue_limits_allow(p_queue, v_room, x.tenant_id,
                                                            x.payload)
                                ORDER BY x.priority DESC, x.scheduled_at, x.seq
                                LIMIT greatest(c.room, 0)) x) r
                 ORDER BY r.cls DESC, tag, c.tenant_id
                 LIMIT p_limit - cardinality(v_ids)
            ),
            allot AS (
                SELECT c.tenant_id, c.weight, c.start_tag, count(*) AS n
                  FROM slots s JOIN cand c USING (tenant_id)
                 GROUP BY c.tenant_id, c.weight, c.start_tag
            ),
            fetched AS (
                SELECT a.tenant_id, a.n, j.id, j.payload,
                       jobqueue_job_class(j.priority, j.scheduled_at) AS cls,
                       a.start_tag + (row_number() OVER (
                           PARTITION BY a.tenant_id
                           ORDER BY j.priority DESC, j.scheduled_at, j.seq) - 1) / a.weight AS tag
                  FROM allot a
                  LEFT JOIN LATERAL (
                       SELECT x.id, x.payload, x.priority, x.scheduled_at, x.seq
                         FROM jobs x
                        WHERE x.tenant_id = a.tenant_id AND x.queue = p_queue
                          AND x.status = 'queued' AND x.scheduled_at <= now()
                          AND x.id <> ALL (v_ids)
                          AND jobqueue_limits_allow(p_queue, v_room, x.tenant_id, x.payload)
                        ORDER BY x.priority DESC, x.scheduled_at, x.seq
                        LIMIT a.n
                          FOR UPDATE SKIP LOCKED) j ON true
            )
            SELECT f.tenant_id, f.n, f.id, lk.keys, lk.fresh, f.tag
              FROM fetched f
              LEFT JOIN LATERAL jobqueue_limit_keys(p_queue, f.tenant_id, f.payload) lk
                ON f.id IS NOT NULL
             ORDER BY f.cls DESC NULLS FIRST, f.tag, f.tenant_id
        LOOP
            v_allot := v_allot || jsonb_build_object(v_job.tenant_id, v_job.n);
            CONTINUE WHEN v_job.id IS NULL;
            v_fetched := v_fetched || jsonb_build_object(
                v_job.tenant_id, coalesce((v_fetched ->> v_job.tenant_id)::integer, 0) + 1);
            CONTINUE WHEN cardinality(v_ids) >= p_limit;
            v_ok := true;
            FOR i IN 1 .. coalesce(cardinality(v_job.keys), 0) LOOP
                IF coalesce((v_room ->> v_job.keys[i])::integer, v_job.fresh[i]) <= 0 THEN
                    v_ok := false;
                    EXIT;
                END IF;
            END LOOP;
            CONTINUE WHEN NOT v_ok;
            FOR i IN 1 .. coalesce(cardinality(v_job.keys), 0) LOOP
                v_room := v_room || jsonb_build_object(
                    v_job.keys[i], coalesce((v_room ->> v_job.keys[i])::integer, v_job.fresh[i]) - 1);
            END LOOP;
            v_ids := v_ids || v_job.id;
            v_of := v_of || v_job.tenant_id;
            v_taken := v_taken || v_job.keys;
            v_progress := true;
        END LOOP;
        -- A tenant that had fewer jobs with room than its share has no more.
        SELECT v_done || coalesce(array_agg(a.key), '{}'),
               v_progress OR count(*) > 0
          INTO v_done, v_progress
          FROM jsonb_each_text(v_allot) a
         WHERE coalesce((v_fetched ->> a.key)::integer, 0) < a.value::integer;
        EXIT WHEN cardinality(v_ids) >= p_limit OR NOT v_progress OR v_round >= 16;
    END LOOP;

    IF cardinality(v_ids) = 0 THEN
        RETURN;
    END IF;

    -- 4.
    RETURN QUERY
    WITH picks AS (
        SELECT u.id, u.tenant_id, t.weight::double precision AS weight,
               greatest(coalesce(f.finish_tag, 0), v_clock)
                 + (row_number() OVER (PARTITION BY u.tenant_id ORDER BY u.ord) - 1)
                   / t.weight::double precision AS tag
          FROM unnest(v_ids, v_of) WITH ORDINALITY AS u (id, tenant_id, ord)
          JOIN tenants t ON t.id = u.tenant_id
          LEFT JOIN fair_share f ON f.queue = p_queue AND f.tenant_id = u.tenant_id
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
               updated_at = now(),
               limited = true
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
    ),
    rates AS (
        INSERT INTO limit_rates AS s (limit_id, key, tat)
        SELECT l.id, k.key,
               now() + interval '1 microsecond'
                       * ceil(k.c * l.rate_period_seconds::numeric / l.rate_count * 1000000)
          FROM (SELECT (x::jsonb ->> 0)::bigint AS limit_id, x::jsonb ->> 1 AS key,
                       count(*) AS c
                  FROM unnest(v_taken) x GROUP BY x) k
          JOIN queue_limits l ON l.id = k.limit_id AND l.rate_count IS NOT NULL
         ORDER BY l.id, k.key
        ON CONFLICT (limit_id, key) DO UPDATE SET tat = greatest(s.tat, now()) + (excluded.tat - now())
    )
    SELECT * FROM done;
END;
$$;
