-- Schedules: a job or evaluation-run submission fired on a cron expression (in a time zone) or an interval.
-- Exactly one firing per tick: a firing row is unique per (schedule, manual, tick) and is written in the same
-- transaction as the job it starts (whose idempotency key is schedule:<id>:<tick>), so two replicas that
-- both try a tick write one firing and one job between them, whoever holds the scheduler lock.
CREATE TABLE control.schedules (
    id                    uuid PRIMARY KEY,
    project_id            bigint NOT NULL REFERENCES control.projects(id),
    name                  text NOT NULL,
    description           text NOT NULL DEFAULT '',
    cron                  text,
    timezone              text NOT NULL DEFAULT 'UTC',
    interval_seconds      integer CHECK (interval_seconds > 0),
    start_at              timestamptz,
    anchor                timestamptz NOT NULL,   -- no tick before it; an interval's ticks are anchor + k * interval
    target                text NOT NULL CHECK (target IN ('job', 'eval')),
    body                  jsonb NOT NULL,         -- the job or run submission, without its idempotency key
    input_notebook        jsonb,                  -- a contents: notebook, copied when the schedule was saved
    missed                text NOT NULL CHECK (missed IN ('skip', 'run_once', 'catch_up')),
    max_catch_up          integer NOT NULL CHECK (max_catch_up BETWEEN 1 AND 100),
    misfire_grace_seconds integer NOT NULL CHECK (misfire_grace_seconds >= 0),
    overlap               text NOT NULL CHECK (overlap IN ('allow', 'skip', 'queue')),
    paused                boolean NOT NULL DEFAULT false,
    next_fire_at          timestamptz,            -- the next tick to handle; NULL while paused
    missed_ticks          bigint NOT NULL DEFAULT 0,
    created_by            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((cron IS NULL) <> (interval_seconds IS NULL)),
    UNIQUE (project_id, name)
);
CREATE INDEX schedules_due ON control.schedules (next_fire_at) WHERE NOT paused;
CREATE INDEX schedules_by_project ON control.schedules (project_id, created_at DESC, id DESC);

CREATE TABLE control.schedule_firings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_id uuid NOT NULL REFERENCES control.schedules(id) ON DELETE CASCADE,
    project_id  bigint NOT NULL REFERENCES control.projects(id),
    tick        timestamptz NOT NULL,
    manual      boolean NOT NULL DEFAULT false,
    outcome     text NOT NULL CHECK (outcome IN ('started', 'skipped', 'queued', 'failed')),
    reason      text,
    job_id      uuid REFERENCES control.jobs(id),
    run_id      uuid,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    UNIQUE (schedule_id, manual, tick)
);
CREATE INDEX schedule_firings_by_schedule ON control.schedule_firings (schedule_id, id DESC);
CREATE INDEX schedule_firings_queued ON control.schedule_firings (schedule_id, tick) WHERE outcome = 'queued';
