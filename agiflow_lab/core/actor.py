"""Who is acting: a Jupyter user or a project API key.

Services record ``actor.principal`` in audit rows and version metadata; the authorizer uses it as
the Casbin subject, so a key is just another subject with one role in one project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Actor:
    principal: str
    kind: Literal["user", "key", "system"] = "user"
    key_project: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system", "system")

    @classmethod
    def for_key(cls, key_id: str, project: str) -> Actor:
        return cls(f"key:{key_id}", "key", project)
