-- name: put
-- Create or replace a queue's limit (jobqueue_limit_put: under the queue's
-- lease lock). No row: another owner holds the name.
SELECT limit_id, created
  FROM jobqueue_limit_put($1, $2, $3, $4::text[], $5, $6, $7, $8, $9);

-- name: get
SELECT * FROM queue_limits WHERE queue = $1 AND name = $2;

-- name: list
-- $1 NULL: every queue's; $2 NULL: every owner's.
SELECT * FROM queue_limits
 WHERE ($1::text IS NULL OR queue = $1) AND ($2::text IS NULL OR owner = $2)
 ORDER BY queue, name;

-- name: delete
-- One of owner $3's limits (NULL: the API's); false when it has none of that name.
SELECT jobqueue_limit_delete($1, $2, $3);
