-- Free text in the trace list without scanning every summary in the range (agiflow_lab/traces/text_index.py).
--
-- One trigram Bloom filter per project and UTC hour of trace start: the loader ORs into it the byte
-- trigrams of each summary's folded previews after every upsert of that summary, so an hour's filter
-- holds every trigram of every summary starting in it (and, after a trace's start moved earlier, some of
-- another hour's: a filter may say yes wrongly, never no wrongly). A search reads the hours whose filter
-- holds all of the text's trigrams and scans only those (the list's query, ILIKE, decides).
-- Size: 2^16 bits (8 KiB, stored uncompressed: compressing it on every upsert cost the loader more than
-- writing it), two hashes per trigram. An hour with 15,000 distinct trigrams has ~37% of its bits set, so a
-- five-letter word (three trigrams, six bits) passes an hour without it about once in 400; with 30,000,
-- once in 20 (the search then also reads that hour, and finds nothing there).
-- Cost, bench/span_store.py (200,000 spans of 8-span traces, ~1,000 characters of previews a trace):
-- the loader at 38% of the COPY ceiling with these filters and 47% without them in one run, but within
-- run-to-run noise when repeated (200,000 spans in 8.3 and 8.9 s with them, 8.6 and 7.6 s without):
-- text_index.add takes ~1.4 ms a batch of 512 (0.5 of it hashing). The trigram GIN index 0009 describes:
-- 26%. Reading, bench/ingest.py --query at 10M spans over 30 days (697 filters, 12.7% of bits set): a
-- word in 30 traces (one a day) 763 ms at p50 instead of 7.8 s; one in ~1% of traces 47 ms; one in most 30 ms.
CREATE TABLE analytics.trace_text_blocks (
    project_id bigint NOT NULL,
    hour       timestamptz NOT NULL,
    grams      bit(65536) NOT NULL,
    PRIMARY KEY (project_id, hour)
);
ALTER TABLE analytics.trace_text_blocks ALTER COLUMN grams SET STORAGE EXTERNAL;

-- Summaries stored before this migration have no filters: a search scans start times before `since`
-- as before. NULL (a database with no traces yet): every summary is covered.
CREATE TABLE analytics.trace_text_coverage (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    since timestamptz
);
INSERT INTO analytics.trace_text_coverage (since)
SELECT max(start_time) + interval '1 microsecond' FROM analytics.trace_summaries;
