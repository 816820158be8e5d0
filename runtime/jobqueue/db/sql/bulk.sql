-- Bulk retry and cancel of a filtered view, a bounded batch per call: this
-- picks the batch; jobs.sql's `retry` and `cancel` change it, in the same
-- transaction (bulk.py), so the transitions are written once.

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
