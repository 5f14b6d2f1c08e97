#!/usr/bin/env python3
"""Write the API's OpenAPI document (what ``GET /agiflow/api/v1/openapi.json`` serves) without a server.

The document is built from the route table by the same function the server's handler calls; the
labextension generates its TypeScript types from the file (``jlpm types``)::

    python scripts/openapi.py                       # writes labextension/openapi.json
    python scripts/openapi.py --output other.json   # or elsewhere ("-" for stdout)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# This checkout's packages first, whichever checkout (or none) the environment installed.
sys.path[:0] = [str(REPO), str(REPO / "server_extension"), str(REPO / "workers")]

from agiflow_lab_server.app import ROUTES  # noqa: E402
from agiflow_lab_server.openapi import build_document  # noqa: E402


def render() -> str:
    """The document as the server serves it under a base URL of ``/``, indented, keys in route order."""
    return json.dumps(build_document(ROUTES, "/"), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(REPO / "labextension" / "openapi.json"))
    args = parser.parse_args()
    text = render()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
