-- Job state changes, one notification per statement rather than per row
-- (NOTIFY takes a global lock at commit), chunked by jobqueue_notify_chunked:
-- on `jobqueue_ready`, the names of the queues that got queued jobs (for
-- idle workers); on `jobqueue_events`, while someone watches, a JSON array
-- of [job id, tenant id, status, queue] (for WebSocket watchers).
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

CREATE OR REPLACE TRIGGER jobs_changed_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_jobs_changed();
CREATE OR REPLACE TRIGGER jobs_changed_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_jobs_changed();
CREATE OR REPLACE TRIGGER jobs_changed_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_jobs_changed();
