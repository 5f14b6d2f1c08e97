"""Find the AGIFlow API and a credential for it.

Order, first match wins:

1. explicit ``url`` / ``api_key`` arguments;
2. ``AGIFLOW_URL`` and ``AGIFLOW_API_KEY`` (CI, scripts, apps outside Jupyter);
3. the running Jupyter servers' info files (``jpserver-<pid>.json`` in the Jupyter runtime dir), ranked
   by what the kernel's environment says about its parent. jupyter_server 2.x exports no server URL or
   token into kernels: the kernel inherits the server's environment (so the same runtime dir),
   jupyter_client adds ``JPY_PARENT_PID`` (the server's pid) and the session manager adds
   ``JPY_SESSION_NAME`` (the notebook's path). The server with that pid wins, then one whose root
   holds the notebook, then one whose root holds the working directory, then the only one running;
4. ``JUPYTER_SERVER_URL`` with ``JUPYTER_TOKEN`` (set by some launchers when the kernel cannot see
   the server's runtime dir, e.g. a kernel in another container).

The info files are read directly rather than through ``jupyter_server.serverapp.list_running_servers``:
importing the server application costs about 1.5 s, which every ``Client()`` in a notebook would pay.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agiflow_lab.sdk.errors import ApiError
from agiflow_lab.sdk.transport import Endpoint

URL_ENV = "AGIFLOW_URL"
KEY_ENV = "AGIFLOW_API_KEY"
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # noqa: S104 - names, not binds


class DiscoveryError(ApiError):
    """No server or no credential could be found; the message says what was tried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=0, code="discovery_failed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_servers(runtime_dir: str | None = None) -> Iterator[dict[str, Any]]:
    """Info dicts of the Jupyter servers running on this machine (stale files are skipped, not deleted)."""
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    folder = Path(runtime_dir)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("jpserver-*.json")):
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being written, or unreadable
        if isinstance(info, dict) and isinstance(info.get("pid"), int) and _alive(info["pid"]):
            yield info


def _inside(path: str | None, root: str | None) -> bool:
    if not path or not root:
        return False
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        return False
    return True


def _rank(info: Mapping[str, Any], env: Mapping[str, str], cwd: str) -> int:
    if str(info.get("pid")) == env.get("JPY_PARENT_PID"):
        return 3
    if _inside(env.get("JPY_SESSION_NAME"), info.get("root_dir")):
        return 2
    if _inside(cwd, info.get("root_dir")):
        return 1
    return 0


def choose_server(servers: list[dict[str, Any]], env: Mapping[str, str], cwd: str) -> dict[str, Any] | None:
    if not servers:
        return None
    ranked = sorted(servers, key=lambda info: _rank(info, env, cwd), reverse=True)
    if _rank(ranked[0], env, cwd) > 0 or len(servers) == 1:
        return ranked[0]
    return None


def server_url(info: Mapping[str, Any]) -> str:
    """A connectable URL: a wildcard bind address becomes the loopback address."""
    if info.get("sock"):
        return "http://localhost" + str(info.get("base_url") or "/")
    url = str(info["url"])
    if str(info.get("hostname", "")) in WILDCARD_HOSTS:
        parts = urlsplit(url)
        url = parts._replace(netloc=f"127.0.0.1:{info['port']}").geturl()
    return url


def _env_secret(env: Mapping[str, str]) -> str | None:
    # Under JupyterHub the single-user server accepts the Hub's API token, which kernels inherit.
    return env.get("JUPYTER_TOKEN") or env.get("JUPYTERHUB_API_TOKEN") or None


def discover(
    url: str | None = None,
    api_key: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    runtime_dir: str | None = None,
) -> Endpoint:
    env = os.environ if env is None else env
    source = "arguments" if url else URL_ENV
    url = url or env.get(URL_ENV) or None
    api_key = api_key or env.get(KEY_ENV) or None
    if url and api_key:
        return Endpoint(url=url, secret=api_key, source=source)

    servers = list(running_servers(runtime_dir))
    if url:  # a URL without a key: use the token of the running server at that URL, if it is local
        wanted = url.rstrip("/")
        info = next((s for s in servers if server_url(s).rstrip("/") == wanted), None)
    else:
        info = choose_server(servers, env, cwd or os.getcwd())
    if info is None:
        hinted, secret = env.get("JUPYTER_SERVER_URL"), api_key or _env_secret(env)
        if hinted and secret and not url:
            return Endpoint(url=hinted, secret=secret, source="JUPYTER_SERVER_URL")
        if url:
            raise DiscoveryError(f"no API key for {url}: set {KEY_ENV} (or pass api_key=)")
        found = (
            f"{len(servers)} Jupyter servers, none of which started this process or serves this directory"
            if servers
            else "no running Jupyter server"
        )
        raise DiscoveryError(f"cannot find AGIFlow: set {URL_ENV} and {KEY_ENV} (found {found})")
    secret = api_key or str(info.get("token") or "") or _env_secret(env)
    if not secret:
        raise DiscoveryError(
            f"the Jupyter server at {server_url(info)} uses a password, not a token: set {KEY_ENV} to an API key"
        )
    return Endpoint(
        url=server_url(info),
        secret=secret,
        source=f"Jupyter server pid {info.get('pid')}",
        unix_socket=str(info["sock"]) if info.get("sock") else None,
    )
