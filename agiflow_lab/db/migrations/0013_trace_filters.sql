-- Indexes for the trace list's filters (agiflow_lab/traces/store.py list_traces).
--
-- Each is on the trace summaries (one row per trace, an eighth of the spans of a typical agent trace), so
-- the loader pays per trace, not per span; each leads with the project and ends with the list's order, so
-- a filtered first page is an index range read however rare the value. Only filters whose values are
-- usually rare get one: a session, a user, a prompt, the failed traces. Model and root span name have few
-- values, so the time index already finds a first page of them after a short walk.
--
-- Measured on the 2-core test machine (7,500 summaries of 8-span traces, under load): the loader's summary
-- insert cost 101 µs a trace with the primary key and the time index, 156 µs with these four (about 7 µs
-- a span), 208 µs with a GIN over models as well, and 1,024 µs with a GIN over the previews' words
-- (to_tsvector('simple', ...)): free text is therefore searched without an index, as 0009_traces.sql
-- explains (a scan of the summaries in the list's time range, ~3.5 µs a trace), and a deployment that
-- searches more than it writes can add the trigram index given there.

CREATE INDEX trace_summaries_by_session ON analytics.trace_summaries (project_id, session_id, start_time DESC, trace_id DESC)
    WHERE session_id IS NOT NULL;
CREATE INDEX trace_summaries_by_user ON analytics.trace_summaries (project_id, user_id, start_time DESC, trace_id DESC)
    WHERE user_id IS NOT NULL;
CREATE INDEX trace_summaries_by_prompt ON analytics.trace_summaries
    (project_id, prompt_name, prompt_version, start_time DESC, trace_id DESC) WHERE prompt_name IS NOT NULL;
CREATE INDEX trace_summaries_errors ON analytics.trace_summaries (project_id, start_time DESC, trace_id DESC)
    WHERE error_count > 0;
