"""The Python SDK: ``Client``, the ``Prompt`` it returns, and the errors it raises.

Errors subclass both ``ApiError`` and the matching ``agiflow_lab.errors`` class, so
``except NotFound`` and ``except ApiError`` both work.
"""

from __future__ import annotations

from agiflow_lab.sdk.cache import StaleCacheWarning
from agiflow_lab.sdk.client import Client
from agiflow_lab.sdk.discovery import DiscoveryError
from agiflow_lab.sdk.errors import ApiError, ServerUnreachable
from agiflow_lab.sdk.prompts import Prompt

__all__ = ["ApiError", "Client", "DiscoveryError", "Prompt", "ServerUnreachable", "StaleCacheWarning"]
