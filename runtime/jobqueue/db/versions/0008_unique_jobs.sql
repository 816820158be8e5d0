-- jobqueue schema, version 8: unique jobs.
--
-- A job submitted with `unique` carries a digest of its tenant-independent
-- identity (type, queue, selected payload keys: jobqueue.unique); another
-- submission with the same digest is a duplicate while a job with it is in
-- one of the given states and younger than the given period. Jobs without
-- `unique` leave the column NULL and never enter the index, so ordinary
-- submission pays nothing for it.
ALTER TABLE jobs ADD COLUMN unique_key text;
CREATE INDEX jobs_unique ON jobs (tenant_id, unique_key, created_at DESC)
    WHERE unique_key IS NOT NULL;

-- The check and the insert: jobqueue_submit_unique, db/functions/submit_unique.sql.
