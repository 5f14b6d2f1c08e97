"""What a worker process can be asked to do (``--roles``). Kept apart from ``worker`` so the CLI can list the
roles without importing the whole worker (papermill, jupyter_client): every ``agiflow-lab`` command builds
the worker's sub-parser."""

from __future__ import annotations

JOBS_ROLE = "jobs"  # run notebook jobs (and evaluation runs) in kernels
SPANS_ROLE = "spans"  # load trace spans from the bus into the span store
ROLES = (JOBS_ROLE, SPANS_ROLE)
