-- jobqueue schema, version 17: how many fire times a schedule did not fire
-- (docs/design.md, invariant 13).
--
-- Version 14 records the latest one and why (last_skipped_at,
-- last_skip_reason: overlap, tenant_disabled, backlog_full). Such a fire
-- time is dropped, not retried (a retry would fire into the same full
-- backlog at every pass); the count shows in the API, the CLI and the
-- JobQueue's status how much a schedule has lost, not only that it did.
ALTER TABLE schedules ADD COLUMN skipped_fires bigint NOT NULL DEFAULT 0;
