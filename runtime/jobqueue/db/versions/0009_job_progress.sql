-- jobqueue schema, version 9: a running job's progress.
--
-- A handler reports `ctx.progress(fraction, note)`; the worker writes the
-- latest report of each job it holds (fenced by the lease token) and the
-- statement notifies watchers. The values stay after the job finishes: the
-- last progress any attempt reported. Nullable columns without defaults
-- rewrite nothing, so this is instant on a busy jobs table; neither column
-- is indexed, so progress updates stay HOT.
ALTER TABLE jobs
    ADD COLUMN progress double precision CHECK (progress BETWEEN 0 AND 1),
    ADD COLUMN progress_note text CHECK (length(progress_note) <= 200);
