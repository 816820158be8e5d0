-- name: lock
-- Transaction-scoped, so it is PgBouncer-safe and freed on any exit.
SELECT pg_advisory_xact_lock(hashtext('jobqueue.migrate'));

-- name: ensure_tables
-- schema_functions keeps every (file, checksum) ever applied: the newest
-- per file is what the database holds; the older ones tell readiness that
-- a database has been migrated past an older release's functions.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schema_functions (
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, checksum)
);

-- name: applied
SELECT version FROM schema_migrations ORDER BY version;

-- name: record
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);

-- name: current_functions
SELECT DISTINCT ON (name) name, checksum
  FROM schema_functions
 ORDER BY name, applied_at DESC;

-- name: record_functions
INSERT INTO schema_functions (name, checksum) VALUES ($1, $2)
ON CONFLICT (name, checksum) DO UPDATE SET applied_at = now();

-- name: has_functions_table
SELECT to_regclass('schema_functions') IS NOT NULL;

-- name: count_applied_functions
SELECT count(*) FROM schema_functions
 WHERE (name, checksum) IN (SELECT * FROM unnest($1::text[], $2::text[]));

-- name: describe
-- A stable text description of the schema, to compare two databases.
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
       || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
  FROM information_schema.columns
 WHERE table_schema = 'public' AND table_name NOT IN ('schema_migrations', 'schema_functions')
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes
 WHERE schemaname = 'public' AND tablename NOT IN ('schema_migrations', 'schema_functions')
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint
 WHERE connamespace = 'public'::regnamespace AND conrelid <> 0
   AND conrelid::regclass::text NOT IN ('schema_migrations', 'schema_functions')
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
