"""A test identity provider: each token names a user, so RBAC tests can act as several people.

Loaded into the real Jupyter server with ``--ServerApp.identity_provider_class``. The server's own
token maps to the owner, like the single-user default.
"""

from __future__ import annotations

import os

from jupyter_server.auth.identity import IdentityProvider, User


class NamedTokenIdentityProvider(IdentityProvider):  # type: ignore[misc]
    """``Authorization: token user-<name>`` authenticates as ``<name>``."""

    def get_user(self, handler):  # type: ignore[no-untyped-def]
        header = handler.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "token":
            token = token.strip()
            handler._token_authenticated = True  # like Jupyter's token auth: no XSRF check
            if token == self.token:
                return User(os.environ["AGIFLOW_OWNER"])
            if token.startswith("user-"):
                return User(token.removeprefix("user-"))
            return None
        return super().get_user(handler)
