-- jobqueue schema, version 13: execution limits (docs/design.md, invariant 14)
-- and priority classes across tenants (invariant 15).
--
-- A queue may have limits, each on one key: the whole queue, the tenant,
-- or the text at a JSON path of the payload ('' where there is none). A
-- limit holds a rate (rate_count per rate_period_seconds, plus rate_burst
-- jobs a quiet key may start at once; GCRA on the database clock, as the
-- API's limiter), a cap on the key's active jobs (leased or running), or
-- both. They are enforced inside the lease, so they hold across every
-- worker, and a key at its limit only has its own jobs skipped.
--
-- - queues.limited says whether a queue has limits. jobqueue_lease reads it
--   with the clock it already reads and hands a limited queue to
--   jobqueue_lease_limited: a queue without limits pays one column.
-- - Leasers of one limited queue take turns on a transaction-scoped
--   advisory lock on the queue (PgBouncer-safe). Writers of its limits
--   take it too, so a lease sees one set of limits throughout, and each
--   lease reads the keys' state after the lock: exact under any number of
--   workers. Lock order: the queue, then tenant_taken rows (as every
--   other leaser), so no deadlock.
-- - A key's rate state is a row of limit_rates (its theoretical arrival
--   time, tat). A lease may start c more jobs of the key while
--   max(tat, now) + c * T <= now + (burst + 1) * T, T = period / count,
--   and moves tat by c * T rounded up to the microsecond. Then every
--   half-open window of one period holds at most count + burst starts of
--   the key (started_at, or leased_at for a prefetch): whatever order the
--   leases' now() come in, tat grows by T per job, so the jobs started in
--   [a, a + period) push tat past a + n * T while the last of them saw
--   tat <= its now + (burst + 1) * T < a + period + (burst + 1) * T.
-- - A key's active jobs are counted from the jobs themselves: a limited
--   queue's lease marks its jobs limited, and only active marked jobs
--   enter jobs_limited_active, so queues without limits write nothing to
--   it. The first limit of a queue marks the queue's jobs active then.
--
-- Priority between tenants: version 6 ordered only a tenant's own jobs by
-- priority and let the fair share alone pick tenants, so one tenant's low
-- job went before another's critical one. Now a ready job has a class
-- (jobqueue_job_class: its priority, raised one per minute of waiting, at
-- most critical); leases serve classes in order and the fair share within
-- one. With several candidates the slots are shared out over the classes
-- and tags of the tenants' first ready jobs, read from the ready index (it
-- counted the same entries before); one candidate still reads nothing.

ALTER TABLE queues ADD COLUMN limited boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN limited boolean;

CREATE INDEX jobs_limited_active ON jobs (queue)
    WHERE limited AND status IN ('leased', 'running');

-- owner: NULL through the API, else the declaring JobQueue
-- ('namespace/name'); only the operator changes those. fresh: what a key
-- without state may take (a full burst, or the cap).
CREATE TABLE queue_limits (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue               text NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    name                text NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    per                 text NOT NULL CHECK (per IN ('queue', 'tenant', 'data')),
    path                text[] CHECK (cardinality(path) BETWEEN 1 AND 16),
    rate_count          integer CHECK (rate_count BETWEEN 1 AND 1000000),
    rate_period_seconds double precision
                        CHECK (rate_period_seconds >= 0.001 AND rate_period_seconds <= 86400),
    rate_burst          integer NOT NULL DEFAULT 0 CHECK (rate_burst BETWEEN 0 AND 1000000),
    max_concurrent      integer CHECK (max_concurrent BETWEEN 1 AND 1000000),
    fresh               integer GENERATED ALWAYS AS (
                            least(max_concurrent,
                                  CASE WHEN rate_count IS NOT NULL THEN rate_burst + 1 END))
                        STORED,
    owner               text CHECK (length(owner) BETWEEN 1 AND 317),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT queue_limits_name UNIQUE (queue, name),
    CONSTRAINT queue_limits_path CHECK ((per = 'data') = (path IS NOT NULL)),
    CONSTRAINT queue_limits_rate CHECK ((rate_count IS NULL) = (rate_period_seconds IS NULL)),
    CONSTRAINT queue_limits_some CHECK (rate_count IS NOT NULL OR max_concurrent IS NOT NULL)
);
CREATE INDEX queue_limits_owner ON queue_limits (owner) WHERE owner IS NOT NULL;

CREATE TABLE limit_rates (
    limit_id bigint NOT NULL REFERENCES queue_limits (id) ON DELETE CASCADE,
    key      text NOT NULL,
    tat      timestamptz NOT NULL,
    PRIMARY KEY (limit_id, key)
) WITH (fillfactor = 50);

-- A job's key under a limit, as the text both the room map and limit_rates
-- use: [limit id, key].
CREATE FUNCTION jobqueue_limit_key(
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
CREATE FUNCTION jobqueue_limit_room(p_queue text) RETURNS jsonb
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
CREATE FUNCTION jobqueue_limit_keys(p_queue text, p_tenant text, p_payload jsonb,
                                    OUT keys text[], OUT fresh integer[])
LANGUAGE sql STABLE AS $$
    SELECT array_agg(jobqueue_limit_key(l.id, l.per, l.path, p_tenant, p_payload) ORDER BY l.id),
           array_agg(l.fresh ORDER BY l.id)
      FROM queue_limits l WHERE l.queue = p_queue
$$;

-- Whether every key of the job may take one more, by the room map.
CREATE FUNCTION jobqueue_limits_allow(p_queue text, p_room jsonb, p_tenant text, p_payload jsonb)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM queue_limits l
         WHERE l.queue = p_queue
           AND coalesce((p_room ->> jobqueue_limit_key(l.id, l.per, l.path, p_tenant, p_payload))
                          ::integer, l.fresh) <= 0)
$$;

-- A ready job's class between tenants (invariant 15): its priority (0 low
-- .. 3 critical), one higher for each minute it has waited ready since
-- scheduled_at, at most critical. Tenants are served class by class, and
-- by weight within one, so a tenant that marks everything critical delays
-- the others' jobs by three minutes at most before they compete with it
-- as equals.
CREATE FUNCTION jobqueue_job_class(p_priority smallint, p_scheduled_at timestamptz)
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT least(3, p_priority + CASE WHEN p_scheduled_at <= now() - interval '3 minutes' THEN 3
                                      WHEN p_scheduled_at <= now() - interval '2 minutes' THEN 2
                                      WHEN p_scheduled_at <= now() - interval '1 minute' THEN 1
                                      ELSE 0 END)
$$;

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
CREATE FUNCTION jobqueue_lease_limited(
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
    SELECT array_agg(c.id ORDER BY c.id) INTO v_tenants
      FROM (SELECT e.id
              FROM (WITH RECURSIVE queued (id) AS (
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
             CROSS JOIN LATERAL (
                   SELECT (SELECT jobqueue_job_class(j.priority, j.scheduled_at) FROM jobs j
                            WHERE j.tenant_id = e.id AND j.queue = p_queue
                              AND j.status = 'queued' AND j.scheduled_at <= now()
                              AND jobqueue_limits_allow(p_queue, v_room, j.tenant_id, j.payload)
                            ORDER BY j.priority DESC, j.scheduled_at, j.seq
                            LIMIT 1) AS cls) h
             WHERE e.enabled
               AND e.max_concurrent > tk.n - fr.n
               AND h.cls IS NOT NULL
             ORDER BY h.cls DESC,
                      greatest(coalesce((SELECT f.finish_tag FROM fair_share f
                                          WHERE f.queue = p_queue
                                            AND f.tenant_id = e.id), 0),
                               v_clock),
                      e.id
             LIMIT p_limit) c;
    IF v_tenants IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM tenant_taken tk WHERE tk.tenant_id = ANY (v_tenants)
      ORDER BY tk.tenant_id FOR UPDATE;

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

-- Create or replace one of a queue's limits, under the queue's lease lock
-- (a lease in flight finishes with the limits it began with). No row when
-- the name belongs to another owner. The queue's first limit marks its
-- active jobs, so its caps count them.
CREATE FUNCTION jobqueue_limit_put(
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
CREATE FUNCTION jobqueue_limit_delete(p_queue text, p_name text, p_owner text) RETURNS boolean
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

-- Version 6's lease, with priority classes across tenants (invariant 15),
-- handing queues with limits to jobqueue_lease_limited.
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

    -- 1. Candidates, by the class of the job each would run next.
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
