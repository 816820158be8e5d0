-- name: configure
-- Set a queue's defaults, creating its row if need be. Writes only on a
-- difference: the operator calls this on every reconcile, and even an
-- upsert that changes nothing locks the row that leasers of the queue
-- serialise on. Returns a row only when something changed.
WITH cur AS (
    SELECT default_max_attempts FROM queues WHERE name = $1
)
INSERT INTO queues (name, default_max_attempts)
SELECT $1, $2::integer
 WHERE NOT EXISTS (
       SELECT 1 FROM cur WHERE cur.default_max_attempts IS NOT DISTINCT FROM $2::integer)
ON CONFLICT (name) DO UPDATE SET default_max_attempts = excluded.default_max_attempts
RETURNING true AS changed;

-- name: get
SELECT name, default_max_attempts FROM queues WHERE name = $1;
