"""AGIFlow Lab: Jupyter-native LLM Ops.

``Client`` is imported lazily so ``import agiflow_lab`` inside a kernel stays cheap and the server
extension does not drag in the SDK's HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from agiflow_lab.sdk.client import Client

__all__ = ["Client", "__version__"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """For ``jupyter labextension develop``: the built extension lives in ``agiflow_lab/labextension``."""
    return [{"src": "labextension", "dest": "agiflow-lab"}]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from agiflow_lab.sdk.client import Client

        return Client
    raise AttributeError(name)
