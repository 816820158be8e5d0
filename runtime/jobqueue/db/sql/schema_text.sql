-- The catalogs behind schema_text.render: what migrations made in the
-- public schema, in a stable order, without the migrator's own tables.

-- name: enums
SELECT t.typname AS name, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
  FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
 WHERE t.typnamespace = 'public'::regnamespace
 GROUP BY t.typname
 ORDER BY t.typname;

-- name: tables
-- Partitioned tables with their key; not their partitions (the reaper
-- makes those by date, so no two databases have the same ones).
SELECT c.relname AS name, c.reloptions AS options,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_by
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
   AND NOT c.relispartition
   AND c.relname NOT IN ('schema_migrations', 'schema_functions')
 ORDER BY c.relname;

-- name: views
SELECT c.relname AS name, pg_get_viewdef(c.oid) AS definition
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'
 ORDER BY c.relname;

-- name: columns
SELECT c.relname AS table_name, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       a.attidentity::text AS identity, pg_get_expr(d.adbin, d.adrelid) AS default_value
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
   AND NOT c.relispartition
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum;

-- name: constraints
-- Not NOT NULL ones (catalogued from PostgreSQL 18 on): the columns say them.
SELECT c.conrelid::regclass::text AS table_name, c.conname AS name,
       pg_get_constraintdef(c.oid) AS definition
  FROM pg_constraint c
 WHERE c.connamespace = 'public'::regnamespace AND c.conrelid <> 0 AND c.contype <> 'n'
   AND c.conrelid::regclass::text NOT IN ('schema_migrations', 'schema_functions')
 ORDER BY 1, position(c.contype::text IN 'pufcx'), c.conname;

-- name: indexes
-- Not those a constraint made: the constraint says them.
SELECT t.relname AS table_name,
       -- a partitioned table's index reads ON ONLY: built as written here it
       -- covers every partition too (migration 14)
       replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') AS definition
  FROM pg_index i
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_class x ON x.oid = i.indexrelid
 WHERE t.relnamespace = 'public'::regnamespace AND NOT t.relispartition
   AND t.relname NOT IN ('schema_migrations', 'schema_functions')
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
 ORDER BY t.relname, x.relname;

-- name: functions
SELECT p.proname AS name, pg_get_function_identity_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
 ORDER BY p.proname, 2;

-- name: triggers
SELECT pg_get_triggerdef(t.oid) AS definition
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
 ORDER BY c.relname, t.tgname;
