-- name: acquire_or_renew
-- Take the leadership if it is free or expired, or extend it if we hold it.
-- Returns the holder after the statement; the caller leads if that is itself.
WITH claim AS (
    INSERT INTO leaders AS l (name, holder, expires_at)
    VALUES ($1, $2, now() + make_interval(secs => $3))
    ON CONFLICT (name) DO UPDATE
       SET holder = excluded.holder,
           expires_at = excluded.expires_at,
           renewed_at = now(),
           acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE now() END,
           transitions = l.transitions + CASE WHEN l.holder = excluded.holder THEN 0 ELSE 1 END
     WHERE l.holder = excluded.holder OR l.expires_at < now()
    RETURNING holder, expires_at, transitions
)
SELECT holder, expires_at, transitions FROM claim
UNION ALL
SELECT holder, expires_at, transitions FROM leaders
 WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM claim);

-- name: release
UPDATE leaders SET expires_at = now() WHERE name = $1 AND holder = $2 RETURNING name;

-- name: get
SELECT holder, expires_at, transitions FROM leaders WHERE name = $1;
