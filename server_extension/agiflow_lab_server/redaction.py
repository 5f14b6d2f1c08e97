"""Keeping secrets out of the server log.

Jupyter accepts its token in the query string (``?token=``) and scrubs it from its own request log
(``jupyter_server.log._scrub_uri``: any parameter whose name contains ``token``, ``auth``, ``key``, ``code``,
``state`` or ``xsrf``, plus ``ServerApp.extra_log_scrub_param_keys``). Every URI we log goes through the
same function, so one setting steers both logs. A project API key has a recognisable shape, so it is
also cut out of any log line wherever it appears (a key pasted into the wrong parameter, an exception
message), and the server's own token with it: that filter sits on the log handlers, below every logger.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from jupyter_server.log import _scrub_uri
from pydantic import ValidationError

SECRET = "[secret]"
# ``agf_<12 hex id>_<urlsafe secret>``: the id stays readable (it names the key), the secret goes.
_API_KEY = re.compile(r"(agf_[0-9a-fA-F]{12}_)[A-Za-z0-9_\-]+|agf_(?![0-9a-fA-F]{12}_\[secret\])[A-Za-z0-9_\-]{8,}")


def redact_keys(text: str) -> str:
    return _API_KEY.sub(lambda m: (m.group(1) or "agf_") + SECRET, text)


def scrub_uri(uri: str, extra_param_keys: Iterable[str] = ()) -> str:
    """Jupyter's scrubbing of secret query parameters, then any project key wherever it is."""
    return redact_keys(_scrub_uri(uri, list(extra_param_keys)))


def validation_summary(exc: ValidationError) -> str:
    """Which fields failed and why, never what was sent: a 422's input may be a key, a header or a token."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors)


class SecretsFilter(logging.Filter):
    """Rewrites a record's message (and traceback text) without project keys or the given literal secrets.

    Attached to handlers rather than loggers, because a logger's filters do not see records that
    propagate up from child loggers (tornado's, ours, the SDKs').
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, SECRET)
        return redact_keys(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for logging's own error report
            return True
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


def install_filter(loggers: Iterable[logging.Logger], secrets: Iterable[str] = ()) -> SecretsFilter:
    """Put one ``SecretsFilter`` on every handler of the given loggers, of the root logger, and on the
    handler of last resort (what prints our modules' warnings when the root logger has no handler)."""
    secrets_filter = SecretsFilter(secrets)
    handlers = [h for logger in [*loggers, logging.getLogger()] for h in logger.handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in {id(h): h for h in handlers}.values():
        handler.addFilter(secrets_filter)
    return secrets_filter


def uri_for_log(handler: Any) -> str:
    """The request's URI as it may appear in a log line."""
    return scrub_uri(handler.request.uri or "", handler.settings.get("extra_log_scrub_param_keys", []))
