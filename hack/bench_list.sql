-- Seeding for hack/bench_list.py: history made in SQL, not through the API.

-- name: seed
-- Rows $2 to $3 of a history of $4 jobs of tenant $1, oldest first, $5
-- seconds apart back from now: 98% succeeded, 1% dlq, 1% cancelled, over 4
-- queues and 10 types. Those of the last day ($6 = 'hot') go to jobs, the
-- older ones ($6 = 'history') to jobs_history, as the reaper's archive
-- window leaves them. The events trigger is switched off by the caller (a
-- million rows in one NOTIFY array would not fit in memory anyway).
INSERT INTO jobs (tenant_id, queue, type, payload, status, attempt, scheduled_at,
                  created_at, started_at, finished_at, updated_at, result)
SELECT $1, 'q' || (i % 4), 'type-' || (i % 10), jsonb_build_object('n', i),
       CASE WHEN i % 100 = 7 THEN 'dlq'::job_status
            WHEN i % 100 = 13 THEN 'cancelled'::job_status
            ELSE 'succeeded'::job_status END,
       1, t, t, t, t + interval '20 ms', t + interval '20 ms', '{"ok": true}'::jsonb
  FROM generate_series($2::bigint, $3::bigint) AS i,
       LATERAL (SELECT now() - make_interval(secs => ($4 - i) * $5::double precision) AS t) at
 WHERE $6::text = 'hot' AND t >= now() - interval '1 day';

-- name: seed_history
-- The same rows as `seed`, the part older than a day; seq numbered as
-- jobs' identity would have (history has no identity of its own).
INSERT INTO jobs_history (id, seq, tenant_id, queue, type, payload, status, priority,
                          attempt, max_attempts, timeout_seconds, scheduled_at, created_at,
                          started_at, finished_at, updated_at, errors, result)
SELECT gen_random_uuid(), nextval(pg_get_serial_sequence('jobs', 'seq')), $1,
       'q' || (i % 4), 'type-' || (i % 10), jsonb_build_object('n', i),
       CASE WHEN i % 100 = 7 THEN 'dlq'::job_status
            WHEN i % 100 = 13 THEN 'cancelled'::job_status
            ELSE 'succeeded'::job_status END,
       1, 1, 5, 300, t, t, t, t + interval '20 ms', t + interval '20 ms', '[]'::jsonb,
       '{"ok": true}'::jsonb
  FROM generate_series($2::bigint, $3::bigint) AS i,
       LATERAL (SELECT now() - make_interval(secs => ($4 - i) * $5::double precision) AS t) at
 WHERE $6::text = 'history' AND t < now() - interval '1 day';

-- name: partitions
-- History's day partitions for the $1 seconds the seeded history spans.
SELECT jobqueue_history_ensure(((now() - make_interval(secs => $1)) AT TIME ZONE 'UTC')::date,
                               (now() AT TIME ZONE 'UTC')::date + 2);

-- name: events_off
SELECT set_config('jobqueue.events', 'off', false);

-- name: row_at
-- The row `$2` rows from the newest of tenant $1 (optionally one status):
-- where a deep page starts.
SELECT created_at, seq FROM jobs_all
 WHERE tenant_id = $1 AND ($3::job_status IS NULL OR status = $3)
 ORDER BY created_at DESC, seq DESC OFFSET $2 LIMIT 1;

-- name: secondary_indexes
-- The indexes of jobs and jobs_history that no constraint owns, as
-- statements to drop and to build them: a bulk load then builds each once,
-- sorted, instead of inserting ten million entries into each one by one.
-- (A partitioned index's definition reads ON ONLY: built without ONLY, it
-- is built on every partition too.)
SELECT format('DROP INDEX %I', i.relname) AS drop_sql,
       replace(pg_get_indexdef(i.oid), ' ON ONLY ', ' ON ') AS create_sql
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
 WHERE x.indrelid IN ('jobs'::regclass, 'jobs_history'::regclass)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid);

-- name: bulk_session
-- Foreign-key and events triggers off for this session (superuser only),
-- and memory for sorting the index builds.
SELECT set_config('session_replication_role', 'replica', false),
       set_config('maintenance_work_mem', '512MB', false);
