-- name: has_migrations_table
SELECT to_regclass('schema_migrations') IS NOT NULL;

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_migrations;
