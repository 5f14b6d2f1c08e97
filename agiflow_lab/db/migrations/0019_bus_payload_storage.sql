-- Bus payloads are stored as they come, without Postgres's own compression (pglz).
--
-- A span batch's payload is a compressed export request (base64 in the JSON): incompressible, but pglz
-- only finds that out after compressing all of it, and then throws the result away. perf over
-- bench/ingest.py (2 span writers): pglz_compress 8.1% of the machine's CPU samples before this, 4.6%
-- after (what is left compresses the spans' own rows, which do shrink). Other payloads are small enough
-- never to reach TOAST, so nothing else changes.
ALTER TABLE control.bus_messages ALTER COLUMN payload SET STORAGE EXTERNAL;
