"""``client.keys``: a project's API keys (owners only, on the server's rules)."""

from __future__ import annotations

from agiflow_lab.keys.models import ApiKey, CreatedKey
from agiflow_lab.keys.secrets import PREFIX
from agiflow_lab.projects.models import Role
from agiflow_lab.sdk.transport import Transport, segment


class Keys:
    def __init__(self, transport: Transport, project: str) -> None:
        self._t = transport
        self.project = project

    def _base(self) -> str:
        return f"projects/{segment(self.project)}/keys"

    def create(self, name: str, role: Role = "viewer") -> CreatedKey:
        """A new key; ``.secret`` holds the whole key and is never shown again."""
        return CreatedKey.model_validate(self._t.request("POST", self._base(), json={"name": name, "role": role}))

    def list(self) -> list[ApiKey]:
        return [ApiKey.model_validate(item) for item in self._t.request("GET", self._base())["items"]]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke by id (``agf_<id>_...`` is accepted too: only the id part is used, nothing secret is sent)."""
        if key_id.startswith(PREFIX):
            key_id = key_id.removeprefix(PREFIX).split("_", 1)[0]
        return ApiKey.model_validate(self._t.request("DELETE", f"{self._base()}/{segment(key_id)}"))
