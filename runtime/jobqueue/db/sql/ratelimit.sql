-- name: take
-- GCRA on the database clock, exact under any number of API replicas: the
-- decision is the ON CONFLICT ... WHERE, evaluated on the locked newest row.
-- Emission interval T = 60 / rate; a request of cost c is allowed while the
-- theoretical arrival time, advanced by c * T, stays within burst * T of now.
-- Retry-After is read from the statement's snapshot: advisory, not exact.
WITH cfg AS (
    SELECT id, 60.0 / rate_per_minute AS t, rate_burst AS burst
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
