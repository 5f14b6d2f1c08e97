"""``client.notifications``: the project's channels and the caller's in-app notifications.

hook = client.notifications.create_webhook("ops", "https://hooks.example.org/agiflow", format="slack")
hook.secret   # shown this once: verify X-Agiflow-Signature with it
client.notifications.create_email("oncall", host="smtp.example.org", sender="lab@example.org",
                                  to=["oncall@example.org"], username="lab", password="...")
client.notifications.test("ops")
client.notifications.update_channel("ops", enabled=False)  # or webhook={...}, email={...}, rotate_secret=True
for n in client.notifications.list(unread=True): ...
client.notifications.mark_read(n.id)
"""

from __future__ import annotations

import builtins
from typing import Any

from agiflow_lab.notifications.models import Channel, ChannelCreated, Notification, WebhookFormat
from agiflow_lab.sdk.transport import Transport, segment

PAGE = 200


class Notifications:
    def __init__(self, transport: Transport, project: str) -> None:
        self._t = transport
        self.project = project

    def _base(self, what: str = "") -> str:
        return f"projects/{segment(self.project)}/notifications" + (f"/{what}" if what else "")

    def _create(self, body: dict[str, Any]) -> ChannelCreated:
        return ChannelCreated.model_validate(self._t.request("POST", self._base("channels"), json=body))

    def create_in_app(self, name: str) -> ChannelCreated:
        return self._create({"name": name, "kind": "in_app"})

    def create_webhook(self, name: str, url: str, *, format: WebhookFormat = "json") -> ChannelCreated:
        """The answer's ``secret`` signs every delivery; it is not shown again."""
        return self._create({"name": name, "kind": "webhook", "webhook": {"url": url, "format": format}})

    def create_email(
        self, name: str, *, host: str, sender: str, to: builtins.list[str], port: int = 587, starttls: bool = True,
        username: str | None = None, password: str | None = None,
    ) -> ChannelCreated:  # fmt: skip
        email = {"host": host, "port": port, "starttls": starttls, "sender": sender, "to": to, "username": username,
                 "password": password}  # fmt: skip
        return self._create({"name": name, "kind": "email", "email": email})

    def channels(self) -> builtins.list[Channel]:
        return [Channel.model_validate(c) for c in self._t.request("GET", self._base("channels"))["items"]]

    def update_channel(self, name: str, **changes: Any) -> ChannelCreated:
        """``enabled=``, ``webhook={"url", "format"}``, ``email={...}`` (without ``password`` the stored one is
        kept) or ``rotate_secret=True`` (the answer's ``secret`` is the new one, shown this once)."""
        answer = self._t.request("PATCH", self._base(f"channels/{segment(name)}"), json=changes)
        return ChannelCreated.model_validate(answer)

    def delete_channel(self, name: str) -> None:
        self._t.request("DELETE", self._base(f"channels/{segment(name)}"))

    def test(self, name: str) -> str:
        """Send a test notification through the channel; the delivery's id."""
        return str(self._t.request("POST", self._base(f"channels/{segment(name)}/test"))["message_id"])

    def list(self, *, unread: bool = False, limit: int | None = 100) -> builtins.list[Notification]:
        """The project's in-app notifications, newest first, with this caller's read state."""
        rows = self._t.items(self._base(), {"unread": str(unread).lower()}, limit=limit, page_size=PAGE)
        return [Notification.model_validate(n) for n in rows]

    def unread(self) -> int:
        return int(self._t.request("GET", self._base("unread"))["unread"])

    def mark_read(self, notification_id: int | None = None) -> int:
        """One notification (or all of the project's) read, for this caller; how many were unread."""
        path = self._base("read" if notification_id is None else f"{notification_id}/read")
        return int(self._t.request("POST", path)["marked"])
