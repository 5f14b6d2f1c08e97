-- The span store (agiflow_lab/traces/store.py): raw spans, one summary row per trace, minute rollups.
--
-- Write speed is the ceiling (COPY of spans is what the span writer spends its time on), so each table
-- carries the fewest indexes its reads need. No foreign keys into control: analytics may move to
-- another store (a column store implementing the same SpanStore interface) later.
--
-- Ids are bytea (16 and 8 bytes), not hex text (32 and 16 characters): the primary key, the one index
-- every span pays for, is about a third smaller, and bytea compares with memcmp where text would go
-- through a collation. The store converts to and from lowercase hex at its edge.

-- Raw spans, partitioned by day of start_time (UTC). Partitions are created on demand by the loader
-- (agiflow_lab/traces/partitions.py) and retention drops whole days. There is deliberately no DEFAULT
-- partition: a span whose day has no partition fails loudly instead of piling up in a table retention
-- never drops.
CREATE TABLE analytics.spans (
    project_id          bigint NOT NULL,
    trace_id            bytea NOT NULL,
    span_id             bytea NOT NULL,
    start_time          timestamptz NOT NULL,           -- microseconds: the nanoseconds are in duration_ms
    end_time            timestamptz NOT NULL,
    duration_ms         double precision NOT NULL,      -- from the nanosecond times, before rounding
    received_at         timestamptz NOT NULL DEFAULT now(),
    tokens_in           bigint,
    tokens_out          bigint,
    cost_usd            double precision,               -- null: unpriced, never free
    prompt_version      integer,
    parent_span_id      bytea,
    name                text NOT NULL,
    kind                text NOT NULL,
    status              text NOT NULL,
    status_message      text,
    service_name        text,
    scope_name          text,
    span_type           text NOT NULL,
    model               text,
    provider            text,
    session_id          text,
    user_id             text,
    prompt_name         text,
    tags                text[] NOT NULL DEFAULT '{}',
    input               text,
    output              text,
    attributes          jsonb NOT NULL DEFAULT '{}',
    events              jsonb NOT NULL DEFAULT '[]',
    resource_attributes jsonb NOT NULL DEFAULT '{}',
    -- Postgres wants the partition key in every unique index. A redelivered span has the same
    -- start_time (it is the same span), so (project, trace, span) stays the idempotency key.
    -- The key's prefix also serves "the spans of this trace": no second index.
    PRIMARY KEY (project_id, trace_id, span_id, start_time)
) PARTITION BY RANGE (start_time);

-- One row per trace, maintained by the loader from the spans it actually inserted. Trace lists, their
-- filters and free-text search read this narrow table instead of the spans: one row per trace, not
-- one per span, and the columns a list shows. Updated by every batch that brings spans of its trace,
-- so pages are left room for HOT updates (counters and end_time are not indexed).
CREATE TABLE analytics.trace_summaries (
    project_id     bigint NOT NULL,
    trace_id       bytea NOT NULL,
    start_time     timestamptz NOT NULL,                -- earliest span start
    end_time       timestamptz NOT NULL,                -- latest span end
    duration_ms    double precision GENERATED ALWAYS AS (extract(epoch FROM end_time - start_time) * 1000) STORED,
    root_span_id   bytea,                               -- null until the root span (no parent) arrives
    name           text NOT NULL,                       -- the root's name; the earliest span's until then
    span_count     integer NOT NULL,
    error_count    integer NOT NULL,
    tokens_in      bigint NOT NULL,
    tokens_out     bigint NOT NULL,
    cost_usd       double precision NOT NULL,           -- of the priced spans ...
    unpriced_count integer NOT NULL,                    -- ... and how many spans with a model had no price
    models         text[] NOT NULL DEFAULT '{}',
    session_id     text,
    user_id        text,
    prompt_name    text,
    prompt_version integer,
    input_preview  text,                                -- the root's input and output, cut short
    output_preview text,
    PRIMARY KEY (project_id, trace_id)
) WITH (fillfactor = 80);
CREATE INDEX trace_summaries_by_time ON analytics.trace_summaries (project_id, start_time DESC, trace_id DESC);

-- Free text over the previews is ILIKE '%words%' on this expression, filtered by project (and the list's
-- time range) through trace_summaries_by_time, without an index of its own. A trigram index would make
-- the match an index search (pg_trgm ships with Postgres, the embedded server included, where
-- CREATE EXTENSION pg_trgm works), but it is the most expensive thing the loader could maintain:
-- bench/span_store.py (200,000 spans, 8 per trace, ~600 characters of preview per trace) measured it at
-- about 12 µs of database CPU per span, where all the rest of the load takes about 27 µs, and the
-- single loader fell from 41% to 34% of the COPY ceiling. It grows with preview length and with
-- fewer spans per trace. Without it a search scans the summaries in range (~3.5 µs per trace there:
-- 90 ms for 25,000 traces; 0.5 ms with the index for a rare word, no faster for a common one).
-- A deployment that searches more than it writes can add it; list_traces uses it as it is (the query
-- repeats the expression):
--   CREATE EXTENSION IF NOT EXISTS pg_trgm;
--   CREATE INDEX trace_summaries_text ON analytics.trace_summaries
--       USING gin ((coalesce(input_preview, '') || ' ' || coalesce(output_preview, '')) gin_trgm_ops);

-- Minute rollups that the metrics API reads (never the raw spans). The loader adds the spans it
-- inserted to their row (INSERT ... ON CONFLICT DO UPDATE), so every column must add up: counts and
-- sums, and latency_hist, the count of spans per fixed log-scale latency bucket
-- (agiflow_lab/traces/histogram.py). The array is subscripted by bucket number (0 .. 141) and holds only
-- the range from the lowest to the highest bucket used: latency_hist[k] is bucket k's count, NULL (0)
-- outside. A minute row usually covers a few buckets, so it stores and rewrites (every upsert writes the
-- whole row to the WAL) a handful of integers instead of 142.
-- Absent dimensions are '' and 0 rather than NULL, so the primary key is the upsert's conflict target on
-- every supported Postgres (NULLS NOT DISTINCT is 15+).
CREATE TABLE analytics.span_rollups_minute (
    project_id          bigint NOT NULL,
    minute              timestamptz NOT NULL,
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
    PRIMARY KEY (project_id, minute, model, span_name, prompt_name, prompt_version, user_id)
) WITH (fillfactor = 80);

-- The histogram of some latencies, from their bucket numbers (histogram.bucket_of): the loader sends a
-- minute row's few bucket numbers rather than an array.
CREATE FUNCTION analytics.histogram_of(buckets integer[]) RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
DECLARE
    lo integer;
    hi integer;
    b integer;
    r integer[];
BEGIN
    FOREACH b IN ARRAY buckets LOOP
        lo := least(lo, b);
        hi := greatest(hi, b);
    END LOOP;
    IF lo IS NULL THEN
        RETURN NULL;
    END IF;
    r := array_fill(0, ARRAY[hi - lo + 1], ARRAY[lo]);
    FOREACH b IN ARRAY buckets LOOP
        r[b] := r[b] + 1;
    END LOOP;
    RETURN r;
END
$$;

-- The sum of two histograms: the loader's upsert adds a batch's counts to a minute row, and
-- histogram_sum merges rows for the metrics API. plpgsql loops rather than SQL over unnest(): a call
-- per upserted row has to be cheap (measured 8 µs against 21 µs for 142 buckets).
CREATE FUNCTION analytics.histogram_add(a integer[], b integer[]) RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
DECLARE
    lo integer := least(array_lower(a, 1), array_lower(b, 1));
    hi integer := greatest(array_upper(a, 1), array_upper(b, 1));
    r integer[];
BEGIN
    IF lo = array_lower(a, 1) AND hi = array_upper(a, 1) THEN
        r := a;
    ELSE
        r := array_fill(0, ARRAY[hi - lo + 1], ARRAY[lo]);
        FOR i IN array_lower(a, 1) .. array_upper(a, 1) LOOP
            r[i] := a[i];
        END LOOP;
    END IF;
    FOR i IN array_lower(b, 1) .. array_upper(b, 1) LOOP
        IF b[i] <> 0 THEN
            r[i] := r[i] + b[i];
        END IF;
    END LOOP;
    RETURN r;
END
$$;

CREATE AGGREGATE analytics.histogram_sum(integer[]) (SFUNC = analytics.histogram_add, STYPE = integer[]);
