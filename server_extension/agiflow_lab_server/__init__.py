"""The jupyter-server extension: thin tornado handlers over ``agiflow_lab`` services."""

from __future__ import annotations

from typing import Any

from agiflow_lab_server.app import AgiflowLab

__all__ = ["AgiflowLab"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "agiflow_lab_server", "app": AgiflowLab}]
