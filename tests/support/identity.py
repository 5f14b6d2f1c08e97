"""A test identity provider: each token names a user, so RBAC tests can act as several people.

Loaded into the real Jupyter server with ``--ServerApp.identity_provider_class``. The server's own
token maps to the owner, like the single-user default. A browser signs in the way Jupyter's own token
login does (``/lab?token=user-<name>``, then the login cookie), so browser scenarios can be a viewer too.
"""

from __future__ import annotations

import os

from jupyter_server.auth.identity import IdentityProvider, User


class NamedTokenIdentityProvider(IdentityProvider):  # type: ignore[misc]
    """``Authorization: token user-<name>`` authenticates as ``<name>``."""

    async def get_user(self, handler):  # type: ignore[no-untyped-def]
        header = handler.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "token":
            token = token.strip()
            handler._token_authenticated = True  # like Jupyter's token auth: no XSRF check
            if token == self.token:
                return self._server_token_user(handler)
            if token.startswith("user-"):
                return User(token.removeprefix("user-"))
            return None
        return await super().get_user(handler)

    async def get_user_token(self, handler):  # type: ignore[no-untyped-def]
        """The user a ``?token=`` in the URL names; Jupyter's ``_get_user`` then sets the login cookie."""
        token = self.get_token(handler)
        if token and token == self.token:
            return self._server_token_user(handler)
        if token and token.startswith("user-"):
            return User(token.removeprefix("user-"))
        return None

    def _server_token_user(self, handler):  # type: ignore[no-untyped-def]
        """The owner, unless a browser signed in as someone else sends it.

        JupyterLab writes the server's token into every page it serves and sends it on every request
        (in a header, or in the URL of a WebSocket): a browser signed in as someone else is that someone
        (its login cookie), as on a JupyterHub server, whose pages carry no token.
        """
        return self.get_user_cookie(handler) or User(os.environ["AGIFLOW_OWNER"])
