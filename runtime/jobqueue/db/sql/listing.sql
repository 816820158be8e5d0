-- Listing jobs newest first, in pages, at any depth of history.
--
-- One statement per driving filter, so each has an index whose prefix is
-- (tenant_id, that column) and whose rest is the listing order
-- (created_at DESC, seq DESC): the page is read from the index in order,
-- never sorted, and a deep page starts at its cursor instead of skipping
-- earlier rows. The driving filter is the first of status, queue, type
-- given (listing.choose); the others filter the rows the index returns.
-- The statements are one query (`page_all`, `count_all`) and variants of
-- it in which the driving filter is a plain equality. Not one statement
-- with every filter optional: its generic plan (prepared statements reuse
-- one after five runs) cannot match `($2 IS NULL OR status = $2)` to an
-- index, so it would read the tenant's whole history newest first and
-- filter it, and a rare status (dlq) would cost a scan of most of it.
-- Absent bounds are NULL and become +-infinity by coalesce, which keeps
-- them index conditions even in a generic plan.
--
-- Rows come from jobs_all: the hot table and the history's day partitions
-- (migration 14), each with these indexes, merged in order.
--
-- The outer loop over tenants serves the admin (no tenant, $1 NULL): one
-- ordered index read per tenant, merged; a tenant's own view reads one.
--
-- Parameters, the same for every page query: $1 tenant or NULL, $2 status,
-- $3 queue, $4 type, $5 created at or after, $6 and $7 the upper bound
-- (created_at, seq), exclusive: the cursor (the last row already seen) or
-- created_before, whichever is lower, in one row comparison, since the
-- index scan starts at the one upper bound it can use and would read
-- from the top down to the cursor if a second one sat beside it; $8 rows,
-- $9 rows to skip (offset paging, kept for old clients).

-- name: page_all
SELECT j.*
  FROM tenants t
 CROSS JOIN LATERAL (
       SELECT * FROM jobs_all j
        WHERE j.tenant_id = t.id
          AND ($2::job_status IS NULL OR j.status = $2)
          AND ($3::text IS NULL OR j.queue = $3)
          AND ($4::text IS NULL OR j.type = $4)
          AND j.created_at >= coalesce($5::timestamptz, '-infinity')
          AND (j.created_at, j.seq) < (coalesce($6::timestamptz, 'infinity'),
                                       coalesce($7::bigint, 9223372036854775807))
        ORDER BY j.created_at DESC, j.seq DESC
        LIMIT $8::bigint + $9::bigint) j
 WHERE ($1::text IS NULL OR t.id = $1)
 ORDER BY j.created_at DESC, j.seq DESC
 LIMIT $8 OFFSET $9;

-- name: page_by_status
-- variant of page_all: ($2::job_status IS NULL OR j.status = $2) -> j.status = $2

-- name: page_by_queue
-- variant of page_all: ($3::text IS NULL OR j.queue = $3) -> j.queue = $3

-- name: page_by_type
-- variant of page_all: ($4::text IS NULL OR j.type = $4) -> j.type = $4

-- Capped counts: exact up to $7 matches, and "at least $7" past it, so a
-- count costs at most $7 index entries however long the history is.
-- Parameters $1 to $6 as above; the cursor does not change the total.

-- name: count_all
SELECT count(*) AS n FROM (
    SELECT 1
      FROM tenants t
     CROSS JOIN LATERAL (
           SELECT 1 FROM jobs_all j
            WHERE j.tenant_id = t.id
              AND ($2::job_status IS NULL OR j.status = $2)
              AND ($3::text IS NULL OR j.queue = $3)
              AND ($4::text IS NULL OR j.type = $4)
              AND j.created_at >= coalesce($5::timestamptz, '-infinity')
              AND j.created_at < coalesce($6::timestamptz, 'infinity')
            LIMIT $7::bigint) j
     WHERE ($1::text IS NULL OR t.id = $1)
     LIMIT $7) c;

-- name: count_by_status
-- variant of count_all: ($2::job_status IS NULL OR j.status = $2) -> j.status = $2

-- name: count_by_queue
-- variant of count_all: ($3::text IS NULL OR j.queue = $3) -> j.queue = $3

-- name: count_by_type
-- variant of count_all: ($4::text IS NULL OR j.type = $4) -> j.type = $4
