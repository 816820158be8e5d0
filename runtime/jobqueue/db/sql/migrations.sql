-- name: lock
-- Transaction-scoped, so it is PgBouncer-safe and freed on any exit.
SELECT pg_advisory_xact_lock(hashtext('jobqueue.migrate'));

-- name: ensure_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: applied
SELECT version FROM schema_migrations ORDER BY version;

-- name: record
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);

-- name: describe
-- A stable text description of the schema, to compare two databases.
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
       || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
  FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes
 WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint
 WHERE connamespace = 'public'::regnamespace AND conrelid <> 0
   AND conrelid::regclass::text <> 'schema_migrations'
UNION ALL
SELECT 'function ' || p.proname || ' ' || md5(pg_get_functiondef(p.oid))
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger ' || tgname || ' ' || pg_get_triggerdef(oid)
  FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'options ' || relname || ' ' || array_to_string(reloptions, ',')
  FROM pg_class WHERE relnamespace = 'public'::regnamespace AND reloptions IS NOT NULL
ORDER BY 1;
