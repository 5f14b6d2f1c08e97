-- Scores on traces and spans (agiflow_lab/traces/scores.py), and late updates to spans from agiflow-sdk.
--
-- Both live next to the spans in the analytics schema, keyed like them (project, bytea ids) and without
-- foreign keys: a score may name a trace the span writers have not stored yet (the SDK scores a call the
-- moment it returns; its spans are still on the bus).

-- One row per score given. A trace is named by its id or, for agiflow-sdk's report_score(alias), by the
-- alias its spans carry (agiflow.association.properties.trace_alias) until a read of that trace binds the
-- alias to the id (trace_id set, trace_alias kept).
CREATE TABLE analytics.scores (
    id           uuid PRIMARY KEY,
    project_id   bigint NOT NULL,
    trace_id     bytea,
    trace_alias  text,
    span_id      bytea,
    name         text NOT NULL,
    data_type    text NOT NULL CHECK (data_type IN ('numeric', 'categorical', 'boolean')),
    value_number double precision,                  -- numeric; boolean as 0/1 so means are pass rates
    value_text   text,                              -- categorical; 'true'/'false' for boolean
    source       text NOT NULL CHECK (source IN ('human', 'api', 'eval')),
    comment      text,
    author       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (trace_id IS NOT NULL OR trace_alias IS NOT NULL),
    CHECK (length(trace_id) = 16),
    CHECK (length(span_id) = 8)
);
-- A trace's scores (the detail, the list's score filter) and a project's newest scores.
CREATE INDEX scores_by_trace ON analytics.scores (project_id, trace_id, name) WHERE trace_id IS NOT NULL;
CREATE INDEX scores_unbound ON analytics.scores (project_id, trace_alias) WHERE trace_id IS NULL;
CREATE INDEX scores_by_time ON analytics.scores (project_id, created_at DESC, id DESC);

-- agiflow-sdk's update_span(id, body): a JSON object to lay over a span's attributes when it is read.
-- span_ref is the span id (16 lowercase hex) or the alias its span carries
-- (agiflow.association.properties.span_alias).
CREATE TABLE analytics.span_updates (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL,
    span_ref   text NOT NULL,
    body       jsonb NOT NULL,
    author     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX span_updates_by_ref ON analytics.span_updates (project_id, span_ref, id);
