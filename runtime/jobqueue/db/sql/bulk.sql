-- Bulk retry and cancel of a filtered view, a bounded batch per call: this
-- picks the batch; jobs.sql's `retry` and `cancel` change it, in the same
-- transaction (bulk.py), so the transitions are written once. Retry covers
-- history too (pick_archived, then history.sql's `retry_archived`); cancel
-- has nothing there to act on (history holds finished jobs only).

-- name: pick_matching
-- Lock up to $8 jobs in one of the states $7 that match listing's filters
-- ($1 tenant or NULL, $2 status, $3 queue, $4 type, $5 created at or
-- after, $6 created before), oldest first, skipping rows another
-- transaction holds (a worker acking one: waiting for it could deadlock
-- with its batch). Returns their ids and how many of the first $8 + 1
-- matching jobs there were, held or not: more than the batch means more
-- remain, without a second scan to find out.
WITH matching AS (
    SELECT j.id FROM jobs j
     WHERE ($1::text IS NULL OR j.tenant_id = $1)
       AND j.status = ANY ($7::job_status[])
       AND ($2::job_status IS NULL OR j.status = $2)
       AND ($3::text IS NULL OR j.queue = $3)
       AND ($4::text IS NULL OR j.type = $4)
       AND j.created_at >= coalesce($5::timestamptz, '-infinity')
       AND j.created_at < coalesce($6::timestamptz, 'infinity')
     ORDER BY j.created_at, j.seq
     LIMIT $8::bigint + 1
)
SELECT ARRAY(SELECT j.id FROM jobs j
              WHERE j.id IN (SELECT m.id FROM matching m)
                -- again, on the row as it is once locked
                AND j.status = ANY ($7::job_status[])
              ORDER BY j.created_at, j.seq
              LIMIT $8
                FOR UPDATE SKIP LOCKED) AS ids,
       (SELECT count(*) FROM matching) AS matching;

-- name: pick_archived
-- The same for dlq|cancelled jobs in history ($7 at most, oldest first):
-- their ids, locked, and how many of the first $7 + 1 match. One whose
-- idempotency key another job holds now is left out (moving it back would
-- fail the batch's insert): it can only be resubmitted.
WITH matching AS (
    SELECT h.id FROM jobs_history h
     WHERE ($1::text IS NULL OR h.tenant_id = $1)
       AND h.status IN ('dlq', 'cancelled')
       AND ($2::job_status IS NULL OR h.status = $2)
       AND ($3::text IS NULL OR h.queue = $3)
       AND ($4::text IS NULL OR h.type = $4)
       AND h.created_at >= coalesce($5::timestamptz, '-infinity')
       AND h.created_at < coalesce($6::timestamptz, 'infinity')
       AND NOT EXISTS (SELECT 1 FROM jobs k
                        WHERE k.tenant_id = h.tenant_id AND k.idempotency_key = h.idempotency_key)
     ORDER BY h.created_at, h.seq
     LIMIT $7::bigint + 1
)
SELECT ARRAY(SELECT h.id FROM jobs_history h
              WHERE h.id IN (SELECT m.id FROM matching m)
                AND h.status IN ('dlq', 'cancelled')
              ORDER BY h.created_at, h.seq
              LIMIT $7
                FOR UPDATE SKIP LOCKED) AS ids,
       (SELECT count(*) FROM matching) AS matching;
