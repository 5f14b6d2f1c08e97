-- Indexes for the trace list's filters and its free-text search (agiflow_lab/traces/store.py list_traces).
--
-- Each is on the trace summaries (one row per trace, an eighth of the spans of a typical agent trace), so
-- the loader pays per trace, not per span. Every one leads with the project and ends with the list's order,
-- so a filtered first page is an index range read, however rare the value.

CREATE INDEX trace_summaries_by_session ON analytics.trace_summaries (project_id, session_id, start_time DESC, trace_id DESC)
    WHERE session_id IS NOT NULL;
CREATE INDEX trace_summaries_by_user ON analytics.trace_summaries (project_id, user_id, start_time DESC, trace_id DESC)
    WHERE user_id IS NOT NULL;
CREATE INDEX trace_summaries_by_prompt ON analytics.trace_summaries
    (project_id, prompt_name, prompt_version, start_time DESC, trace_id DESC) WHERE prompt_name IS NOT NULL;
CREATE INDEX trace_summaries_by_name ON analytics.trace_summaries (project_id, name, start_time DESC, trace_id DESC);
CREATE INDEX trace_summaries_errors ON analytics.trace_summaries (project_id, start_time DESC, trace_id DESC)
    WHERE error_count > 0;
-- Models: a trace may call several, so a GIN over the array (the filter is `models @> ARRAY[model]`).
CREATE INDEX trace_summaries_by_model ON analytics.trace_summaries USING gin (models);

-- Free text: whole words and word beginnings of the root's input and output previews, through a GIN index
-- over their words ('simple' configuration: no stemming, no stop words, any language). The list then
-- checks the words it found with ILIKE on the same text, so a phrase matches as a phrase. This replaces
-- the unindexed ILIKE scan of 0009_traces.sql; a trigram index (pg_trgm) would also find word middles but
-- costs the loader about three times as much (about 12 µs of database time per span, measured there).
CREATE INDEX trace_summaries_words ON analytics.trace_summaries
    USING gin (to_tsvector('simple', coalesce(input_preview, '') || ' ' || coalesce(output_preview, '')));
