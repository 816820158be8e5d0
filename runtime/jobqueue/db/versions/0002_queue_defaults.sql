-- jobqueue schema, version 2: per-queue defaults.
--
-- A job submitted without max_attempts takes its queue's default, resolved
-- once at insert (jobs.max_attempts stays NOT NULL), so changing a default
-- never changes jobs already queued. NULL means "no default: 5". The
-- operator writes it from a JobQueue's spec.maxAttempts.
--
-- Adding a nullable column without a default rewrites nothing, so this is
-- instant even on a busy queues table.
ALTER TABLE queues
    ADD COLUMN default_max_attempts integer
        CHECK (default_max_attempts BETWEEN 1 AND 1000);
