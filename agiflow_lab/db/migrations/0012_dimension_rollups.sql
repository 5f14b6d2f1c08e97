-- Metric rollups per dimension, by minute and by hour, instead of one minute row per combination of
-- (model, span name, prompt, user) (0009_traces.sql's span_rollups_minute, dropped here).
--
-- Why: the metrics API groups by one dimension at a time, but a row per combination barely compresses
-- with real data: 1M spans of an app with 50 users made 977,676 minute rows (and 389,002 hour rows in a
-- first hour table), so a 30-day chart merged hundreds of thousands of latency histograms (1.5-1.9 s
-- measured by bench/ingest.py --query) and the loader's upsert wrote almost a row per span. Here every
-- span adds to one row per dimension (its model, its span name, its prompt and version, its user; '' and
-- 0 when absent) at each width: rows grow with the number of distinct values, not their combinations. A
-- chart without grouping reads the model rows (every span has exactly one).
--
-- width: 1 (minute rows: `at` is the minute) or 60 (hour rows: `at` is the hour, UTC). Minute charts read
-- minute rows; hour and day charts read hour rows, and minute rows only at a range's ragged edges.
-- dim: 0 model, 1 span name, 2 prompt (value = prompt name, version = its version), 3 user.
CREATE TABLE analytics.span_rollups (
    project_id          bigint NOT NULL,
    width               smallint NOT NULL CHECK (width IN (1, 60)),
    at                  timestamptz NOT NULL,
    dim                 smallint NOT NULL CHECK (dim BETWEEN 0 AND 3),
    value               text NOT NULL,
    version             integer NOT NULL,
    span_count          bigint NOT NULL,
    error_count         bigint NOT NULL,
    tokens_in           bigint NOT NULL,
    tokens_out          bigint NOT NULL,
    cost_usd            double precision NOT NULL,
    cost_unpriced_count bigint NOT NULL,
    latency_hist        integer[] NOT NULL,
    PRIMARY KEY (project_id, width, dim, at, value, version)
) WITH (fillfactor = 80);

INSERT INTO analytics.span_rollups
SELECT r.project_id, w.width,
       CASE WHEN w.width = 1 THEN r.minute
            ELSE date_trunc('hour', r.minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END,
       d.dim, d.value, d.version, sum(r.span_count), sum(r.error_count), sum(r.tokens_in), sum(r.tokens_out),
       sum(r.cost_usd), sum(r.cost_unpriced_count), analytics.histogram_sum(r.latency_hist)
  FROM analytics.span_rollups_minute AS r
 CROSS JOIN (VALUES (1), (60)) AS w(width)
 CROSS JOIN LATERAL (VALUES (0, r.model, 0), (1, r.span_name, 0), (2, r.prompt_name, r.prompt_version),
                            (3, r.user_id, 0)) AS d(dim, value, version)
 GROUP BY 1, 2, 3, 4, 5, 6;

DROP TABLE analytics.span_rollups_minute;
