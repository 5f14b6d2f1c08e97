-- Evaluation runs (control) and their per-item results (analytics).
-- A run pins everything it used (prompt version, dataset version, connection, parameters, evaluators)
-- so it can be re-read and compared long after labels have moved.
CREATE TABLE control.eval_runs (
    id               uuid PRIMARY KEY,
    project_id       bigint NOT NULL REFERENCES control.projects(id),
    name             text NOT NULL,
    prompt_name      text NOT NULL,
    prompt_version   integer NOT NULL,
    prompt_ref       text NOT NULL,            -- what the submitter asked for: "label:production" / "version:3"
    connection_name  text NOT NULL,
    connection_kind  text NOT NULL,
    model            text NOT NULL,
    params           jsonb NOT NULL DEFAULT '{}',
    dataset_id       bigint NOT NULL REFERENCES control.datasets(id),
    dataset_name     text NOT NULL,
    dataset_version  integer NOT NULL,
    items_total      integer NOT NULL,
    evaluators       jsonb NOT NULL,
    concurrency      integer NOT NULL,
    max_retries      integer NOT NULL,
    request_timeout  double precision NOT NULL,
    job_id           uuid NOT NULL REFERENCES control.jobs(id),
    aggregates       jsonb,                    -- kept once the run is final (results no longer change) ...
    aggregates_of    timestamptz,              -- ... for the job's finish at that time (a job retry invalidates them)
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX eval_runs_by_project ON control.eval_runs (project_id, created_at DESC, id DESC);
CREATE INDEX eval_runs_by_job ON control.eval_runs (job_id);

-- One row per (run, item), written by the evaluation engine as results arrive. No foreign keys into
-- control: analytics may move to another store later.
CREATE TABLE analytics.eval_results (
    run_id      uuid NOT NULL,
    item_id     text NOT NULL,
    ordinal     bigint NOT NULL,
    input       jsonb NOT NULL,
    expected    jsonb,
    rendered    jsonb,                       -- the messages sent (or null when rendering failed)
    output      text,
    error       text,                        -- the model call or rendering failed for this item
    latency_ms  double precision,
    tokens_in   integer,
    tokens_out  integer,
    cost        double precision,            -- null: unpriced model or unknown tokens
    attempts    integer NOT NULL DEFAULT 0,
    scores      jsonb NOT NULL DEFAULT '{}', -- evaluator name → {score, passed, explanation, error}
    score       double precision,            -- mean of the evaluators' scores (null if none scored)
    passed      boolean NOT NULL,            -- every evaluator passed and the model call succeeded
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, item_id)
);
CREATE INDEX eval_results_by_ordinal ON analytics.eval_results (run_id, ordinal);
