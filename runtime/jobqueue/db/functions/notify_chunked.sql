-- Send `p_items` (JSON texts) on `p_channel` as JSON arrays, as few
-- notifications as fit: each payload is shorter than PostgreSQL's 8,000-byte
-- limit, measured in bytes (octet_length), since a payload that reaches it
-- aborts the statement that sent it.
--
-- One set-based pass, no loop over the items: with size = an item's bytes
-- plus 2 (its ", " or bracket) and cap = 7997 - the largest size, an item
-- goes to chunk (running total of sizes up to it - 1) / cap. The running
-- totals at the ends of a chunk's items differ by less than cap, so a
-- chunk holds less than cap + its first item's size <= 7997 bytes. Never
-- by row count: row sizes vary sixfold with the names. An item of 8,000
-- bytes alone could not be sent at all; the jobs table's checks bound the
-- trigger's items to about 500 (63-character tenant id and queue name,
-- each queue character at most 6 bytes as a JSON escape).
CREATE OR REPLACE FUNCTION jobqueue_notify_chunked(p_channel text, p_items text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    FOR payload IN
        SELECT '[' || string_agg(c.item, ', ' ORDER BY c.n) || ']'
          FROM (SELECT s.item, s.n,
                       (sum(s.size) OVER (ORDER BY s.n) - 1)
                         / greatest(7997 - max(s.size) OVER (), 1) AS chunk
                  FROM (SELECT u.item, u.n, octet_length(u.item) + 2 AS size
                          FROM unnest(p_items) WITH ORDINALITY AS u (item, n)) s) c
         GROUP BY c.chunk
         ORDER BY c.chunk
    LOOP
        PERFORM pg_notify(p_channel, payload);
    END LOOP;
END;
$$;
