-- Lease up to p_limit ready jobs of one queue for one worker, in one call,
-- as p_status: 'running' (the worker starts them now) or 'leased' (it
-- prefetches; `start` makes them running later).
--
-- 1. Choose the candidate tenants, without locks: enabled, with ready work
--    in this queue and a free slot (taken - freed < max_concurrent), found
--    from the ready index (tenants with nothing queued cost nothing), and
--    among those the p_limit whose next job has the highest class, then
--    the smallest start tags: no other tenant could win a slot this round.
-- 2. Lock their taken rows, in id order (no deadlock between leasers).
--    Only leasers of the same tenants wait here; a leaser of other tenants
--    goes on.
-- 3. In a new statement (READ COMMITTED: a fresh snapshot, after the
--    locks) read each candidate's counters, quota and tag again; its room
--    is max_concurrent - (taken - freed), exact since nobody else can add
--    to taken now.
-- 4. Serve the highest class first, and by start-time fair queueing
--    (weights) within a class: the k-th ready job of a tenant (priority,
--    then FIFO) has its class and the tag start + k / weight; the p_limit
--    best by (class, tag) share the slots out, read from the ready index
--    without locks. Then lock exactly each tenant's share of its jobs
--    (skipping rows another transaction holds). With one candidate the
--    share is simply min(room, p_limit): no classes or tags to compare.
-- 5. Write the jobs (the trigger adds them to taken), each tenant's finish
--    tag, and the queue's clock when its row is free.
--
-- Extension points: a new limit on what a tenant may take is one more
-- term in `room` (step 3) and, to keep candidates honest, in step 1.
-- Limits on keys other than the tenant (execution limits) live in
-- jobqueue_lease_limited, which only queues that have them pay for.
CREATE OR REPLACE FUNCTION jobqueue_lease(
    p_queue text, p_worker text, p_limit integer, p_lease_seconds double precision,
    p_status job_status DEFAULT 'running'
) RETURNS SETOF jobs
LANGUAGE plpgsql AS $$
DECLARE
    v_clock double precision;
    v_limited boolean;
    v_tenants text[];
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    IF p_status NOT IN ('leased', 'running') THEN
        RAISE EXCEPTION 'jobqueue_lease: p_status must be leased or running, not %', p_status;
    END IF;
    SELECT q.vclock, q.limited INTO v_clock, v_limited FROM queues q WHERE q.name = p_queue;
    IF NOT FOUND THEN
        INSERT INTO queues (name) VALUES (p_queue) ON CONFLICT DO NOTHING;
        v_clock := 0;
        v_limited := false;
    END IF;
    -- A queue with execution limits (invariant 14) is leased by its own
    -- function: a queue without limits pays one column read for them.
    IF v_limited THEN
        RETURN QUERY SELECT * FROM jobqueue_lease_limited(
            p_queue, p_worker, p_limit, p_lease_seconds, p_status);
        RETURN;
    END IF;

    -- 1.-2.
    v_tenants := jobqueue_lease_tenants(p_queue, p_limit, v_clock, NULL);
    IF v_tenants IS NULL THEN
        RETURN;
    END IF;

    -- 3.-5.
    RETURN QUERY
    WITH cand AS (
        SELECT t.id AS tenant_id,
               t.weight::double precision AS weight,
               greatest(coalesce(f.finish_tag, 0), v_clock) AS start_tag,
               least(t.max_concurrent - (tk.n - fr.n), p_limit) AS room
          FROM tenants t
          JOIN tenant_taken tk ON tk.tenant_id = t.id
          JOIN tenant_freed fr ON fr.tenant_id = t.id
          LEFT JOIN fair_share f ON f.queue = p_queue AND f.tenant_id = t.id
         -- enabled again: read after the lock, so a tenant disabled since
         -- it was chosen gets nothing this round.
         WHERE t.id = ANY (v_tenants) AND t.enabled
    ),
    slots AS (
        SELECT c.tenant_id, c.start_tag + k / c.weight AS tag, 0 AS cls
          FROM cand c
         CROSS JOIN LATERAL generate_series(0, c.room - 1) AS k
         WHERE cardinality(v_tenants) = 1
        UNION ALL
        SELECT c.tenant_id, c.start_tag + (r.k - 1) / c.weight, r.cls
          FROM cand c
         CROSS JOIN LATERAL (
               SELECT jobqueue_job_class(x.priority, x.scheduled_at) AS cls,
                      row_number() OVER (ORDER BY x.priority DESC, x.scheduled_at, x.seq) AS k
                 FROM (SELECT x.priority, x.scheduled_at, x.seq FROM jobs x
                        WHERE x.tenant_id = c.tenant_id AND x.queue = p_queue
                          AND x.status = 'queued' AND x.scheduled_at <= now()
                        ORDER BY x.priority DESC, x.scheduled_at, x.seq
                        LIMIT greatest(c.room, 0)) x) r
         WHERE cardinality(v_tenants) > 1
         ORDER BY cls DESC, tag, tenant_id
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
