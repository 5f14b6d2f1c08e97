"""AGIFlow Lab worker process: job runner (papermill + kernel pool) and the other consumers."""

import sys

# jsonschema (through nbformat) imports rfc3987_syntax, when installed, to check the "iri" string format;
# compiling its grammar costs 1.3-4 s, half of a worker's start-up and so of the takeover after a
# supervised worker dies. Nothing a worker validates uses that format (nbformat's schema has none), so
# worker processes go without that optional checker: jsonschema treats the missing module as absent.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
# papermill imports boto3 (when installed) for its S3 notebook I/O, 0.12 s; a worker reads and writes
# notebooks itself and never through papermill's I/O layer, which takes the missing module as "no S3".
sys.modules.setdefault("boto3", None)  # type: ignore[arg-type]
