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
CREATE OR REPLACE FUNCTION jobqueue_lease(
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
