-- Retention: the purges walk finished jobs oldest first and only those with something left to purge,
-- so a run costs what it deletes, not the whole history. Both indexes are partial for that reason.

-- When this job's events were last purged; NULL: not since it finished (a retry clears it again).
ALTER TABLE control.jobs ADD COLUMN events_purged_at timestamptz;

CREATE INDEX jobs_events_to_purge ON control.jobs (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled') AND events_purged_at IS NULL;
CREATE INDEX jobs_keys_to_forget ON control.jobs (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled') AND idempotency_key IS NOT NULL;
