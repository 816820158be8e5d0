-- name: upsert
INSERT INTO tenants (id, enabled, max_concurrent, rate_per_minute, rate_burst, weight, max_queued)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO UPDATE
   SET enabled = excluded.enabled, max_concurrent = excluded.max_concurrent,
       rate_per_minute = excluded.rate_per_minute, rate_burst = excluded.rate_burst,
       weight = excluded.weight, max_queued = excluded.max_queued, updated_at = now()
RETURNING *;

-- name: create
INSERT INTO tenants (id, enabled, max_concurrent, rate_per_minute, rate_burst, weight, max_queued)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO NOTHING
RETURNING *;

-- name: update
UPDATE tenants
   SET enabled = coalesce($2, enabled),
       max_concurrent = coalesce($3, max_concurrent),
       rate_per_minute = coalesce($4, rate_per_minute),
       rate_burst = coalesce($5, rate_burst),
       weight = coalesce($6, weight),
       max_queued = coalesce($7, max_queued),
       updated_at = now()
 WHERE id = $1
RETURNING *;

-- name: get
SELECT * FROM tenants WHERE id = $1;

-- name: list
SELECT * FROM tenants ORDER BY id;

-- name: add_api_key
INSERT INTO api_keys (tenant_id, name, key_hash) VALUES ($1, $2, $3) RETURNING id;

-- name: api_key_hashes
-- The tenant's live key hashes, with the tenant's enabled flag.
SELECT t.enabled, k.key_hash
  FROM tenants t LEFT JOIN api_keys k ON k.tenant_id = t.id AND k.revoked_at IS NULL
 WHERE t.id = $1;

-- name: revoke_api_keys
UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL
RETURNING id;

-- name: ensure_api_key
-- Make a key hash live for the tenant: insert it, or revive it if it was
-- revoked. A hash that belongs to another tenant is left alone. Returns the
-- tenant that owns the hash, so the caller can tell the two apart.
WITH ins AS (
    INSERT INTO api_keys (tenant_id, name, key_hash) VALUES ($1, $2, $3)
    ON CONFLICT (key_hash) DO UPDATE SET revoked_at = NULL, name = excluded.name
     WHERE api_keys.tenant_id = excluded.tenant_id
       AND (api_keys.revoked_at IS NOT NULL OR api_keys.name <> excluded.name)
    RETURNING tenant_id
)
SELECT tenant_id FROM ins
UNION ALL
SELECT tenant_id FROM api_keys WHERE key_hash = $3
LIMIT 1;

-- name: revoke_other_api_keys
-- Rotation: revoke the tenant's live keys of this name except the current one.
UPDATE api_keys SET revoked_at = now()
 WHERE tenant_id = $1 AND name = $2 AND key_hash <> $3 AND revoked_at IS NULL
RETURNING id;
