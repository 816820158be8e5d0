-- name: take
-- GCRA on the database clock, exact under any number of API replicas: the
-- decision is the ON CONFLICT ... WHERE, evaluated on the locked newest row.
-- Emission interval T = 60 / rate; a request of cost c is allowed while the
-- theoretical arrival time, advanced by c * T, stays within burst * T of now.
-- Retry-After is read from the statement's snapshot: advisory, not exact.
-- The statement commits without waiting for its WAL flush (synchronous_commit
-- off for its own transaction only): every request of a tenant updates this
-- one row, whose lock is held until commit, so a flush per request capped a
-- tenant at one request per disk flush (~230/s on one fsync'd disk). What a
-- database crash can lose is the last fraction of a second of spent budget:
-- a tenant may get that many requests more just after a crash, never a job.
WITH cfg AS (
    SELECT id, 60.0 / rate_per_minute AS t, rate_burst AS burst,
           set_config('synchronous_commit', 'off', true) AS async_commit
      FROM tenants WHERE id = $1
),
upd AS (
    INSERT INTO rate_limits AS r (tenant_id, tat)
    SELECT id, now() + make_interval(secs => t * $2) FROM cfg WHERE $2 <= burst
    ON CONFLICT (tenant_id) DO UPDATE
       SET tat = greatest(r.tat, now()) + (excluded.tat - now())
     WHERE greatest(r.tat, now()) + (excluded.tat - now()) - now()
           <= (SELECT make_interval(secs => t * burst) FROM cfg)
    RETURNING tat
)
SELECT EXISTS (SELECT 1 FROM upd) AS allowed,
       (SELECT extract(epoch FROM greatest(coalesce(r.tat, now()), now())
                                  + make_interval(secs => c.t * ($2 - c.burst)) - now())
          FROM cfg c LEFT JOIN rate_limits r ON r.tenant_id = c.id) AS retry_after;

-- name: auth_failure_room
-- Per budget (key, emission interval t seconds, burst): seconds until one
-- more failure fits, 0 when it fits now. Reads only; nothing is spent.
SELECT k.key,
       greatest(extract(epoch FROM greatest(coalesce(f.tat, now()), now())
                                   + make_interval(secs => k.t * (1 - k.burst)) - now()),
                0)::float8 AS wait
  FROM unnest($1::text[], $2::float8[], $3::int[]) AS k(key, t, burst)
  LEFT JOIN auth_failures f ON f.key = k.key;

-- name: auth_failure_charge
-- Spend `cost` failures of each budget (key, t, burst, cost), saturating at
-- a full burst: a budget is never more than burst * t in debt, so the wait
-- after the last failure is bounded whatever an attacker sends. Also
-- deletes up to 16 rows long since paid off (not ours: one statement must
-- not touch a row twice), so the table holds only the budgets in use.
WITH k AS (
    SELECT * FROM unnest($1::text[], $2::float8[], $3::int[], $4::int[]) AS k(key, t, burst, cost)
),
stale AS (
    DELETE FROM auth_failures
     WHERE key IN (SELECT key FROM auth_failures
                    WHERE tat < now() - interval '1 minute' AND key <> ALL ($1::text[])
                    ORDER BY tat LIMIT 16 FOR UPDATE SKIP LOCKED)
),
upd AS (
    INSERT INTO auth_failures AS f (key, tat)
    SELECT key, now() + make_interval(secs => t * least(cost, burst)) FROM k
    ON CONFLICT (key) DO UPDATE
       SET tat = least(greatest(f.tat, now()) + (excluded.tat - now()),
                       now() + (SELECT make_interval(secs => k.t * k.burst)
                                  FROM k WHERE k.key = f.key))
    RETURNING f.key, f.tat
)
SELECT upd.key,
       greatest(extract(epoch FROM upd.tat + make_interval(secs => k.t * (1 - k.burst)) - now()),
                0)::float8 AS wait
  FROM upd JOIN k USING (key);
