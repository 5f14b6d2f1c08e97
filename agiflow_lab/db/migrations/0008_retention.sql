-- Retention: the purges walk finished jobs oldest first (their events, their submission keys) without
-- reading the jobs that are still queued or running. Partial, so it holds only finished jobs.
CREATE INDEX jobs_finished ON control.jobs (finished_at) WHERE state IN ('succeeded', 'failed', 'cancelled');
