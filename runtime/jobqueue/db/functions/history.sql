-- The history's day partitions (migration 14): made ahead and dropped
-- whole by the elected reaper (db/sql/history.sql). Every JobQueue has a
-- reaper of its own and they may share a database, so two may run these at
-- once: each tolerates the other having done it first.

-- Create the missing day partitions (UTC days) from p_from to p_to;
-- returns how many it created. Names are jobs_history_YYYYMMDD, which
-- jobqueue_history_drop reads back.
CREATE OR REPLACE FUNCTION jobqueue_history_ensure(p_from date, p_to date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    made integer := 0;
BEGIN
    FOR d IN SELECT g::date FROM generate_series(p_from, p_to, interval '1 day') g LOOP
        IF to_regclass('jobs_history_' || to_char(d, 'YYYYMMDD')) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF jobs_history FOR VALUES FROM (%L) TO (%L)',
                    'jobs_history_' || to_char(d, 'YYYYMMDD'),
                    d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
                made := made + 1;
            EXCEPTION WHEN duplicate_table OR unique_violation OR invalid_object_definition THEN
                -- Another reaper (each JobQueue has one) made it meanwhile.
                NULL;
            END;
        END IF;
    END LOOP;
    RETURN made;
END;
$$;

-- Drop the day partitions that end at or before p_before; returns their
-- names. Each drop locks jobs_history (never jobs) and gives up after
-- p_wait_ms behind a long read of history, to be tried again next pass,
-- so readers queue behind it for no longer than that.
CREATE OR REPLACE FUNCTION jobqueue_history_drop(p_before timestamptz, p_wait_ms integer)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part text;
BEGIN
    PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'jobs_history'::regclass
           AND c.relname ~ '^jobs_history_[0-9]{8}$'
           AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
               <= p_before
         ORDER BY c.relname
    LOOP
        BEGIN
            -- IF EXISTS: another reaper may have dropped it while we waited.
            EXECUTE format('DROP TABLE IF EXISTS %I', part);
            RETURN NEXT part;
        EXCEPTION WHEN lock_not_available THEN
            RETURN;
        END;
    END LOOP;
END;
$$;
