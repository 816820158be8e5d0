-- name: now
SELECT now();

-- name: upsert
-- Create, or replace the template of, a tenant's schedule. next_fire_at is
-- kept when the expression and zone did not change (a re-sync by the
-- operator must not move it). Only the same owner may replace a schedule:
-- no row comes back otherwise. created tells a new row from a replaced one.
INSERT INTO schedules AS s (tenant_id, name, cron, timezone, queue, type, payload, priority,
                            max_attempts, overlap, missed, owner, next_fire_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13)
ON CONFLICT (tenant_id, name) DO UPDATE
   SET cron = excluded.cron, timezone = excluded.timezone, queue = excluded.queue,
       type = excluded.type, payload = excluded.payload, priority = excluded.priority,
       max_attempts = excluded.max_attempts, overlap = excluded.overlap,
       missed = excluded.missed,
       next_fire_at = CASE WHEN s.cron = excluded.cron AND s.timezone = excluded.timezone
                           THEN s.next_fire_at ELSE excluded.next_fire_at END,
       updated_at = now()
 WHERE s.owner IS NOT DISTINCT FROM excluded.owner
RETURNING s.*, (xmax = 0) AS created;

-- name: get
SELECT * FROM schedules WHERE tenant_id = $1 AND name = $2;

-- name: list
-- $1 NULL: every tenant's (admin); $2 NULL: every owner.
SELECT * FROM schedules
 WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR owner = $2)
 ORDER BY tenant_id, name;

-- name: delete
-- Only schedules of the given owner (NULL: made through the API or CLI).
DELETE FROM schedules
 WHERE tenant_id = $1 AND name = $2 AND owner IS NOT DISTINCT FROM $3
RETURNING id;

-- name: delete_undeclared
-- The owner's schedules that are not in $2 ('tenant/name' each).
DELETE FROM schedules
 WHERE owner = $1 AND tenant_id || '/' || name <> ALL ($2::text[])
RETURNING tenant_id, name;

-- name: due
-- Schedules whose next fire time has come, oldest first, with the database
-- clock the plan is made on (invariant 4).
SELECT s.*, now() AS db_now FROM schedules s
 WHERE s.next_fire_at <= now()
 ORDER BY s.next_fire_at, s.id
 LIMIT $1;

-- name: fire
-- One fire time of one schedule, in one statement: compare-and-set on
-- next_fire_at ($2, what the plan was made from), so a second reaper with
-- the same plan changes nothing; move next_fire_at to $4. $3 NULL: only
-- advance. Otherwise insert the job keyed by (schedule, fire time), unless
-- a door a submission meets is shut (skip says which, and the schedule
-- records it): overlap (policy skip and the last fire's job unfinished),
-- tenant_disabled, or backlog_full (the tenant's queued jobs have reached
-- max_queued, counted as the API counts them, up to the limit). The count
-- is exact in the statement's snapshot; concurrent API submits may pass
-- the cap by their number, as they may among themselves. No row: the
-- schedule moved on (or was deleted) meanwhile.
WITH s AS (
    SELECT * FROM schedules WHERE id = $1 AND next_fire_at = $2 FOR UPDATE
),
verdict AS (
    SELECT CASE
             WHEN $3::timestamptz IS NULL THEN NULL
             WHEN s.overlap = 'skip' AND EXISTS (
                 SELECT 1 FROM jobs j
                  WHERE j.id = s.last_job_id AND j.status IN ('queued', 'leased', 'running'))
               THEN 'overlap'
             WHEN NOT t.enabled THEN 'tenant_disabled'
             WHEN (SELECT count(*) FROM (
                       SELECT 1 FROM jobs j
                        WHERE j.tenant_id = s.tenant_id AND j.status = 'queued'
                        LIMIT t.max_queued) q) >= t.max_queued
               THEN 'backlog_full'
           END AS skip
      FROM s JOIN tenants t ON t.id = s.tenant_id
),
ins AS (
    INSERT INTO jobs (tenant_id, queue, type, payload, priority, max_attempts,
                      idempotency_key)
    SELECT s.tenant_id, s.queue, s.type, s.payload, s.priority,
           coalesce(s.max_attempts,
                    (SELECT q.default_max_attempts FROM queues q WHERE q.name = s.queue), 5),
           $5::text
      FROM s, verdict v
     WHERE $3::timestamptz IS NOT NULL AND v.skip IS NULL
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id
)
UPDATE schedules u
   SET next_fire_at = $4,
       last_fire_at = CASE WHEN EXISTS (SELECT 1 FROM ins) THEN $3 ELSE u.last_fire_at END,
       last_job_id = coalesce((SELECT id FROM ins), u.last_job_id),
       last_skipped_at = CASE WHEN v.skip IS NULL THEN u.last_skipped_at ELSE $3 END,
       last_skip_reason = coalesce(v.skip, u.last_skip_reason),
       skipped_fires = u.skipped_fires + (v.skip IS NOT NULL)::int
  FROM s, verdict v
 WHERE u.id = s.id
RETURNING (SELECT id FROM ins) AS job_id, v.skip;
