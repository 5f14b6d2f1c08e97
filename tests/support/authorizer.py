"""A test Jupyter authorizer whose ``is_authorized`` is a coroutine, as jupyter_server allows.

Loaded into a real Jupyter server with ``--ServerApp.authorizer_class``. It refuses one user,
``REFUSED``, everything on AGIFlow, and lets everyone else through, so the same server shows both
that the refusal is honoured and that an awaited "yes" still lets a request in.
"""

from __future__ import annotations

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import JupyterHandler

REFUSED = "mallory"


class AsyncRefusingAuthorizer(Authorizer):  # type: ignore[misc]
    async def is_authorized(self, handler: JupyterHandler, user: User, action: str, resource: str) -> bool:
        return not (resource == "agiflow" and user.username == REFUSED)
