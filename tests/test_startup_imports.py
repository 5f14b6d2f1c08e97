"""What every `jupyter lab` start pays: importing the server extension leaves the heavy libraries (the model
SDKs, numpy and pandas, papermill, the Kafka client) to the code that first needs them. bench/startup.py
prints the import time itself."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("openai", "anthropic", "numpy", "pandas", "papermill", "aiokafka")


def test_importing_the_server_extension_leaves_the_heavy_libraries_for_first_use() -> None:
    probe = f"import sys, agiflow_lab_server; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "", f"imported at start: {loaded}"
