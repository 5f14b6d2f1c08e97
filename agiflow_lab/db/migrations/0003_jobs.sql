-- Jobs: a notebook run with parameters, its event log (for live views and resume), its report.
CREATE TABLE control.jobs (
    id               uuid PRIMARY KEY,
    project_id       bigint NOT NULL REFERENCES control.projects(id),
    notebook         text NOT NULL,
    input_notebook   jsonb,
    parameters       jsonb NOT NULL DEFAULT '{}',
    state            text NOT NULL
                     CHECK (state IN ('queued', 'dispatched', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
    idempotency_key  text,
    submitted_by     text NOT NULL,
    worker_id        text,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 3,
    timeout_seconds  double precision NOT NULL,
    cells_done       integer NOT NULL DEFAULT 0,
    cells_total      integer,
    error            jsonb,
    result           jsonb,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    dispatched_at    timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, idempotency_key)
);
CREATE INDEX jobs_queued ON control.jobs (created_at) WHERE state = 'queued';
CREATE INDEX jobs_active ON control.jobs (project_id) WHERE state IN ('dispatched', 'running', 'retrying');
CREATE INDEX jobs_by_project ON control.jobs (project_id, created_at DESC, id DESC);

CREATE TABLE control.job_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     uuid NOT NULL REFERENCES control.jobs(id),
    project_id bigint NOT NULL REFERENCES control.projects(id),
    message_id text UNIQUE,
    attempt    integer NOT NULL DEFAULT 0,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_by_job ON control.job_events (job_id, id);
CREATE INDEX job_events_by_project ON control.job_events (project_id, id);

CREATE TABLE control.job_outputs (
    job_id     uuid PRIMARY KEY REFERENCES control.jobs(id),
    attempt    integer NOT NULL,
    notebook   jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE control.workers (
    id           text PRIMARY KEY,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    topics       text[] NOT NULL,
    concurrency  integer NOT NULL,
    running      integer NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);
