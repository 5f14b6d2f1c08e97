"""The "Getting started" notebook the JupyterLab launcher copies into a user's folder on first run."""

from __future__ import annotations

from pathlib import Path

GETTING_STARTED = Path(__file__).with_name("getting_started.ipynb")
