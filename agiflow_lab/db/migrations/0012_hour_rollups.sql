-- Hour rollups beside the minute ones (0009_traces.sql), kept by the same loader upsert.
--
-- The metrics API merges a latency histogram per rollup row it reads (analytics.histogram_sum, ~8 µs a
-- row): 30 days of minute rows with ten dimension values a minute are 432,000 rows, measured at 2.3-6.5 s
-- per chart on the 2-core test machine. Hour and day charts read these rows instead: 60 times fewer, the
-- same 30 days in a few tens of milliseconds. Minute charts still read the minute rows (at most 10,000
-- buckets a request, about a week). Same columns, same key, same additive upsert; `hour` is the start of
-- the hour (UTC).
CREATE TABLE analytics.span_rollups_hour (
    project_id          bigint NOT NULL,
    hour                timestamptz NOT NULL,
    model               text NOT NULL,
    span_name           text NOT NULL,
    prompt_name         text NOT NULL,
    prompt_version      integer NOT NULL,
    user_id             text NOT NULL,
    span_count          bigint NOT NULL,
    error_count         bigint NOT NULL,
    tokens_in           bigint NOT NULL,
    tokens_out          bigint NOT NULL,
    cost_usd            double precision NOT NULL,
    cost_unpriced_count bigint NOT NULL,
    latency_hist        integer[] NOT NULL,
    PRIMARY KEY (project_id, hour, model, span_name, prompt_name, prompt_version, user_id)
) WITH (fillfactor = 80);

INSERT INTO analytics.span_rollups_hour
SELECT project_id, date_trunc('hour', minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model, span_name, prompt_name,
       prompt_version, user_id, sum(span_count), sum(error_count), sum(tokens_in), sum(tokens_out), sum(cost_usd),
       sum(cost_unpriced_count), analytics.histogram_sum(latency_hist)
  FROM analytics.span_rollups_minute
 GROUP BY 1, 2, 3, 4, 5, 6, 7;
