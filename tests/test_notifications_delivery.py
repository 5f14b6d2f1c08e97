"""An alert on job failures, end to end on a real server of its own: a failing job fires the rule once and, once
the window has passed, resolves it once; a real webhook receiver on 127.0.0.1 checks every signature and sees
exactly those two alert deliveries although it answered 503 to the first attempt of each; a real SMTP server
(aiosmtpd) gets every e-mail; a receiver that never answers well gets its deliveries dead-lettered, visible in the API, and the other
channels are told once that it is failing. The failed job itself is announced too (the built-in "job failed").

The server evaluates rules every 0.3 s (``alert_interval``) on a database of its own, so its evaluator is the
leader there whatever the session's server does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from tests.support.api import Api
from tests.support.jobs import submit, wait_for
from tests.support.polling import until
from tests.support.servers import configured_api, create_database, free_port


@dataclass
class Received:
    status: int
    event: str
    delivery: str
    signature_ok: bool
    body: dict[str, Any]


@dataclass
class Receiver:
    """Answers 503 to the first attempt of every delivery (to all of them with ``always_down``), 200 after."""

    secret: str = ""
    always_down: bool = False
    seen: list[Received] = field(default_factory=list)
    url: str = ""

    def delivered(self) -> list[Received]:
        return [r for r in self.seen if r.status == 200]


def signature_ok(secret: str, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


class HookHandler(RequestHandler):
    def initialize(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def post(self) -> None:
        r = self.receiver
        delivery = self.request.headers.get("X-Agiflow-Delivery", "")
        status = 503 if r.always_down or delivery not in {d.delivery for d in r.seen} else 200
        body = self.request.body
        r.seen.append(Received(status, self.request.headers.get("X-Agiflow-Event", ""), delivery,
                               signature_ok(r.secret, self.request.headers.get("X-Agiflow-Signature", ""), body),
                               json.loads(body)))  # fmt: skip
        self.set_status(status)
        self.finish()


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    down_once, always_down = Receiver(), Receiver(always_down=True)
    app = Application([("/hook", HookHandler, {"receiver": down_once}),
                       ("/down", HookHandler, {"receiver": always_down})])  # fmt: skip
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    down_once.url, always_down.url = f"http://127.0.0.1:{port}/hook", f"http://127.0.0.1:{port}/down"
    yield down_once, always_down
    server.stop()
    await server.close_all_connections()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802  # aiosmtpd's name
        from email import message_from_bytes

        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
async def own_api(pg_server: str, tmp_path: Path) -> AsyncIterator[Api]:
    url = await asyncio.to_thread(create_database, pg_server)
    async with configured_api(url, tmp_path, ["--AgiflowLab.alert_interval=0.3"]) as api:
        yield api


async def test_an_alert_on_job_failures_fires_once_and_resolves_once_on_every_channel(
    own_api: Api, receivers: tuple[Receiver, Receiver], smtp: tuple[Mailbox, int]
) -> None:
    api, (hook, down), (mailbox, smtp_port) = own_api, receivers, smtp
    project = "default"
    base = f"/projects/{project}"
    for name, receiver in (("hook", hook), ("down", down)):
        r = await api.post(f"{base}/notifications/channels", {"name": name, "kind": "webhook",
                                                              "webhook": {"url": receiver.url}})  # fmt: skip
        assert r.status_code == 201, r.text
        receiver.secret = r.json()["secret"]
    r = await api.post(f"{base}/notifications/channels", {"name": "mail", "kind": "email", "email": {
        "host": "127.0.0.1", "port": smtp_port, "starttls": False, "sender": "lab@example.org",
        "to": ["ops@example.org", "oncall@example.org"]}})  # fmt: skip
    assert r.status_code == 201, r.text
    rule = {"name": "failures", "metric": "job_failures", "comparison": ">=", "threshold": 1, "window_seconds": 3}
    assert (await api.post(f"{base}/alerts/rules", rule)).status_code == 201

    job = await submit(api, project, {"notebook": "builtin:fail", "max_attempts": 1})
    assert (await wait_for(api, project, job["id"]))["state"] == "failed"

    async def resolved() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await api.get(f"{base}/alerts/incidents")).json()["items"]
        return items if items and items[0]["state"] == "resolved" else None

    [incident] = await until(resolved, "the incident to open and resolve", timeout=60)
    assert incident["rule"] == "failures" and incident["start_value"] == 1 and incident["end_value"] == 0
    await until(lambda: _ready(len(hook.delivered()) == 3), "the three webhook deliveries", timeout=30)
    await until(lambda: _ready(len(mailbox.messages) == 3), "the three e-mails", timeout=30)

    # The receiver is down for the first attempt of every delivery: each is retried once, in order, and arrives
    # once: the built-in "job failed", then the alert's one incident: firing, resolved. Every request is signed.
    assert [(r.status, r.event) for r in hook.seen] == [
        (503, "job.failed"), (200, "job.failed"), (503, "alert.firing"), (200, "alert.firing"),
        (503, "alert.resolved"), (200, "alert.resolved"),
    ]  # fmt: skip
    assert all(r.signature_ok for r in hook.seen)
    assert [r.delivery for r in hook.seen][::2] == [r.delivery for r in hook.delivered()]  # a retry: same delivery
    assert len({r.delivery for r in hook.seen}) == 3
    firing, resolved = hook.delivered()[1:]
    assert firing.body["data"]["incident"] == incident["id"] == resolved.body["data"]["incident"]
    assert hook.delivered()[0].body["data"]["job_id"] == job["id"]
    assert [m["Subject"] for m in mailbox.messages] == ["[AGIFlow default] Job builtin:fail failed",
                                                        "[AGIFlow default] Alert failures is firing",
                                                        "[AGIFlow default] Alert failures is resolved"]  # fmt: skip
    assert mailbox.messages[0]["To"] == "ops@example.org, oncall@example.org"

    # The receiver that never recovers: the first delivery retried with backoff (1, 2, 4, 8 s), then dead-lettered
    # (the alert's, behind it in order, go the same way 15 s apart: not waited for here).
    async def dead() -> list[dict[str, Any]] | None:
        r = await api.get("/bus/dead-letters", params={"topic": "notifications"})
        items: list[dict[str, Any]] = r.json()["items"]
        return items or None

    [letter] = await until(dead, "the broken receiver's first delivery to be dead-lettered", timeout=40)
    assert letter["payload"]["event"]["event"] == "job.failed" and letter["group"] == "agiflow-notifier"
    assert letter["attempts"] == 5 and "webhook answered 503" in (letter["error"] or "")
    assert [r.event for r in down.seen[:5]] == ["job.failed"] * 5 and all(r.signature_ok for r in down.seen)

    # The other channels hear that "down" is failing (built in), once: the alert's deliveries dead-lettered after it
    # are not announced again within the hour, and "down" itself is not told.
    await until(lambda: _ready(len(hook.delivered()) == 4), "the dead-letter notice on the webhook", timeout=30)
    await until(lambda: _ready(len(mailbox.messages) == 4), "the dead-letter notice by e-mail", timeout=30)
    notice = hook.delivered()[3].body
    assert (notice["event"], notice["data"]["channel"], notice["data"]["failed_event"]) == (
        "bus.dead_letters", "down", "job.failed"
    )  # fmt: skip
    assert notice["data"]["attempts"] == 5 and "webhook answered 503" in notice["data"]["error"]
    assert mailbox.messages[3]["Subject"] == "[AGIFlow default] Notifications to channel down are failing"
    assert "bus.dead_letters" not in {r.event for r in down.seen}

    # Nothing more: the rule is back to ok and still one incident.
    rule_now = (await api.get(f"{base}/alerts/rules/failures")).json()
    assert rule_now["state"] == "ok"
    assert len((await api.get(f"{base}/alerts/incidents")).json()["items"]) == 1
    assert len(hook.delivered()) == 4 and len(mailbox.messages) == 4


async def _ready(value: bool) -> bool:
    return value
